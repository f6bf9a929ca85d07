// One launch updates a whole flat parameter buffer with math::optimizer_update.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"
#include "kernels/op_math.hpp"

namespace sparseae::kernels {

namespace {

__global__ void __launch_bounds__(detail::kBlockThreads)
    optimizer_kernel(math::OptimizerScalars scalars, std::int64_t n, float* params,
                     const float* grads, float* first, float* second) {
  const std::int64_t stride = detail::flat_thread_count();
  if (second != nullptr) {
    for (std::int64_t i = detail::flat_thread_index(); i < n; i += stride)
      math::optimizer_update(scalars, params[i], grads[i], first[i], second[i]);
    return;
  }
  // sgd without a second-moment buffer: a local stand-in, kept in a register (a reference chosen
  // at run time between it and global memory would push it to the stack).
  for (std::int64_t i = detail::flat_thread_index(); i < n; i += stride) {
    float unused_second = 0.0f;
    math::optimizer_update(scalars, params[i], grads[i], first[i], unused_second);
  }
}

}  // namespace

void launch_optimizer_step(const math::OptimizerScalars& scalars, std::int64_t n, float* params,
                           const float* grads, float* first, float* second, cudaStream_t stream) {
  if (n <= 0) return;
  optimizer_kernel<<<detail::flat_grid(n), detail::kBlockThreads, 0, stream>>>(
      scalars, n, params, grads, first, second);
  SAE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sparseae::kernels
