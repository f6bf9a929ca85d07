// Fused bias + activation (forward) and activation derivative + bias gradient (backward). The
// per-element math is math::activate / math::derivative_from_output, shared with the cpu backend.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"
#include "math/op_math.hpp"

namespace sparseae::kernels {

namespace {

struct ForwardOp {
  Activation activation;
  const float* z;
  std::int64_t ld_z;
  const float* bias;
  float* y;
  std::int64_t ld_y;
  __device__ void operator()(std::int64_t r, std::int64_t c) const {
    const float input = z != nullptr ? z[r * ld_z + c] : 0.0f;
    y[r * ld_y + c] = math::activate(activation, input + (bias != nullptr ? bias[c] : 0.0f));
  }
};

// Writes dz and returns it, for the bias gradient's column sums.
struct BackwardElement {
  Activation activation;
  const float* y;
  std::int64_t ld_y;
  const float* dy;
  std::int64_t ld_dy;
  float* dz;
  std::int64_t ld_dz;
  __device__ float operator()(std::int64_t r, std::int64_t c) const {
    const float g = dy[r * ld_dy + c] * math::derivative_from_output(activation, y[r * ld_y + c]);
    dz[r * ld_dz + c] = g;
    return g;
  }
};

}  // namespace

void launch_bias_activation_forward(Activation activation, ConstDenseView z, const float* bias,
                                    DenseView y, cudaStream_t stream) {
  detail::launch_elementwise_2d(ForwardOp{activation, z.data, z.ld, bias, y.data, y.ld}, y.rows,
                                y.cols, stream);
}

void launch_activation_backward(Activation activation, ConstDenseView y, ConstDenseView dy,
                                DenseView dz, float* bias_grad, void* workspace,
                                cudaStream_t stream) {
  detail::launch_column_reduction(
      BackwardElement{activation, y.data, y.ld, dy.data, dy.ld, dz.data, dz.ld}, y.rows, y.cols,
      1.0f, bias_grad, workspace, stream);
}

}  // namespace sparseae::kernels
