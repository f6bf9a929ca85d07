// The cpu backend's bias + activation forward and activation backward with the bias gradient
// (kernels/bias_activation.cu on cuda); the per-element math is in src/math/op_math.hpp.
#include <algorithm>

#include "backend/constant_dispatch.hpp"
#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"
#include "math/op_math.hpp"

namespace sparseae::detail {

namespace {

template <typename Body>
void with_activation(Activation activation, Body body) {
  using A = Activation;
  with_constant<A::identity, A::relu, A::leaky_relu, A::sigmoid, A::tanh, A::softplus>(
      activation, "activation", body);
}

// The bias gradient sums each column in float over blocks of kRowBlock rows, which vectorizes,
// and those block sums in double.
constexpr std::int64_t kRowBlock = 32;

}  // namespace

void CpuBackend::bias_activation_forward(Activation activation, ConstDenseView z, const float* bias,
                                         DenseView y) {
  check_bias_activation("bias_activation_forward", z, y);
  run([=] {
    with_activation(activation, [&](auto act) {
#pragma omp parallel for schedule(static)
      for (std::int64_t r = 0; r < y.rows; ++r) {
        float* out = y.row(r);
        const float* in = z.data != nullptr ? z.row(r) : nullptr;
        if (in != nullptr && bias != nullptr)
          for (std::int64_t j = 0; j < y.cols; ++j) out[j] = math::activate(act, in[j] + bias[j]);
        else if (in != nullptr)
          for (std::int64_t j = 0; j < y.cols; ++j) out[j] = math::activate(act, in[j]);
        else if (bias != nullptr)
          for (std::int64_t j = 0; j < y.cols; ++j) out[j] = math::activate(act, bias[j]);
        else
          std::fill(out, out + y.cols, math::activate(act, 0.0f));
      }
    });
  });
}

void CpuBackend::activation_backward(Activation activation, ConstDenseView y, ConstDenseView dy,
                                     DenseView dz, float* bias_grad) {
  check_same_shape("activation_backward", "y", y, "dy", dy);
  check_same_shape("activation_backward", "y", y, "dz", dz);
  run([=] {
    const std::int64_t blocks = (y.rows + kRowBlock - 1) / kRowBlock;
    if (bias_grad != nullptr) block_column_sums_.resize(static_cast<std::size_t>(blocks * y.cols));
    float* const block_sums = block_column_sums_.data();
    with_activation(activation, [&](auto act) {
    // Threads take whole rows: two threads writing the two halves of every row (a split by
    // columns) ran 4x slower here than one thread alone.
#pragma omp parallel
      {
#pragma omp for schedule(static)
        for (std::int64_t block = 0; block < blocks; ++block) {
          float* partial = bias_grad != nullptr ? block_sums + block * y.cols : nullptr;
          if (partial != nullptr) std::fill(partial, partial + y.cols, 0.0f);
          for (std::int64_t r = block * kRowBlock; r < std::min(y.rows, (block + 1) * kRowBlock);
               ++r) {
            const float* y_row = y.row(r);
            const float* dy_row = dy.row(r);
            float* dz_row = dz.row(r);
            // dz may be dy (in place); element j reads and writes only index j.
            if (partial != nullptr) {
#pragma omp simd
              for (std::int64_t j = 0; j < y.cols; ++j) {
                const float g = dy_row[j] * math::derivative_from_output(act, y_row[j]);
                dz_row[j] = g;
                partial[j] += g;
              }
            } else {
#pragma omp simd
              for (std::int64_t j = 0; j < y.cols; ++j)
                dz_row[j] = dy_row[j] * math::derivative_from_output(act, y_row[j]);
            }
          }
        }
        // The bias gradient: each column's block sums in block order, in double, whatever the
        // thread count.
        if (bias_grad != nullptr) {
#pragma omp for schedule(static)
          for (std::int64_t j = 0; j < y.cols; ++j) {
            double sum = 0.0;
            for (std::int64_t block = 0; block < blocks; ++block)
              sum += block_sums[block * y.cols + j];
            bias_grad[j] = static_cast<float>(sum);
          }
        }
      }
    });
  });
}

}  // namespace sparseae::detail
