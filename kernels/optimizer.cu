// One launch updates a whole flat parameter buffer with math::optimizer_update, clipping the
// gradient on the fly by math::clip_scale when asked, and reading the step's learning rate and
// bias corrections from device memory when given them (a captured step).
// unit_norm_rows (the decoder's dictionary after the step): one block per row, whose threads add
// their strided entries' squares in double and combine them by detail::block_sum (an order fixed
// by the block size, so results repeat bit for bit), then rescale the same entries.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"
#include "math/op_math.hpp"

namespace sparseae::kernels {

namespace {

// grad_sum_squares == nullptr: no clipping and no skipping. Otherwise every thread reads the
// squared norm (one cached load) and computes the same gate, so the step needs no host round
// trip.
__global__ void __launch_bounds__(detail::kBlockThreads)
    optimizer_kernel(math::OptimizerScalars scalars, const StepScalars* step_scalars,
                     std::int64_t n, float* params, const float* grads, float* first,
                     float* second, float max_grad_norm, bool skip_nonfinite,
                     const float* grad_sum_squares) {
  if (step_scalars != nullptr) scalars = math::with_step_scalars(scalars, *step_scalars);
  const math::GradientGate gate =
      math::gradient_gate(max_grad_norm, skip_nonfinite,
                          grad_sum_squares != nullptr ? *grad_sum_squares : 0.0f);
  if (gate.skip) return;
  const float grad_scale = gate.scale;
  const std::int64_t stride = detail::flat_thread_count();
  if (second != nullptr) {
    for (std::int64_t i = detail::flat_thread_index(); i < n; i += stride)
      math::optimizer_update(scalars, params[i], grad_scale * grads[i], first[i], second[i]);
    return;
  }
  // sgd without a second-moment buffer: a local stand-in, kept in a register (a reference chosen
  // at run time between it and global memory would push it to the stack).
  for (std::int64_t i = detail::flat_thread_index(); i < n; i += stride) {
    float unused_second = 0.0f;
    math::optimizer_update(scalars, params[i], grad_scale * grads[i], first[i], unused_second);
  }
}

__global__ void __launch_bounds__(detail::kBlockThreads) unit_norm_rows_kernel(DenseView m) {
  for (std::int64_t r = blockIdx.x; r < m.rows; r += gridDim.x) {
    float* row = m.data + r * m.ld;
    double sum_squares[1] = {0.0};
    for (std::int64_t c = threadIdx.x; c < m.cols; c += blockDim.x)
      sum_squares[0] += static_cast<double>(row[c]) * row[c];
    // Every thread reaches the sum (the row loop is uniform over the block); its barriers also
    // keep the next row's writes after this row's reads.
    detail::block_sum<detail::kBlockThreads>(sum_squares);
    for (std::int64_t c = threadIdx.x; c < m.cols; c += blockDim.x)
      row[c] = math::unit_norm_scaled(row[c], sum_squares[0]);
  }
}

}  // namespace

void launch_unit_norm_rows(DenseView m, cudaStream_t stream) {
  if (m.empty()) return;
  unit_norm_rows_kernel<<<detail::grid_dim(m.rows), detail::kBlockThreads, 0, stream>>>(m);
  SAE_CUDA_CHECK(cudaGetLastError());
}

void launch_optimizer_step(const math::OptimizerScalars& scalars,
                           const StepScalars* step_scalars, std::int64_t n, float* params,
                           const float* grads, float* first, float* second, float max_grad_norm,
                           bool skip_nonfinite, const float* grad_sum_squares,
                           cudaStream_t stream) {
  if (n <= 0) return;
  optimizer_kernel<<<detail::flat_grid(n), detail::kBlockThreads, 0, stream>>>(
      scalars, step_scalars, n, params, grads, first, second, max_grad_norm, skip_nonfinite,
      max_grad_norm > 0.0f || skip_nonfinite ? grad_sum_squares : nullptr);
  SAE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sparseae::kernels
