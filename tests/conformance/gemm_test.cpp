// Conformance of gemm and gemm_bias_activation, which libraries run (OpenBLAS in
// src/backend/cpu/cpu_backend.cpp, cuBLAS and cublasLt on cuda): no kernels/*.cu of their own.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "conformance_fixtures.hpp"

namespace sparseae::test::conformance {
namespace {

// ==== gemm ====

class GemmConformance : public BackendTest {
 protected:
  // c = alpha * op(a) * op(b) + beta * c for c m x n and inner dimension k; every operand gets
  // pad NaN columns of padding, which the op must neither read nor write. With beta == 0, c starts
  // as NaN.
  void check(Transpose ta, Transpose tb, std::int64_t m, std::int64_t n, std::int64_t k,
             float alpha, float beta, std::int64_t pad, std::uint64_t seed) {
    std::ostringstream trace;
    trace << "gemm op(a)=" << transpose_name(ta) << " op(b)=" << transpose_name(tb) << " m=" << m
          << " n=" << n << " k=" << k << " alpha=" << alpha << " beta=" << beta << " pad=" << pad;
    SCOPED_TRACE(trace.str());
    std::mt19937_64 rng(seed);
    const std::int64_t a_rows = ta == Transpose::yes ? k : m;
    const std::int64_t a_cols = ta == Transpose::yes ? m : k;
    const std::int64_t b_rows = tb == Transpose::yes ? n : k;
    const std::int64_t b_cols = tb == Transpose::yes ? k : n;
    const FloatMatrix a = random_matrix(rng, a_rows, a_cols, -1.0f, 1.0f, a_cols + pad);
    const FloatMatrix b = random_matrix(rng, b_rows, b_cols, -1.0f, 1.0f, b_cols + pad);
    const FloatMatrix c = beta == 0.0f ? filled_matrix(m, n, kPoison, n + pad)
                                       : random_matrix(rng, m, n, -1.0f, 1.0f, n + pad);
    const DoubleMatrix expected = reference::gemm(ta, tb, alpha, a, b, beta, c);
    const DoubleMatrix scale = reference::gemm(ta, tb, std::fabs(alpha), absolute(a), absolute(b),
                                               std::fabs(beta), absolute(c));

    const BackendMatrix a_on = upload(a);
    const BackendMatrix b_on = upload(b);
    const BackendMatrix c_on = upload(c);
    backend().gemm(ta, tb, alpha, a_on.const_view(), b_on.const_view(), beta, c_on.view());
    const FloatMatrix got = download(c_on);
    EXPECT_TRUE(matrix_close(got, expected, scale, product_tolerance(k)));
    EXPECT_TRUE(padding_untouched(got));
  }
};

TEST_P(GemmConformance, MatchesReferenceForEveryTransposeAndShape) {
  struct Dims {
    std::int64_t m, n, k;
  };
  const Dims shapes[] = {{1, 1, 1},      {7, 13, 5},    {33, 65, 17},
                         {129, 257, 65}, {1, 512, 129}, {64, 512, 512}};
  std::uint64_t seed = 100;
  for (const Dims& d : shapes)
    for (Transpose ta : kBothTransposes)
      for (Transpose tb : kBothTransposes) check(ta, tb, d.m, d.n, d.k, 1.0f, 0.0f, 0, ++seed);
}

TEST_P(GemmConformance, AlphaAndBetaScaleProductAndOldC) {
  std::uint64_t seed = 200;
  for (Transpose ta : kBothTransposes)
    for (Transpose tb : kBothTransposes) {
      check(ta, tb, 33, 65, 17, -0.75f, 1.5f, 0, ++seed);
      check(ta, tb, 7, 13, 129, 2.5f, -1.0f, 0, ++seed);
      check(ta, tb, 16, 16, 16, 0.0f, 0.5f, 0, ++seed);  // alpha 0: only the scaled c remains
    }
}

TEST_P(GemmConformance, BetaZeroIgnoresNaNInC) {
  // check() starts c as all NaN when beta is 0, and the references are finite, so a single
  // element of c read (0 * NaN is NaN) fails.
  check(Transpose::no, Transpose::no, 129, 257, 65, 1.0f, 0.0f, 0, 300);
  check(Transpose::yes, Transpose::no, 33, 65, 17, -2.0f, 0.0f, 0, 301);
  check(Transpose::no, Transpose::no, 7, 13, 5, 0.0f, 0.0f, 0, 302);  // alpha = beta = 0: zeros
}

TEST_P(GemmConformance, LeadingDimensionsLargerThanColumns) {
  std::uint64_t seed = 400;
  for (Transpose ta : kBothTransposes)
    for (Transpose tb : kBothTransposes) {
      check(ta, tb, 33, 65, 17, 1.0f, 0.0f, 3, ++seed);
      check(ta, tb, 7, 13, 5, 0.5f, 2.0f, 11, ++seed);
    }
}

TEST_P(GemmConformance, EmptyShapes) {
  std::uint64_t seed = 500;
  for (Transpose ta : kBothTransposes)
    for (Transpose tb : kBothTransposes) {
      check(ta, tb, 0, 13, 5, 1.0f, 0.0f, 0, ++seed);  // no rows in c
      check(ta, tb, 7, 0, 5, 1.0f, 0.0f, 0, ++seed);   // no columns in c
      // No inner dimension: c = beta * c, so zeros over the NaN when beta is 0.
      check(ta, tb, 7, 13, 0, 1.0f, 0.0f, 0, ++seed);
      check(ta, tb, 7, 13, 0, 1.0f, 2.0f, 0, ++seed);
    }
}

TEST_P(GemmConformance, RejectsMismatchedShapes) {
  Buffer<float> a(backend(), 6 * 5);
  Buffer<float> b(backend(), 6 * 5);
  Buffer<float> c(backend(), 6 * 3);
  EXPECT_TRUE(throws_error(
      [&] {
        backend().gemm(Transpose::no, Transpose::no, 1.0f, a.matrix(6, 5), b.matrix(4, 3), 0.0f,
                       c.matrix(6, 3));
      },
      "shapes do not match", false));
  EXPECT_TRUE(throws_error(
      [&] {
        backend().gemm(Transpose::no, Transpose::yes, 1.0f, a.matrix(6, 5), b.matrix(3, 5), 0.0f,
                       c.matrix(5, 3));
      },
      "shapes do not match", false));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(GemmConformance);

// ==== gemm_bias_activation (a dense layer's forward as one op) ====

class LayerForwardConformance : public BackendTest {
 protected:
  // y = activation(a * op(b) + bias) for y m x n, inner dimension k, operands padded by pad NaN
  // columns; y starts as NaN. On cuda identity and relu run in cublasLt's epilogue.
  void check(Activation activation, Transpose ta, Transpose tb, bool with_bias, std::int64_t m,
             std::int64_t n, std::int64_t k, std::int64_t pad, std::uint64_t seed) {
    std::ostringstream trace;
    trace << "gemm_bias_activation " << activation_name(activation)
          << " op(a)=" << transpose_name(ta) << " op(b)=" << transpose_name(tb)
          << (with_bias ? " bias" : " no bias") << " m=" << m << " n=" << n << " k=" << k
          << " pad=" << pad;
    SCOPED_TRACE(trace.str());
    std::mt19937_64 rng(seed);
    const FloatMatrix a = ta == Transpose::yes ? random_matrix(rng, k, m, -1.0f, 1.0f, m + pad)
                                               : random_matrix(rng, m, k, -1.0f, 1.0f, k + pad);
    const FloatMatrix b = tb == Transpose::yes ? random_matrix(rng, n, k, -1.0f, 1.0f, k + pad)
                                               : random_matrix(rng, k, n, -1.0f, 1.0f, n + pad);
    const std::vector<float> bias = reference::random_floats(rng, n, -0.5f, 0.5f);
    const FloatMatrix y = filled_matrix(m, n, kPoison, n + pad);
    const DoubleMatrix product = reference::gemm(ta, tb, 1.0, a, b, 0.0, y);
    DoubleMatrix expected = reference::gemm(ta, tb, 1.0, absolute(a), absolute(b), 0.0, y);
    DoubleMatrix scale = expected;
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        const double shift = with_bias ? bias[static_cast<std::size_t>(j)] : 0.0;
        expected(i, j) = reference::activate(activation, product(i, j) + shift);
        // The activation rounds relative to its output: a sigmoid of a small input (an inner
        // dimension of 1 gives many) is near 0.5 whatever the products' scale.
        scale(i, j) += std::fabs(shift) + std::fabs(expected(i, j));
      }
    const BackendMatrix a_on = upload(a);
    const BackendMatrix b_on = upload(b);
    const Buffer<float> bias_on = upload(bias);
    const BackendMatrix y_on = upload(y);
    backend().gemm_bias_activation(activation, ta, tb, a_on.const_view(), b_on.const_view(),
                                   with_bias ? bias_on.data() : nullptr, y_on.view());
    const FloatMatrix got = download(y_on);
    EXPECT_TRUE(matrix_close(got, expected, scale, product_tolerance(k)));
    EXPECT_TRUE(padding_untouched(got));
  }
};

TEST_P(LayerForwardConformance, MatchesGemmThenBiasActivation) {
  std::uint64_t seed = 2600;
  for (const Activation activation : {Activation::identity, Activation::relu, Activation::sigmoid})
    for (Transpose ta : kBothTransposes)
      for (Transpose tb : kBothTransposes)
        for (const bool with_bias : {true, false}) {
          check(activation, ta, tb, with_bias, 256, 128, 256, 0, ++seed);  // a users' layer
          check(activation, ta, tb, with_bias, 7, 13, 5, 3, ++seed);
          // A dimension of 1, which cublasLt's heuristic refuses (on cuda the separate path):
          // a one-column layer, a one-row batch, an inner dimension of 1.
          check(activation, ta, tb, with_bias, 33, 1, 65, 0, ++seed);
          check(activation, ta, tb, with_bias, 1, 128, 256, 0, ++seed);
          check(activation, ta, tb, with_bias, 33, 17, 1, 2, ++seed);
        }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LayerForwardConformance);

}  // namespace
}  // namespace sparseae::test::conformance
