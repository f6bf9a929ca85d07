// int64 -> int32 copy of CSR row offsets, so that cuSPARSE runs on 32-bit indices throughout.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"

namespace sparseae::kernels {

namespace {

__global__ void __launch_bounds__(detail::kBlockThreads)
    index_narrow_kernel(const std::int64_t* in, std::int32_t* out, std::int64_t n) {
  const std::int64_t stride = detail::flat_thread_count();
  for (std::int64_t i = detail::flat_thread_index(); i < n; i += stride)
    out[i] = static_cast<std::int32_t>(in[i]);
}

}  // namespace

void launch_index_narrow(const std::int64_t* in, std::int32_t* out, std::int64_t n,
                         cudaStream_t stream) {
  if (n <= 0) return;
  index_narrow_kernel<<<detail::flat_grid(n), detail::kBlockThreads, 0, stream>>>(in, out, n);
  SAE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sparseae::kernels
