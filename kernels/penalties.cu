// Activity penalties and the squared norm, all with the deterministic reductions of
// kernel_common.cuh and the per-element math of src/math/loss_math.hpp:
//   l1_activity_penalty: one matrix sum whose element adds its gradient to grad;
//   kl_sparsity_penalty: column sums of a (a sigmoid layer's activations, the column reduction),
//     then one block turns them into each unit's KL value and gradient factor and sums the values,
//     then an element-wise pass adds each column's factor to the gradient;
//   quantize_latents: one element-wise pass;
//   latent_rate_penalty: one matrix sum whose element adds its gradient to grad, then one column
//     reduction over 2 x cols virtual columns (the locations' gradients, then the log-scales');
//   sum_of_squares: one matrix sum over a 1 x n row.
// Each needs at most four launches and no host synchronisation.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"
#include "math/loss_math.hpp"

namespace sparseae::kernels {

namespace {

struct L1Element {
  float weight;  // weight / rows
  const float* a;
  std::int64_t ld_a;
  float* grad;
  std::int64_t ld_grad;
  __device__ double operator()(std::int64_t r, std::int64_t c) const {
    const math::LossTerm term = math::l1_penalty_term(a[r * ld_a + c], weight);
    grad[r * ld_grad + c] += term.grad;
    return term.value;
  }
};

struct SquareElement {
  const float* x;
  __device__ double operator()(std::int64_t, std::int64_t i) const {
    const double v = x[i];
    return v * v;
  }
};

struct ActivationElement {
  const float* a;
  std::int64_t ld;
  __device__ float operator()(std::int64_t r, std::int64_t c) const { return a[r * ld + c]; }
};

// One block of kBlockThreads: column_sums[c] (the sum of a over rows) becomes unit c's
// gradient factor beta * grad_factor / rows in place, and *loss = beta * sum of KL values.
__global__ void __launch_bounds__(detail::kBlockThreads)
    kl_units_kernel(float rho, float beta, float inv_rows, std::int64_t cols,
                    float* column_sums_to_factors, float* loss) {
  double total = 0.0;
  for (std::int64_t c = threadIdx.x; c < cols; c += detail::kBlockThreads) {
    const math::KlUnit unit = math::kl_sparsity_unit(rho, column_sums_to_factors[c] * inv_rows);
    total += unit.value;
    column_sums_to_factors[c] = beta * unit.grad_factor * inv_rows;
  }
  double sums[1] = {total};
  detail::block_sum<detail::kBlockThreads>(sums);
  if (threadIdx.x == 0) *loss = static_cast<float>(beta * sums[0]);
}

// d penalty / d a(r, c) is the same for every row of a column: its unit's factor.
struct KlGradOp {
  const float* factors;
  float* grad;
  std::int64_t ld_grad;
  __device__ void operator()(std::int64_t r, std::int64_t c) const {
    grad[r * ld_grad + c] += factors[c];
  }
};

// noise_seed null: the integer code; else the training noise with the seed read on the device.
struct QuantizeLatentsOp {
  float* z;
  std::int64_t ld;
  std::int64_t cols;
  const std::uint64_t* noise_seed;
  __device__ void operator()(std::int64_t r, std::int64_t c) const {
    float& v = z[r * ld + c];
    v = noise_seed == nullptr
            ? math::latent_code(v)
            : v + math::latent_noise(*noise_seed, static_cast<std::uint64_t>(r * cols + c));
  }
};

struct RateElement {
  float per_row;  // weight / rows
  const float* prior;
  const float* z;
  std::int64_t ld_z;
  std::int64_t cols;
  float* grad;
  std::int64_t ld_grad;
  __device__ double operator()(std::int64_t r, std::int64_t c) const {
    const math::RateTerm term = math::latent_rate_term(z[r * ld_z + c], prior[c], prior[cols + c]);
    if (grad != nullptr) grad[r * ld_grad + c] += per_row * term.grad;
    return static_cast<double>(per_row) * term.value;
  }
};

// Column c < cols: the gradient of location c; column cols + c: that of log-scale c.
struct RatePriorGradElement {
  const float* prior;
  const float* z;
  std::int64_t ld_z;
  std::int64_t cols;
  __device__ float operator()(std::int64_t r, std::int64_t virtual_col) const {
    const bool log_scale = virtual_col >= cols;
    const std::int64_t c = log_scale ? virtual_col - cols : virtual_col;
    const math::RateTerm term = math::latent_rate_term(z[r * ld_z + c], prior[c], prior[cols + c]);
    return log_scale ? term.grad_log_scale : term.grad_location;
  }
};

float inverse_rows(std::int64_t rows) {
  return 1.0f / static_cast<float>(std::max<std::int64_t>(1, rows));
}

// The kl workspace: the per-column sums (then factors) first, the column reduction's partials
// after them.
std::size_t kl_factors_bytes(std::int64_t cols) {
  return align_workspace(static_cast<std::size_t>(cols) * sizeof(float));
}

}  // namespace

std::size_t l1_activity_penalty_workspace_bytes(std::int64_t rows, std::int64_t cols) {
  return align_workspace(detail::matrix_sum_partials_bytes(rows, cols));
}

void launch_l1_activity_penalty(float weight, ConstDenseView a, DenseView grad, float* loss,
                                void* workspace, cudaStream_t stream) {
  // weight / rows as the cpu backend computes it; rows == 0 writes *loss = 0.
  const float per_row = weight / static_cast<float>(std::max<std::int64_t>(1, a.rows));
  detail::launch_matrix_sum(L1Element{per_row, a.data, a.ld, grad.data, grad.ld}, a.rows, a.cols,
                            loss, workspace, stream);
}

std::size_t kl_sparsity_penalty_workspace_bytes(std::int64_t rows, std::int64_t cols) {
  return kl_factors_bytes(cols) + column_reduction_workspace_bytes(rows, cols);
}

void launch_kl_sparsity_penalty(float rho, float beta, ConstDenseView a, DenseView grad,
                                float* loss, void* workspace, cudaStream_t stream) {
  auto* factors = static_cast<float*>(workspace);
  void* partials = static_cast<char*>(workspace) + kl_factors_bytes(a.cols);
  // Column sums with scale 1, then * (1 / rows) in float, as the cpu backend rounds them. With
  // rows == 0 the sums are 0 (every unit dead: a large finite penalty, as on the cpu); with
  // cols == 0 nothing is written and the units kernel writes *loss = 0.
  detail::launch_column_reduction(ActivationElement{a.data, a.ld}, a.rows, a.cols, 1.0f, factors,
                                  partials, stream);
  kl_units_kernel<<<1, detail::kBlockThreads, 0, stream>>>(rho, beta, inverse_rows(a.rows), a.cols,
                                                           factors, loss);
  SAE_CUDA_CHECK(cudaGetLastError());
  detail::launch_elementwise_2d(KlGradOp{factors, grad.data, grad.ld}, a.rows, a.cols, stream);
}

void launch_quantize_latents(DenseView z, const std::uint64_t* noise_seed, cudaStream_t stream) {
  detail::launch_elementwise_2d(QuantizeLatentsOp{z.data, z.ld, z.cols, noise_seed}, z.rows, z.cols,
                                stream);
}

std::size_t latent_rate_penalty_workspace_bytes(std::int64_t rows, std::int64_t cols) {
  // The matrix sum and the column reduction run one after the other on one stream: they share it.
  return std::max(align_workspace(detail::matrix_sum_partials_bytes(rows, cols)),
                  column_reduction_workspace_bytes(rows, 2 * cols));
}

void launch_latent_rate_penalty(float weight, const float* prior, ConstDenseView z, DenseView grad,
                                float* prior_grad, float* loss, void* workspace,
                                cudaStream_t stream) {
  // weight / rows as the cpu backend computes it; rows == 0 writes *loss = 0 and zero gradients.
  const float per_row = weight / static_cast<float>(std::max<std::int64_t>(1, z.rows));
  detail::launch_matrix_sum(RateElement{per_row, prior, z.data, z.ld, z.cols, grad.data, grad.ld},
                            z.rows, z.cols, loss, workspace, stream);
  if (prior_grad != nullptr)
    detail::launch_column_reduction(RatePriorGradElement{prior, z.data, z.ld, z.cols}, z.rows,
                                    2 * z.cols, per_row, prior_grad, workspace, stream);
}

std::size_t sum_of_squares_workspace_bytes(std::int64_t n) {
  return align_workspace(detail::matrix_sum_partials_bytes(1, n));
}

void launch_sum_of_squares(const float* x, std::int64_t n, float* out, void* workspace,
                           cudaStream_t stream) {
  // n == 0 writes *out = 0, as the cpu backend does.
  detail::launch_matrix_sum(SquareElement{x}, 1, n, out, workspace, stream);
}

}  // namespace sparseae::kernels
