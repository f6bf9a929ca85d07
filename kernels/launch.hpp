#pragma once
// Launch wrappers of the custom kernels, callable from plain C++ (the cuda backend). Every
// wrapper enqueues its work on stream and returns without waiting; it throws sparseae::Error when
// a launch fails. Pointers are device pointers; shapes were checked by the caller. Wrappers that
// take a workspace need at least the bytes their *_workspace_bytes function returns, aligned to
// kWorkspaceAlignment.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "math/op_math.hpp"
#include "sparseae/matrix.hpp"
#include "sparseae/ops.hpp"

namespace sparseae::kernels {

// What cudaMalloc guarantees, and what CUB and cuSPARSE expect of their buffers.
inline constexpr std::size_t kWorkspaceAlignment = 256;

constexpr std::size_t align_workspace(std::size_t bytes) {
  return (bytes + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}

// out[i] = in[i] for i < n; every value must fit in 32 bits.
void launch_index_narrow(const std::int64_t* in, std::int32_t* out, std::int64_t n,
                         cudaStream_t stream);

// out[i] = math::transform_input(transform, in[i]) for i < n; out may alias in.
void launch_transform_values(InputTransform transform, const float* in, std::int64_t n,
                             float* out, cudaStream_t stream);
// out[r] = math::log_size_factor(sum of row r, log_reference), summed in column order.
void launch_row_log_size_factors(CsrView batch, float log_reference, float* out,
                                 cudaStream_t stream);
void launch_row_log_size_factors(ConstDenseView batch, float log_reference, float* out,
                                 cudaStream_t stream);
// m(r, c) += offsets[r].
void launch_add_row_offsets(DenseView m, const float* offsets, cudaStream_t stream);

// out(r, j) = math::deterministic::layer_output(layer, row r of in, row_offsets[r] or 0, j).
void launch_deterministic_layer(const DeterministicLayer& layer, ConstDenseView in,
                                const float* row_offsets, DenseView out, cudaStream_t stream);

// The first layer's products without cuSPARSE, for a captured step: they read a's entries
// through its row offsets on the device and never a.nnz, which a captured batch knows only as an
// upper bound. c = alpha * a * b + beta * c: a block row per row of a, each thread a column of c,
// summed in entry order (deterministic). c = alpha * aᵀ * b + beta * c: c scaled first, then each
// entry (r, k) of a adds alpha * a(r, k) * b(r, :) to c(k, :) with atomics (the sum order varies
// from run to run, as cuSPARSE's does for aᵀ).
void launch_csr_rows_times_dense(float alpha, CsrView a, ConstDenseView b, float beta, DenseView c,
                                 cudaStream_t stream);
void launch_csr_transpose_times_dense(float alpha, CsrView a, ConstDenseView b, float beta,
                                      DenseView c, cudaStream_t stream);

// c = beta * c; beta == 0 writes zeros without reading c, beta == 1 does nothing.
void launch_scale(DenseView c, float beta, cudaStream_t stream);

// y = activate(z + bias[col]); bias may be null; y may alias z.
void launch_bias_activation_forward(Activation activation, ConstDenseView z, const float* bias,
                                    DenseView y, cudaStream_t stream);

// Scratch of the deterministic column reductions (activation_backward, column_sums) for an input
// of rows x cols.
std::size_t column_reduction_workspace_bytes(std::int64_t rows, std::int64_t cols);

// dz = dy * derivative_from_output(y); bias_grad[col] = sum over rows of dz when bias_grad is not
// null. dz may alias dy. The sum order depends only on the shape, so results repeat bit for bit.
void launch_activation_backward(Activation activation, ConstDenseView y, ConstDenseView dy,
                                DenseView dz, float* bias_grad, void* workspace,
                                cudaStream_t stream);

// out[col] = scale * sum over rows of x(row, col), summed in double in a fixed order.
void launch_column_sums(ConstDenseView x, float scale, float* out, void* workspace,
                        cudaStream_t stream);

std::size_t random_permutation_workspace_bytes(std::int64_t n);

// out = 0..n-1 sorted by math::permutation_key(seed, i), ties by i: the cpu backend's order.
void launch_random_permutation(std::uint64_t seed, std::int64_t n, std::int64_t* out,
                               void* workspace, cudaStream_t stream);

// What the first half of a row gather leaves in device memory for the host to read back.
struct GatherStatus {
  std::int64_t nnz;                    // non-zeros of the batch
  unsigned long long first_bad_index;  // least i with row_ids[i] out of range, or kNoBadIndex
  std::int64_t bad_row;                // row_ids[first_bad_index] when there is one
};
inline constexpr unsigned long long kNoBadIndex = ~0ull;

std::size_t gather_workspace_bytes(std::int64_t count);

// First half of gather_rows, for count >= 1: writes out_row_offsets[0..count] (row lengths, then
// an exclusive scan) and status. Out-of-range row ids count as empty rows here.
void launch_gather_offsets(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                           RowOffset* out_row_offsets, GatherStatus* status, void* workspace,
                           cudaStream_t stream);

// Second half, once the host has checked status or knows the batch's nnz: copies each row's
// entries into out, none past out.nnz_capacity; an out-of-range id copies nothing.
void launch_gather_copy(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                        const CsrOutput& out, cudaStream_t stream);

// out row i = source row row_ids[i]; an id outside [0, source.rows) gives a zero row.
void launch_gather_dense_rows(ConstDenseView source, const std::int64_t* row_ids,
                              std::int64_t count, DenseView out, cudaStream_t stream);

// out = a dense (zeros elsewhere; entries sharing a row and a column summed, in no fixed order).
void launch_csr_to_dense(CsrView a, DenseView out, cudaStream_t stream);

// sum[i] += x[i] for i < n, in float64.
void launch_accumulate(const float* x, std::int64_t n, double* sum, cudaStream_t stream);

// Reconstruction loss of y against the CSR target (same shape, columns unique within a row and in
// [0, cols)): writes grad (d loss / d y, normalised) and row_loss[r] for every row, one block per
// row. grad must not alias y. Per-row sums follow a fixed order, so results repeat bit for bit.
// params travels to the kernel by value.
void launch_reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                CsrView target, DenseView grad, float* row_loss,
                                cudaStream_t stream);

// reconstruction_loss against a dense target (the dense path).
void launch_reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                ConstDenseView target, DenseView grad, float* row_loss,
                                cudaStream_t stream);

