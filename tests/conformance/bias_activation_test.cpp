// Conformance of bias_activation_forward and activation_backward with its bias gradient
// (kernels/bias_activation.cu, src/backend/cpu/bias_activation.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "conformance_fixtures.hpp"

namespace sparseae::test::conformance {
namespace {

DoubleMatrix absolute_values(const DoubleMatrix& m) {
  DoubleMatrix result = m;
  for (double& x : result.data) x = std::fabs(x);
  return result;
}

constexpr Activation kAllActivations[] = {Activation::identity,   Activation::relu,
                                          Activation::leaky_relu, Activation::sigmoid,
                                          Activation::tanh,       Activation::softplus};

// ==== bias + activation forward ====

class ForwardConformance : public BackendTest {
 protected:
  // y = activation(z + bias) on z with z_pad padding columns, into a separate y with y_pad padding
  // columns (poisoned), or in place in z when y_pad < 0.
  void check(Activation activation, std::int64_t rows, std::int64_t cols, bool with_bias,
             std::int64_t z_pad, std::int64_t y_pad, std::uint64_t seed) {
    const bool in_place = y_pad < 0;
    std::ostringstream trace;
    trace << "forward " << activation_name(activation) << " " << rows << "x" << cols
          << (with_bias ? " with bias" : " without bias") << " z_pad=" << z_pad
          << (in_place ? " in place" : " y_pad=" + std::to_string(y_pad));
    SCOPED_TRACE(trace.str());
    std::mt19937_64 rng(seed);
    const FloatMatrix z = random_matrix(rng, rows, cols, -3.0f, 3.0f, cols + z_pad);
    const std::vector<float> bias = reference::random_floats(rng, cols, -1.0f, 1.0f);
    const DoubleMatrix expected =
        reference::bias_activation_forward(activation, z, with_bias ? &bias : nullptr);

    const BackendMatrix z_on = upload(z);
    const Buffer<float> bias_on = upload(bias);
    const BackendMatrix y_on =
        in_place ? BackendMatrix{} : upload(filled_matrix(rows, cols, kPoison, cols + y_pad));
    const DenseView y_view = in_place ? z_on.view() : y_on.view();
    backend().bias_activation_forward(activation, z_on.const_view(),
                                      with_bias ? bias_on.data() : nullptr, y_view);
    const FloatMatrix got = download(in_place ? z_on : y_on);
    EXPECT_TRUE(matrix_close(got, expected, absolute_values(expected), kElementwiseTolerance));
    EXPECT_TRUE(padding_untouched(got));
  }
};

TEST_P(ForwardConformance, MatchesReferenceForEveryActivationAndShape) {
  std::uint64_t seed = 2000;
  for (Activation activation : kAllActivations)
    for (const Shape& s : kElementwiseShapes) check(activation, s.rows, s.cols, true, 0, 0, ++seed);
}

TEST_P(ForwardConformance, WithoutBias) {
  std::uint64_t seed = 2100;
  for (Activation activation : kAllActivations) check(activation, 33, 65, false, 0, 0, ++seed);
}

TEST_P(ForwardConformance, InPlaceWhenYAliasesZ) {
  std::uint64_t seed = 2200;
  for (Activation activation : kAllActivations) {
    check(activation, 129, 257, true, 0, -1, ++seed);
    check(activation, 7, 13, false, 3, -1, ++seed);
  }
}

TEST_P(ForwardConformance, LeadingDimensionsLargerThanColumns) {
  std::uint64_t seed = 2300;
  for (Activation activation : kAllActivations) {
    check(activation, 33, 65, true, 7, 2, ++seed);
    check(activation, 1, 512, true, 1, 64, ++seed);
  }
}

TEST_P(ForwardConformance, EmptyShapes) {
  std::uint64_t seed = 2400;
  for (Activation activation : kAllActivations) {
    check(activation, 0, 13, true, 0, 0, ++seed);
    check(activation, 7, 0, true, 0, 0, ++seed);
  }
}

// Inputs far outside the usual range: the branches that keep exp() from overflowing.
TEST_P(ForwardConformance, ExtremeInputsStayFiniteAndAccurate) {
  const std::vector<float> inputs = {-1e30f, -1000.0f, -100.0f, -88.0f,  -30.0f,
                                     -1.0f,  -1e-30f,  0.0f,    1e-30f,  1.0f,
                                     30.0f,  88.0f,    100.0f,  1000.0f, 1e30f};
  const auto cols = static_cast<std::int64_t>(inputs.size());
  FloatMatrix z(1, cols, cols, 0.0f);
  z.data = inputs;
  for (Activation activation : kAllActivations) {
    SCOPED_TRACE(activation_name(activation));
    const DoubleMatrix expected = reference::bias_activation_forward(activation, z, nullptr);
    const BackendMatrix z_on = upload(z);
    const BackendMatrix y_on = upload(filled_matrix(1, cols, kPoison));
    backend().bias_activation_forward(activation, z_on.const_view(), nullptr, y_on.view());
    const FloatMatrix got = download(y_on);
    for (std::int64_t c = 0; c < cols; ++c)
      EXPECT_TRUE(std::isfinite(got(0, c)))
          << "activation of " << inputs[c] << " gave " << got(0, c);
    // The inputs are exact, so only the function's own rounding counts.
    EXPECT_TRUE(matrix_close(got, expected, absolute_values(expected), kElementwiseTolerance));
  }
}

TEST_P(ForwardConformance, RejectsMismatchedShapes) {
  Buffer<float> z(backend(), 6 * 5);
  Buffer<float> y(backend(), 6 * 5);
  EXPECT_TRUE(throws_error(
      [&] {
        backend().bias_activation_forward(Activation::relu, z.matrix(6, 5), nullptr,
                                          y.matrix(5, 6));
      },
      "differ", false));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(ForwardConformance);

// ==== activation backward ====

class BackwardConformance : public BackendTest {
 protected:
  // dz = dy * activation'(from y), bias_grad = column sums of dz (when with_bias_grad), for a y
  // that the activation can produce. dz is separate and poisoned, or dy itself when in_place.
  void check(Activation activation, std::int64_t rows, std::int64_t cols, bool with_bias_grad,
             bool in_place, std::int64_t pad, std::uint64_t seed) {
    std::ostringstream trace;
    trace << "backward " << activation_name(activation) << " " << rows << "x" << cols
          << (with_bias_grad ? " with" : " without") << " bias gradient"
          << (in_place ? " in place" : "") << " pad=" << pad;
    SCOPED_TRACE(trace.str());
    std::mt19937_64 rng(seed);
    // Pre-activations out to +-8 reach the flat tails, where 1 - e^-y and 1 - y*y lose digits
    // unless computed with care; one in twenty is exactly 0, the kink of relu and leaky relu.
    FloatMatrix y = filled_matrix(rows, cols, kPoison, cols + pad);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) {
        const double z =
            reference::uniform(rng, 0.0, 1.0) < 0.05 ? 0.0 : reference::uniform(rng, -8.0, 8.0);
        y(r, c) = static_cast<float>(reference::activate(activation, z));
      }
    const FloatMatrix dy = random_matrix(rng, rows, cols, -1.0f, 1.0f, cols + pad);
    const reference::BackwardResult expected = reference::activation_backward(activation, y, dy);

    // Rounding error of dz relative to |dy * derivative|, except tanh's 1 - y*y, which loses
    // up to an ulp of y*y to cancellation.
    DoubleMatrix scale(rows, cols, cols, 0.0);
    std::vector<double> bias_scale(static_cast<std::size_t>(cols), 0.0);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) {
        const double derivative = reference::derivative_from_output(activation, y(r, c));
        const double cancelled = activation == Activation::tanh ? double{y(r, c)} * y(r, c) : 0.0;
        scale(r, c) = std::fabs(dy(r, c)) * (std::fabs(derivative) + cancelled);
        bias_scale[c] += scale(r, c);
      }

    const BackendMatrix y_on = upload(y);
    const BackendMatrix dy_on = upload(dy);
    const BackendMatrix dz_on =
        in_place ? BackendMatrix{} : upload(filled_matrix(rows, cols, kPoison, cols + pad));
    Buffer<float> bias_grad_on =
        upload(std::vector<float>(static_cast<std::size_t>(cols), kPoison));
    backend().activation_backward(activation, y_on.const_view(), dy_on.const_view(),
                                  in_place ? dy_on.view() : dz_on.view(),
                                  with_bias_grad ? bias_grad_on.data() : nullptr);
    const FloatMatrix got = download(in_place ? dy_on : dz_on);
    EXPECT_TRUE(matrix_close(got, expected.dz, scale, kElementwiseTolerance));
    EXPECT_TRUE(padding_untouched(got));
    const std::vector<float> bias_grad = download(bias_grad_on);
    if (with_bias_grad) {
      // Each term carries its element-wise error into a sum of rows terms.
      EXPECT_TRUE(vector_close(bias_grad, expected.bias_grad, bias_scale,
                               kElementwiseTolerance + product_tolerance(rows)))
          << "bias gradient";
    } else {
      for (std::size_t c = 0; c < bias_grad.size(); ++c)
        EXPECT_TRUE(std::isnan(bias_grad[c]))
            << "bias_grad was null, yet element " << c << " of an unrelated buffer changed";
    }
  }
};

TEST_P(BackwardConformance, MatchesReferenceForEveryActivationAndShape) {
  std::uint64_t seed = 3000;
  for (Activation activation : kAllActivations)
    for (const Shape& s : kElementwiseShapes)
      check(activation, s.rows, s.cols, true, false, 0, ++seed);
}

TEST_P(BackwardConformance, WithoutBiasGradient) {
  std::uint64_t seed = 3100;
  for (Activation activation : kAllActivations) check(activation, 33, 65, false, false, 0, ++seed);
}

TEST_P(BackwardConformance, InPlaceWhenDzAliasesDy) {
  std::uint64_t seed = 3200;
  for (Activation activation : kAllActivations) {
    check(activation, 129, 257, true, true, 0, ++seed);
    check(activation, 7, 13, false, true, 3, ++seed);
  }
}

TEST_P(BackwardConformance, LeadingDimensionsLargerThanColumns) {
  std::uint64_t seed = 3300;
  for (Activation activation : kAllActivations) {
    check(activation, 33, 65, true, false, 5, ++seed);
    check(activation, 1, 512, true, false, 64, ++seed);
  }
}

// Bias gradients reduce over the batch: many rows and few columns cross block boundaries.
TEST_P(BackwardConformance, TallBatchBiasGradient) {
  std::uint64_t seed = 3400;
  for (Activation activation : {Activation::relu, Activation::tanh}) {
    check(activation, 4099, 3, true, false, 0, ++seed);
    check(activation, 1025, 65, true, false, 0, ++seed);
  }
}

// The column sums of no rows are zeros, which must be written over the NaN.
TEST_P(BackwardConformance, ZeroRowsGiveZeroBiasGradient) {
  std::uint64_t seed = 3500;
  for (Activation activation : kAllActivations) check(activation, 0, 65, true, false, 0, ++seed);
}

TEST_P(BackwardConformance, RejectsMismatchedShapes) {
  Buffer<float> y(backend(), 6 * 5);
  Buffer<float> dy(backend(), 6 * 5);
  Buffer<float> dz(backend(), 6 * 5);
  EXPECT_TRUE(throws_error(
      [&] {
        backend().activation_backward(Activation::tanh, y.matrix(6, 5), dy.matrix(5, 6),
                                      dz.matrix(6, 5), nullptr);
      },
      "differ", false));
  EXPECT_TRUE(throws_error(
      [&] {
        backend().activation_backward(Activation::tanh, y.matrix(6, 5), dy.matrix(6, 5),
                                      dz.matrix(3, 5), nullptr);
      },
      "differ", false));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(BackwardConformance);

}  // namespace
}  // namespace sparseae::test::conformance
