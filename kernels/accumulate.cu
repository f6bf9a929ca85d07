// sum[i] += x[i] in float64: a row block's float products added into the PCA's running total.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"

namespace sparseae::kernels {

namespace {

__global__ void __launch_bounds__(detail::kBlockThreads)
    accumulate_kernel(const float* x, std::int64_t n, double* sum) {
  const std::int64_t stride = detail::flat_thread_count();
  for (std::int64_t i = detail::flat_thread_index(); i < n; i += stride)
    sum[i] += static_cast<double>(x[i]);
}

}  // namespace

void launch_accumulate(const float* x, std::int64_t n, double* sum, cudaStream_t stream) {
  if (n <= 0) return;
  accumulate_kernel<<<detail::flat_grid(n), detail::kBlockThreads, 0, stream>>>(x, n, sum);
  SAE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sparseae::kernels