// Backend::topk_rows, batch_topk and threshold_latents (kernels/sparsity.cu).
void launch_topk_rows(std::int64_t k, DenseView z, cudaStream_t stream);
void launch_batch_topk(std::int64_t k, DenseView z, float* threshold, cudaStream_t stream);
void launch_threshold_latents(DenseView z, const float* threshold, cudaStream_t stream);
// Backend::latent_dead_steps and auxk_backward (AuxK; kernels/sparsity.cu).
void launch_latent_dead_steps(ConstDenseView z, std::int32_t* dead_steps, cudaStream_t stream);
void launch_auxk_backward(std::int64_t aux_k, float aux_weight, std::int32_t dead_after,
                          const std::int32_t* dead_steps, ConstDenseView pre, ConstDenseView z,
                          DenseView dz, float* bias_grad, cudaStream_t stream);
// grad += the gradient of weight / rows * sum |a|; *loss = its value (always written).
// z(r, c) = math::latent_code(z(r, c)), or with a seed z(r, c) += math::latent_noise(*noise_seed,
// r * z.cols + c) (the seed read on the device).
void launch_quantize_latents(DenseView z, const std::uint64_t* noise_seed, cudaStream_t stream);
// Backend::latent_rate_penalty.
std::size_t latent_rate_penalty_workspace_bytes(std::int64_t rows, std::int64_t cols);
void launch_latent_rate_penalty(float weight, const float* prior, ConstDenseView z, DenseView grad,
                                float* prior_grad, float* loss, void* workspace,
                                cudaStream_t stream);
std::size_t l1_activity_penalty_workspace_bytes(std::int64_t rows, std::int64_t cols);
void launch_l1_activity_penalty(float weight, ConstDenseView a, DenseView grad, float* loss,
                                void* workspace, cudaStream_t stream);

// grad += the gradient of beta * sum_c KL(rho || mean_r sigmoid(a(r, c))); *loss = its value
// (always written).
std::size_t kl_sparsity_penalty_workspace_bytes(std::int64_t rows, std::int64_t cols);
void launch_kl_sparsity_penalty(float rho, float beta, ConstDenseView a, DenseView grad,
                                float* loss, void* workspace, cudaStream_t stream);

// *out = sum of x[i]^2 for i < n, in double in a fixed order (always written; 0 when n <= 0).
std::size_t sum_of_squares_workspace_bytes(std::int64_t n);
void launch_sum_of_squares(const float* x, std::int64_t n, float* out, void* workspace,
                           cudaStream_t stream);

// One math::optimizer_update per element i < n; second may be null (sgd). When
// max_grad_norm > 0 or skip_nonfinite, grad_sum_squares is a device pointer to the squared
// gradient norm, read on the device by math::gradient_gate: a non-finite norm skips the step
// (skip_nonfinite), and clipping scales each gradient; otherwise grad_sum_squares is ignored.
void launch_optimizer_step(const math::OptimizerScalars& scalars, const StepScalars* step_scalars,
                           std::int64_t n, float* params, const float* grads, float* first,
                           float* second, float max_grad_norm, bool skip_nonfinite,
                           const float* grad_sum_squares, cudaStream_t stream);
// Backend::unit_norm_rows: one block per row (a grid-stride loop over rows), its squared norm a
// deterministic block sum in double, then each entry by math::unit_norm_scaled.
void launch_unit_norm_rows(DenseView m, cudaStream_t stream);

}  // namespace sparseae::kernels
