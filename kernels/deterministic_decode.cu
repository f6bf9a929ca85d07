// The cuda executor of lossless mode's deterministic decoder: one thread per output, each
// running math::deterministic::layer_output, whose _rn intrinsics keep nvcc from contracting
// into FMA. The result depends neither on the launch geometry nor on the batch.
#include "math/deterministic_decode.hpp"
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"

namespace sparseae::kernels {

namespace {

struct DeterministicLayerOp {
  DeterministicLayer layer;
  const float* in;
  std::int64_t in_ld;
  const float* row_offsets;
  float* out;
  std::int64_t out_ld;
  __device__ void operator()(std::int64_t r, std::int64_t j) const {
    const float offset = row_offsets != nullptr ? row_offsets[r] : 0.0f;
    out[r * out_ld + j] = math::deterministic::layer_output(layer, in + r * in_ld, offset, j);
  }
};

}  // namespace

void launch_deterministic_layer(const DeterministicLayer& layer, ConstDenseView in,
                                const float* row_offsets, DenseView out, cudaStream_t stream) {
  detail::launch_elementwise_2d(
      DeterministicLayerOp{layer, in.data, in.ld, row_offsets, out.data, out.ld}, out.rows,
      out.cols, stream);
}

}  // namespace sparseae::kernels
