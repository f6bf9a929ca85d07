// c = beta * c for the degenerate products (empty inner dimension, no non-zeros) and for clearing
// c before cuSPARSE when beta == 0.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"

namespace sparseae::kernels {

namespace {

struct ScaleOp {
  float* c;
  std::int64_t ld;
  float beta;
  __device__ void operator()(std::int64_t r, std::int64_t col) const { c[r * ld + col] *= beta; }
};

}  // namespace

void launch_scale(DenseView c, float beta, cudaStream_t stream) {
  if (c.empty() || beta == 1.0f) return;
  if (beta == 0.0f) {
    // Writes zeros without reading c, so NaN or garbage in c cannot leak into the result.
    SAE_CUDA_CHECK(cudaMemset2DAsync(c.data, static_cast<std::size_t>(c.ld) * sizeof(float), 0,
                                     static_cast<std::size_t>(c.cols) * sizeof(float),
                                     static_cast<std::size_t>(c.rows), stream));
    return;
  }
  detail::launch_elementwise_2d(ScaleOp{c.data, c.ld, beta}, c.rows, c.cols, stream);
}

}  // namespace sparseae::kernels
