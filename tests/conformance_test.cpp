// Conformance of every Backend op against the float64 references of tests/reference.hpp, run once
// per backend (backend_fixture.hpp). Each test draws fresh inputs from a fixed seed, poisons the
// outputs (NaN, or a sentinel) so that an element an op forgot to write fails, and compares with
// a tolerance named below together with the reason for its size.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backend_fixture.hpp"
#include "math/op_math.hpp"
#include "reference.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "test_util.hpp"

namespace sparseae::test {
namespace {

using reference::absolute;
using reference::DoubleMatrix;
using reference::filled_matrix;
using reference::FloatMatrix;
using reference::kPoison;
using reference::random_csr;
using reference::random_matrix;
using test::contains;
using test::error_message;

// ---- tolerances ----

constexpr double kEps = std::numeric_limits<float>::epsilon();

// Added to every tolerance: results below the smallest normal float may be flushed to zero (the
// device's denormal mode), which is no error at the scale of these tests.
constexpr double kSubnormalFloor = std::numeric_limits<float>::min();

// Products and sums of `inner` terms, relative to the sum of |terms| (so cancellation cannot make
// the bound meaningless): summing in float in any order (sequential, blocked, split-k, atomics)
// errs by about sqrt(inner) roundings and at worst inner/2 eps; 8 eps sqrt(inner + 1) covers the
// worst case up to inner ~ 256 and the typical one far beyond. (TF32 tensor-core math would not
// pass, by design: the contract is float32.)
double product_tolerance(std::int64_t inner) {
  return 8.0 * kEps * std::sqrt(static_cast<double>(inner) + 1.0);
}

// Element-wise activations. Forward, relative to the result: the float add z + bias (half an ulp,
// times a condition number at most 4 on the inputs in [-4, 4] used there) plus expf/tanhf/log1pf,
// each within 2 ulps on glibc and in CUDA without fast math. Backward, relative to
// |dy * derivative|: the derivative from an exact y costs a few roundings (expm1f: 1 ulp).
constexpr double kElementwiseTolerance = 16.0 * kEps;

// One optimizer step from identical float state, relative to the sum of |terms| of each update:
// about ten float roundings per parameter.
constexpr double kOptimizerTolerance = 16.0 * kEps;

// Gather and permutation move data without arithmetic: they must be exact.

// ---- comparison ----

// Passes when |actual(r, c) - expected(r, c)| <= relative_tolerance * scale(r, c) + kSubnormalFloor
// over a rows x cols region; otherwise reports the first element that is not, and how many.
::testing::AssertionResult all_within(std::int64_t rows, std::int64_t cols,
                                      const std::function<double(std::int64_t, std::int64_t)>& actual,
                                      const std::function<double(std::int64_t, std::int64_t)>& expected,
                                      const std::function<double(std::int64_t, std::int64_t)>& scale,
                                      double relative_tolerance) {
  std::int64_t mismatches = 0;
  std::ostringstream first;
  first.precision(9);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const double got = actual(r, c);
      const double want = expected(r, c);
      const double tolerance = relative_tolerance * scale(r, c) + kSubnormalFloor;
      const double difference = std::fabs(got - want);
      if (difference <= tolerance) continue;  // false for NaN as well
      if (mismatches++ == 0)
        first << "element (" << r << ", " << c << "): got " << got << ", expected " << want
              << ", |difference| " << difference << " > tolerance " << tolerance << " ("
              << relative_tolerance << " * scale " << scale(r, c) << " + " << kSubnormalFloor
              << ")";
    }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << mismatches << " of " << rows * cols
                                       << " elements out of tolerance; first " << first.str();
}

::testing::AssertionResult matrix_close(const FloatMatrix& actual, const DoubleMatrix& expected,
                                        const DoubleMatrix& scale, double relative_tolerance) {
  if (actual.rows != expected.rows || actual.cols != expected.cols)
    return ::testing::AssertionFailure() << "shape " << actual.rows << "x" << actual.cols
                                         << " differs from the expected " << expected.rows << "x"
                                         << expected.cols;
  return all_within(
      actual.rows, actual.cols, [&](auto r, auto c) { return actual(r, c); },
      [&](auto r, auto c) { return expected(r, c); }, [&](auto r, auto c) { return scale(r, c); },
      relative_tolerance);
}

::testing::AssertionResult vector_close(const std::vector<float>& actual,
                                        const std::vector<double>& expected,
                                        const std::vector<double>& scale,
                                        double relative_tolerance) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << "length " << actual.size() << " differs from the "
                                         << "expected " << expected.size();
  return all_within(
      1, static_cast<std::int64_t>(actual.size()), [&](auto, auto i) { return actual[i]; },
      [&](auto, auto i) { return expected[i]; }, [&](auto, auto i) { return scale[i]; },
      relative_tolerance);
}

DoubleMatrix absolute_values(const DoubleMatrix& m) {
  DoubleMatrix result = m;
  for (double& x : result.data) x = std::fabs(x);
  return result;
}

// The padding columns [cols, ld) still hold the NaN written before the op.
::testing::AssertionResult padding_untouched(const FloatMatrix& m) {
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = m.cols; c < m.ld; ++c)
      if (!std::isnan(m(r, c)))
        return ::testing::AssertionFailure()
               << "padding element (" << r << ", " << c << ") of a " << m.rows << "x" << m.cols
               << " view with leading dimension " << m.ld << " was overwritten with " << m(r, c);
  return ::testing::AssertionSuccess();
}

template <typename T>
::testing::AssertionResult exactly_equal(const std::vector<T>& actual,
                                         const std::vector<T>& expected, std::size_t length,
                                         const char* what) {
  if (actual.size() < length || expected.size() < length)
    return ::testing::AssertionFailure() << what << ": fewer than " << length << " elements";
  for (std::size_t i = 0; i < length; ++i)
    if (!(actual[i] == expected[i]))
      return ::testing::AssertionFailure() << what << "[" << i << "] is " << actual[i]
                                           << ", expected " << expected[i];
  return ::testing::AssertionSuccess();
}

template <typename Op>
::testing::AssertionResult throws_error(Op&& op, const std::string& message, bool exact) {
  try {
    op();
  } catch (const Error& error) {
    const std::string what = error.what();
    if (exact ? what == message : what.find(message) != std::string::npos)
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "Error says \"" << what << "\", expected "
                                         << (exact ? "exactly" : "it to contain") << " \""
                                         << message << "\"";
  } catch (const std::exception& other) {
    return ::testing::AssertionFailure() << "threw a non-sparseae exception: " << other.what();
  }
  return ::testing::AssertionFailure() << "no Error thrown; expected \"" << message << "\"";
}

constexpr Activation kAllActivations[] = {Activation::identity, Activation::relu,
                                          Activation::leaky_relu, Activation::sigmoid,
                                          Activation::tanh, Activation::softplus};

struct Shape {
  std::int64_t rows;
  std::int64_t cols;
};
// 1x1, odd sizes that leave partial blocks and warps, a batch of one row 512 wide, 512 wide.
constexpr Shape kElementwiseShapes[] = {{1, 1}, {7, 13}, {33, 65}, {129, 257}, {1, 512}, {64, 512}};

const char* transpose_name(Transpose t) { return t == Transpose::yes ? "T" : "N"; }

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

constexpr Transpose kBothTransposes[] = {Transpose::no, Transpose::yes};

TEST_P(GemmConformance, MatchesReferenceForEveryTransposeAndShape) {
  struct Dims {
    std::int64_t m, n, k;
  };
  const Dims shapes[] = {{1, 1, 1},     {7, 13, 5},   {33, 65, 17},
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
        scale(i, j) += std::fabs(shift);
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
          check(activation, ta, tb, with_bias, 33, 1, 65, 0, ++seed);
        }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LayerForwardConformance);

// ==== spmm ====

class SpmmConformance : public BackendTest {
 protected:
  // b and c of alpha * op(a) * b + beta * c, n columns each with pad NaN columns of padding: b
  // random, c random too, or NaN where beta == 0 (it must not be read).
  struct Operands {
    FloatMatrix b;
    FloatMatrix c;
  };
  static Operands random_operands(Transpose ta, const HostCsr& a, std::int64_t n, float beta,
                                  std::int64_t pad, std::mt19937_64& rng) {
    const std::int64_t b_rows = ta == Transpose::yes ? a.rows : a.cols;
    const std::int64_t c_rows = ta == Transpose::yes ? a.cols : a.rows;
    FloatMatrix b = random_matrix(rng, b_rows, n, -1.0f, 1.0f, n + pad);
    FloatMatrix c = beta == 0.0f ? filled_matrix(c_rows, n, kPoison, n + pad)
                                 : random_matrix(rng, c_rows, n, -1.0f, 1.0f, n + pad);
    return {std::move(b), std::move(c)};
  }

  // got against the float64 alpha * op(a) * in.b + beta * in.c; an output element sums at most
  // in.b.rows products.
  static ::testing::AssertionResult product_matches(Transpose ta, float alpha, const HostCsr& a,
                                                    const Operands& in, float beta,
                                                    const FloatMatrix& got) {
    const DoubleMatrix expected = reference::spmm(ta, alpha, a, in.b, beta, in.c);
    const DoubleMatrix scale = reference::spmm(ta, std::fabs(alpha), absolute(a), absolute(in.b),
                                               std::fabs(beta), absolute(in.c));
    return matrix_close(got, expected, scale, product_tolerance(in.b.rows));
  }

  // c = alpha * op(a) * b + beta * c with n columns in b and c, each with pad NaN columns of
  // padding. With beta == 0, c starts as NaN.
  void check(Transpose ta, const HostCsr& a, std::int64_t n, float alpha, float beta,
             std::int64_t pad, std::uint64_t seed) {
    std::ostringstream trace;
    trace << "spmm op(a)=" << transpose_name(ta) << " a " << a.rows << "x" << a.cols << " nnz "
          << a.nnz() << " n=" << n << " alpha=" << alpha << " beta=" << beta << " pad=" << pad;
    SCOPED_TRACE(trace.str());
    std::mt19937_64 rng(seed);
    const Operands in = random_operands(ta, a, n, beta, pad, rng);
    const BackendCsr a_on(backend(), a);
    const BackendMatrix b_on = upload(in.b);
    const BackendMatrix c_on = upload(in.c);
    backend().spmm(ta, alpha, a_on.view(), b_on.const_view(), beta, c_on.view());
    const FloatMatrix got = download(c_on);
    EXPECT_TRUE(product_matches(ta, alpha, a, in, beta, got));
    EXPECT_TRUE(padding_untouched(got));
  }

  // How check_in_turn multiplies: each call with its matrix's own nnz, or one capture replayed.
  enum class Calls { plain, captured };

  // Matrices of one shape written in turn into the same CSR arrays, which have spare capacity and
  // NaN values past each matrix's entries, each multiplied with the same b into the same c, as a
  // training loop multiplies its batches. Each product must be its own matrix's. plain: each call
  // gives its matrix's nnz (on cuda, cuSPARSE descriptors made by the first call are re-pointed
  // or remade by the next ones and must not keep an earlier matrix's count). captured: the
  // product is captured once (Backend::capture) with nnz given as the capacity, as a captured
  // training step gives its batch, and replayed for each matrix, so the entries must be found
  // through the row offsets only (on cuda: kernels/csr_spmm.cu, not cuSPARSE).
  void check_in_turn(Calls calls, Transpose ta, const std::vector<const HostCsr*>& matrices,
                     std::int64_t n, float alpha, float beta, std::int64_t pad,
                     std::uint64_t seed) {
    const HostCsr& first = *matrices.front();
    std::ostringstream trace;
    trace << (calls == Calls::captured ? "captured " : "") << "spmm op(a)=" << transpose_name(ta)
          << " a " << first.rows << "x" << first.cols << " nnz";
    for (const HostCsr* a : matrices) trace << " " << a->nnz();
    trace << " in turn n=" << n << " alpha=" << alpha << " beta=" << beta << " pad=" << pad;
    SCOPED_TRACE(trace.str());
    std::mt19937_64 rng(seed);
    const Operands in = random_operands(ta, first, n, beta, pad, rng);
    std::int64_t capacity = 0;
    for (const HostCsr* a : matrices) capacity = std::max(capacity, a->nnz() + 5);
    Buffer<RowOffset> offsets(backend(), static_cast<std::size_t>(first.rows + 1));
    Buffer<ColIndex> cols = upload(std::vector<ColIndex>(static_cast<std::size_t>(capacity), 0));
    Buffer<float> values = upload(std::vector<float>(static_cast<std::size_t>(capacity), kPoison));
    const BackendMatrix b_on = upload(in.b);
    BackendMatrix c_on = upload(in.c);
    std::unique_ptr<CapturedOps> ops;
    for (std::size_t m = 0; m < matrices.size(); ++m) {
      const HostCsr& a = *matrices[m];
      offsets.upload(a.row_offsets);
      backend().upload_bytes(cols.data(), a.col_indices.data(),
                             a.col_indices.size() * sizeof(ColIndex));
      backend().upload_bytes(values.data(), a.values.data(), a.values.size() * sizeof(float));
      c_on.buffer.upload(in.c.data);
      const CsrView written{
          a.rows,         a.cols,      calls == Calls::captured ? capacity : a.nnz(),
          offsets.data(), cols.data(), values.data()};
      const auto multiply = [&] {
        backend().spmm(ta, alpha, written, b_on.const_view(), beta, c_on.view());
      };
      if (calls == Calls::plain) {
        multiply();
      } else {
        if (ops == nullptr) ops = backend().capture(multiply);
        backend().replay(*ops);
      }
      const FloatMatrix got = download(c_on);
      EXPECT_TRUE(product_matches(ta, alpha, a, in, beta, got)) << "matrix " << m;
      EXPECT_TRUE(padding_untouched(got));
    }
  }
};

struct SparseShape {
  std::int64_t rows, cols, n;
  double density;
};
// Counts are a few percent non-zero in practice; the denser cases fill rows enough to stress
// per-row accumulation.
constexpr SparseShape kSparseShapes[] = {{1, 1, 1, 1.0},      {7, 13, 5, 0.3},
                                         {33, 65, 17, 0.1},   {129, 257, 32, 0.05},
                                         {1, 512, 32, 0.05},  {256, 512, 33, 0.03},
                                         {64, 512, 512, 0.2}};

TEST_P(SpmmConformance, MatchesReference) {
  std::uint64_t seed = 1000;
  for (const SparseShape& s : kSparseShapes) {
    std::mt19937_64 rng(++seed);
    const HostCsr a = random_csr(rng, s.rows, s.cols, s.density, 0.2);
    check(Transpose::no, a, s.n, 1.0f, 0.0f, 0, ++seed);
  }
}

TEST_P(SpmmConformance, TransposedMatchesReference) {
  std::uint64_t seed = 1100;
  for (const SparseShape& s : kSparseShapes) {
    std::mt19937_64 rng(++seed);
    const HostCsr a = random_csr(rng, s.rows, s.cols, s.density, 0.2);
    check(Transpose::yes, a, s.n, 1.0f, 0.0f, 0, ++seed);
  }
}

TEST_P(SpmmConformance, AlphaAndBeta) {
  std::uint64_t seed = 1200;
  for (Transpose ta : kBothTransposes) {
    std::mt19937_64 rng(++seed);
    const HostCsr a = random_csr(rng, 33, 65, 0.1, 0.2);
    check(ta, a, 17, -0.5f, 1.25f, 0, ++seed);
    check(ta, a, 17, 3.0f, -1.0f, 0, ++seed);
    check(ta, a, 17, 0.0f, 0.75f, 0, ++seed);
  }
}

TEST_P(SpmmConformance, CapturedReplaysEachMatrixWrittenIntoItsArrays) {
  std::uint64_t seed = 1400;
  for (const SparseShape& s : kSparseShapes)
    for (Transpose ta : kBothTransposes) {
      std::mt19937_64 rng(++seed);
      const HostCsr first = random_csr(rng, s.rows, s.cols, s.density, 0.2);
      const HostCsr second = random_csr(rng, s.rows, s.cols, s.density * 0.6, 0.1);
      check_in_turn(Calls::captured, ta, {&first, &second}, s.n, 1.0f, 0.0f, 0, ++seed);
      check_in_turn(Calls::captured, ta, {&second, &first}, s.n, -0.5f, 1.25f, 3, ++seed);
    }
  std::mt19937_64 rng(++seed);
  const HostCsr empty = random_csr(rng, 33, 65, 0.0, 0.0);
  const HostCsr full = random_csr(rng, 33, 65, 0.2, 0.0);
  for (Transpose ta : kBothTransposes)
    check_in_turn(Calls::captured, ta, {&empty, &full}, 17, 1.0f, 2.0f, 0, ++seed);
}

// One shape again and again, as training multiplies its batches: the same arrays with new values,
// then another nnz, then a count seen before, then new arrays, each product on its own; the
// transposed products follow the others on the same backend.
TEST_P(SpmmConformance, EachCallOfOneShapeMultipliesItsOwnOperands) {
  std::uint64_t seed = 1450;
  for (Transpose ta : kBothTransposes) {
    std::mt19937_64 rng(++seed);
    const HostCsr first = random_csr(rng, 129, 257, 0.05, 0.2);
    HostCsr revalued = first;
    for (float& value : revalued.values) value = 0.25f - 2.0f * value;
    const HostCsr second = random_csr(rng, 129, 257, 0.02, 0.2);
    ASSERT_NE(first.nnz(), second.nnz());
    check_in_turn(Calls::plain, ta, {&first, &revalued, &second, &first}, 32, 1.0f, 0.0f, 0,
                  ++seed);
    check_in_turn(Calls::plain, ta, {&second, &revalued}, 32, -0.5f, 1.25f, 0, ++seed);
    check(ta, first, 32, 1.0f, 0.0f, 0, ++seed);  // revalued's count, other arrays and values
  }
}

TEST_P(SpmmConformance, CsrWithoutNonZerosGivesScaledC) {
  std::uint64_t seed = 1300;
  for (Transpose ta : kBothTransposes) {
    std::mt19937_64 rng(++seed);
    const HostCsr a = random_csr(rng, 33, 65, 0.0, 0.0);
    ASSERT_EQ(a.nnz(), 0);
    check(ta, a, 17, 1.0f, 0.0f, 0, ++seed);  // zeros over NaN
    check(ta, a, 17, 1.0f, 2.0f, 0, ++seed);
  }
}

TEST_P(SpmmConformance, EveryRowEmptyButSome) {
  std::uint64_t seed = 1400;
  for (Transpose ta : kBothTransposes) {
    std::mt19937_64 rng(++seed);
    const HostCsr a = random_csr(rng, 129, 257, 0.1, 0.9);
    check(ta, a, 32, 1.0f, 0.0f, 0, ++seed);
  }
}

TEST_P(SpmmConformance, ZeroRowAndZeroColumnCsr) {
  std::uint64_t seed = 1500;
  for (Transpose ta : kBothTransposes) {
    std::mt19937_64 rng(++seed);
    // No rows: untransposed c has no rows; transposed c is 65 x n and becomes beta * c.
    check(ta, random_csr(rng, 0, 65, 0.1, 0.0), 17, 1.0f, 0.0f, 0, ++seed);
    check(ta, random_csr(rng, 0, 65, 0.1, 0.0), 17, 1.0f, 1.5f, 0, ++seed);
    // No columns: the mirror image.
    check(ta, random_csr(rng, 33, 0, 0.1, 0.0), 17, 1.0f, 0.0f, 0, ++seed);
    // No columns in b and c.
    check(ta, random_csr(rng, 33, 65, 0.1, 0.0), 0, 1.0f, 0.0f, 0, ++seed);
  }
}

TEST_P(SpmmConformance, LeadingDimensionsLargerThanColumns) {
  std::uint64_t seed = 1600;
  for (Transpose ta : kBothTransposes) {
    std::mt19937_64 rng(++seed);
    const HostCsr a = random_csr(rng, 129, 257, 0.05, 0.2);
    check(ta, a, 32, 1.0f, 0.0f, 5, ++seed);
    check(ta, a, 17, 0.5f, 2.0f, 16, ++seed);
  }
}

TEST_P(SpmmConformance, RejectsMismatchedShapes) {
  std::mt19937_64 rng(1700);
  const BackendCsr a(backend(), random_csr(rng, 6, 5, 0.5, 0.0));
  Buffer<float> b(backend(), 6 * 3);
  Buffer<float> c(backend(), 6 * 3);
  EXPECT_TRUE(throws_error(
      [&] { backend().spmm(Transpose::no, 1.0f, a.view(), b.matrix(4, 3), 0.0f, c.matrix(6, 3)); },
      "shapes do not match", false));
  EXPECT_TRUE(throws_error(
      [&] { backend().spmm(Transpose::yes, 1.0f, a.view(), b.matrix(6, 3), 0.0f, c.matrix(6, 3)); },
      "shapes do not match", false));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(SpmmConformance);

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
  const std::vector<float> inputs = {-1e30f, -1000.0f, -100.0f, -88.0f, -30.0f, -1.0f, -1e-30f,
                                     0.0f,   1e-30f,   1.0f,    30.0f,  88.0f,  100.0f, 1000.0f,
                                     1e30f};
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
      EXPECT_TRUE(std::isfinite(got(0, c))) << "activation of " << inputs[c] << " gave " << got(0, c);
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
        const double z = reference::uniform(rng, 0.0, 1.0) < 0.05 ? 0.0
                                                                 : reference::uniform(rng, -8.0, 8.0);
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
        EXPECT_TRUE(std::isnan(bias_grad[c])) << "bias_grad was null, yet element " << c
                                              << " of an unrelated buffer changed";
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
  for (Activation activation : kAllActivations)
    check(activation, 33, 65, false, false, 0, ++seed);
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

// ==== column sums ====

class ColumnSumsConformance : public BackendTest {
 protected:
  // out = scale * column sums of x (with pad NaN padding columns), out poisoned beforehand; with
  // mean set, scale = 1 / rows.
  void check(std::int64_t rows, std::int64_t cols, bool mean, std::int64_t pad,
             std::uint64_t seed) {
    std::ostringstream trace;
    trace << "column " << (mean ? "means " : "sums ") << rows << "x" << cols << " pad=" << pad;
    SCOPED_TRACE(trace.str());
    std::mt19937_64 rng(seed);
    const FloatMatrix x = random_matrix(rng, rows, cols, -1.0f, 1.0f, cols + pad);
    const float scale = mean && rows > 0 ? 1.0f / static_cast<float>(rows) : 1.0f;
    const std::vector<double> expected = reference::column_sums(x, scale);
    const std::vector<double> error_scale = reference::column_sums(absolute(x), scale);

    const BackendMatrix x_on = upload(x);
    Buffer<float> out_on = upload(std::vector<float>(static_cast<std::size_t>(cols), kPoison));
    backend().column_sums(x_on.const_view(), scale, out_on.data());
    EXPECT_TRUE(vector_close(download(out_on), expected, error_scale, product_tolerance(rows)));
  }
};

TEST_P(ColumnSumsConformance, SumsAndMeansMatchReference) {
  std::uint64_t seed = 4000;
  const Shape shapes[] = {{1, 1},   {7, 13},  {33, 65},   {129, 257},
                          {1, 512}, {300, 512}, {4099, 5}, {100003, 1}};
  for (const Shape& s : shapes)
    for (bool mean : {false, true}) check(s.rows, s.cols, mean, 0, ++seed);
}

TEST_P(ColumnSumsConformance, LeadingDimensionLargerThanColumns) {
  check(33, 65, false, 7, 4100);
  check(129, 257, true, 1, 4101);
}

TEST_P(ColumnSumsConformance, ZeroRowsGiveZeros) {
  check(0, 65, false, 0, 4200);
  check(0, 65, true, 0, 4201);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(ColumnSumsConformance);

// ==== random permutation ====

class PermutationConformance : public BackendTest {
 protected:
  static std::vector<std::int64_t> draw(Backend& backend, std::uint64_t seed, std::int64_t n) {
    Buffer<std::int64_t> out(backend, std::vector<std::int64_t>(static_cast<std::size_t>(n), -1));
    backend.random_permutation(seed, n, out.data());
    return out.download();
  }
  std::vector<std::int64_t> draw(std::uint64_t seed, std::int64_t n) {
    return draw(backend(), seed, n);
  }
};

::testing::AssertionResult is_permutation_of_range(const std::vector<std::int64_t>& p,
                                                   std::int64_t n) {
  if (static_cast<std::int64_t>(p.size()) != n)
    return ::testing::AssertionFailure() << "length " << p.size() << ", expected " << n;
  std::vector<bool> seen(static_cast<std::size_t>(n), false);
  for (std::int64_t i = 0; i < n; ++i) {
    if (p[i] < 0 || p[i] >= n)
      return ::testing::AssertionFailure() << "element " << i << " is " << p[i] << ", outside [0, "
                                           << n << ")";
    if (seen[p[i]])
      return ::testing::AssertionFailure() << "element " << i << " repeats " << p[i];
    seen[p[i]] = true;
  }
  return ::testing::AssertionSuccess();
}

constexpr std::int64_t kPermutationLengths[] = {0, 1, 2, 1000, 100003};
// Seeds whose high 32 bits matter, so a seed truncated anywhere gives a different permutation.
constexpr std::uint64_t kPermutationSeeds[] = {0, 1, 42, std::uint64_t{1} << 32,
                                               0x123456789ABCDEF0ull, ~std::uint64_t{0}};

TEST_P(PermutationConformance, IsAPermutation) {
  for (std::int64_t n : kPermutationLengths)
    EXPECT_TRUE(is_permutation_of_range(draw(7, n), n)) << "n = " << n;
}

// The contract fixes the permutation (sort by a SplitMix64 key, then by index); every backend
// must draw exactly this one.
TEST_P(PermutationConformance, MatchesTheReferenceDefinition) {
  for (std::int64_t n : kPermutationLengths)
    for (std::uint64_t seed : kPermutationSeeds) {
      const std::vector<std::int64_t> expected = reference::random_permutation(seed, n);
      EXPECT_TRUE(exactly_equal(draw(seed, n), expected, static_cast<std::size_t>(n),
                                "permutation"))
          << "seed " << seed << ", n " << n;
    }
}

TEST_P(PermutationConformance, DeterministicForTheSameSeed) {
  for (std::int64_t n : {1000, 100003}) {
    const std::vector<std::int64_t> first = draw(99, n);
    EXPECT_TRUE(exactly_equal(draw(99, n), first, static_cast<std::size_t>(n), "second draw"));
  }
}

TEST_P(PermutationConformance, DiffersBetweenSeeds) {
  const std::vector<std::int64_t> base = draw(1, 1000);
  const std::uint64_t other_seeds[] = {2, 1 + (std::uint64_t{1} << 32), ~std::uint64_t{0} - 1};
  for (std::uint64_t seed : other_seeds)
    EXPECT_NE(draw(seed, 1000), base) << "seed " << seed << " draws the same as seed 1";
}

// What makes a run reproducible across machines: the cuda backend must draw bit for bit what the
// cpu backend draws. The cpu instantiation checks instead that the cpu backend draws the same
// with one thread as with several.
TEST_P(PermutationConformance, BitIdenticalToTheCpuBackend) {
  const std::unique_ptr<Backend> cpu = make_backend(BackendChoice::cpu);
  const int threads_before = omp_get_max_threads();
  for (std::int64_t n : kPermutationLengths)
    for (std::uint64_t seed : kPermutationSeeds) {
      omp_set_num_threads(1);
      const std::vector<std::int64_t> from_cpu = draw(*cpu, seed, n);
      omp_set_num_threads(3);
      const std::vector<std::int64_t> from_backend = draw(seed, n);
      omp_set_num_threads(threads_before);
      EXPECT_TRUE(exactly_equal(from_backend, from_cpu, static_cast<std::size_t>(n),
                                "permutation vs cpu"))
          << "seed " << seed << ", n " << n;
    }
}

// Sanity of the distribution with fixed seeds (so never flaky): over consecutive seeds, which
// element comes first, and where element 0 lands, are each spread evenly over n = 8 places; and
// one long permutation has about one fixed point and about half its neighbours ascending.
TEST_P(PermutationConformance, RoughlyUniform) {
  constexpr std::int64_t kSmall = 8;
  constexpr int kDraws = 1000;
  std::vector<double> first_element(kSmall, 0.0);
  std::vector<double> position_of_zero(kSmall, 0.0);
  for (int seed = 0; seed < kDraws; ++seed) {
    const std::vector<std::int64_t> p = draw(static_cast<std::uint64_t>(seed), kSmall);
    ASSERT_TRUE(is_permutation_of_range(p, kSmall));
    first_element[p[0]] += 1.0;
    position_of_zero[std::find(p.begin(), p.end(), 0) - p.begin()] += 1.0;
  }
  const auto chi_square = [&](const std::vector<double>& counts) {
    const double expected = static_cast<double>(kDraws) / kSmall;
    double sum = 0.0;
    for (double c : counts) sum += (c - expected) * (c - expected) / expected;
    return sum;
  };
  // 7 degrees of freedom: P(chi-square > 30) is about 1e-4.
  EXPECT_LT(chi_square(first_element), 30.0);
  EXPECT_LT(chi_square(position_of_zero), 30.0);

  constexpr std::int64_t kLong = 100003;
  const std::vector<std::int64_t> p = draw(2024, kLong);
  std::int64_t fixed_points = 0;
  std::int64_t ascents = 0;
  for (std::int64_t i = 0; i < kLong; ++i) {
    fixed_points += p[i] == i;
    if (i + 1 < kLong) ascents += p[i] < p[i + 1];
  }
  EXPECT_LE(fixed_points, 10);  // Poisson(1): P(> 10) below 1e-8
  // Ascents of a random permutation: mean (n - 1) / 2, standard deviation sqrt((n + 1) / 12).
  const double ascent_sd = std::sqrt((kLong + 1) / 12.0);
  EXPECT_LT(std::fabs(static_cast<double>(ascents) - (kLong - 1) / 2.0), 6.0 * ascent_sd);
}

TEST_P(PermutationConformance, RejectsNegativeLength) {
  EXPECT_THROW(backend().random_permutation(1, -1, nullptr), Error);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(PermutationConformance);

// ==== gather rows ====

// Output arrays poisoned so that an unwritten or misplaced entry shows.
constexpr RowOffset kOffsetSentinel = -1;
constexpr ColIndex kColumnSentinel = -7;

struct GatherOutput {
  Buffer<RowOffset> row_offsets;
  Buffer<ColIndex> col_indices;
  Buffer<float> values;
  std::int64_t cols = 0;
  std::int64_t capacity = 0;

  CsrOutput output() const {
    return {cols, capacity, row_offsets.data(), col_indices.data(), values.data()};
  }
};

class GatherConformance : public BackendTest {
 protected:
  GatherOutput make_output(std::int64_t cols, std::int64_t count, std::int64_t capacity) {
    const auto n = static_cast<std::size_t>(capacity);
    return {upload(std::vector<RowOffset>(static_cast<std::size_t>(count + 1), kOffsetSentinel)),
            upload(std::vector<ColIndex>(n, kColumnSentinel)),
            upload(std::vector<float>(n, kPoison)), cols, capacity};
  }

  // Gathers row_ids of source into an output of exactly the needed capacity plus spare, and
  // checks every written array against the reference, exactly.
  void check(const HostCsr& source, const std::vector<std::int64_t>& row_ids, std::int64_t spare) {
    std::ostringstream trace;
    trace << "gather " << row_ids.size() << " rows of " << source.rows << "x" << source.cols
          << " (nnz " << source.nnz() << "), spare capacity " << spare;
    SCOPED_TRACE(trace.str());
    const HostCsr expected = reference::gather_rows(source, row_ids);
    const auto count = static_cast<std::int64_t>(row_ids.size());
    const BackendCsr source_on(backend(), source);
    const Buffer<std::int64_t> ids_on = upload(row_ids);
    GatherOutput out = make_output(source.cols, count, expected.nnz() + spare);
    const std::int64_t nnz = backend().gather_rows(source_on.view(), ids_on.data(), count,
                                                   out.output());
    ASSERT_EQ(nnz, expected.nnz());
    const auto length = static_cast<std::size_t>(nnz);
    EXPECT_TRUE(exactly_equal(download(out.row_offsets), expected.row_offsets,
                              static_cast<std::size_t>(count + 1), "row_offsets"));
    EXPECT_TRUE(exactly_equal(download(out.col_indices), expected.col_indices, length,
                              "col_indices"));
    EXPECT_TRUE(exactly_equal(download(out.values), expected.values, length, "values"));
  }
};

std::vector<std::int64_t> random_row_ids(std::mt19937_64& rng, std::int64_t count,
                                         std::int64_t rows) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(count));
  for (std::int64_t& id : ids) id = reference::uniform_int(rng, 0, rows - 1);
  return ids;
}

TEST_P(GatherConformance, MatchesReferenceExactly) {
  std::mt19937_64 rng(5000);
  const HostCsr source = random_csr(rng, 1000, 512, 0.03, 0.2);
  for (std::int64_t count : {1, 7, 256, 1000, 3000})
    check(source, random_row_ids(rng, count, source.rows), 0);
  // A whole epoch's worth: every row once, in permuted order.
  check(source, reference::random_permutation(3, source.rows), 5);
}

TEST_P(GatherConformance, RepeatedRowIdsAreAllowed) {
  std::mt19937_64 rng(5100);
  const HostCsr source = random_csr(rng, 50, 65, 0.2, 0.0);
  check(source, {3, 3, 3, 17, 3, 49, 49}, 0);
}

TEST_P(GatherConformance, EmptyRowsAndSourcesWithoutNonZeros) {
  std::mt19937_64 rng(5200);
  const HostCsr mostly_empty = random_csr(rng, 200, 33, 0.1, 0.9);
  check(mostly_empty, random_row_ids(rng, 150, mostly_empty.rows), 0);
  const HostCsr no_nonzeros = random_csr(rng, 40, 33, 0.0, 0.0);
  ASSERT_EQ(no_nonzeros.nnz(), 0);
  check(no_nonzeros, random_row_ids(rng, 25, no_nonzeros.rows), 0);
  check(no_nonzeros, random_row_ids(rng, 1, no_nonzeros.rows), 0);
}

TEST_P(GatherConformance, CountZeroWritesOnlyTheFirstOffset) {
  std::mt19937_64 rng(5300);
  const BackendCsr source(backend(), random_csr(rng, 10, 13, 0.3, 0.0));
  const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{4});
  GatherOutput out = make_output(13, 0, 4);
  EXPECT_EQ(backend().gather_rows(source.view(), ids.data(), 0, out.output()), 0);
  EXPECT_EQ(download(out.row_offsets), std::vector<RowOffset>{0});
  EXPECT_EQ(download(out.col_indices), std::vector<ColIndex>(4, kColumnSentinel));
}

// Rows of 2, 0 and 3 non-zeros: small enough to count a batch's by hand.
HostCsr three_row_source() {
  HostCsr source;
  source.rows = 3;
  source.cols = 4;
  source.row_offsets = {0, 2, 2, 5};
  source.col_indices = {0, 3, 0, 1, 2};
  source.values = {1, 2, 3, 4, 5};
  return source;
}

TEST_P(GatherConformance, ThrowsWhenTheBatchExceedsCapacity) {
  const BackendCsr source_on(backend(), three_row_source());
  const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{2, 0, 1, 2});  // 8 non-zeros
  GatherOutput out = make_output(4, 4, 7);
  EXPECT_TRUE(throws_error(
      [&] { backend().gather_rows(source_on.view(), ids.data(), 4, out.output()); },
      "gather_rows: batch has 8 non-zeros, output holds 7", true));
  GatherOutput none = make_output(4, 4, 0);
  EXPECT_TRUE(throws_error(
      [&] { backend().gather_rows(source_on.view(), ids.data(), 4, none.output()); },
      "gather_rows: batch has 8 non-zeros, output holds 0", true));
  // The boundary: exactly enough room.
  check(three_row_source(), {2, 0, 1, 2}, 0);
}

TEST_P(GatherConformance, ThrowsForRowIdOutOfRange) {
  std::mt19937_64 rng(5400);
  const BackendCsr source(backend(), random_csr(rng, 10, 13, 0.3, 0.0));
  for (std::int64_t bad : {std::int64_t{10}, std::int64_t{-1}, std::int64_t{1} << 40}) {
    const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{0, 9, bad, 3});
    GatherOutput out = make_output(13, 4, 4 * 13);
    EXPECT_TRUE(throws_error(
        [&] { backend().gather_rows(source.view(), ids.data(), 4, out.output()); },
        "gather_rows: row id " + std::to_string(bad) + " outside [0, 10)", true));
  }
}

// An epoch's ids in batches: batch_nonzeros gives each batch's nnz in one call, and gather_rows
// given that nnz builds the same batch as the reference (the last batch short).
TEST_P(GatherConformance, KnownNonZerosGatherTheSameBatches) {
  std::mt19937_64 rng(5500);
  const HostCsr source = random_csr(rng, 1000, 512, 0.03, 0.2);
  const std::vector<std::int64_t> ids = reference::random_permutation(7, source.rows);
  const BackendCsr source_on(backend(), source);
  const Buffer<std::int64_t> ids_on = upload(ids);
  for (std::int64_t batch_rows : {1, 64, 300, 1000, 4096}) {
    SCOPED_TRACE("batch_rows " + std::to_string(batch_rows));
    const std::int64_t batches = (source.rows + batch_rows - 1) / batch_rows;
    std::vector<std::int64_t> nnz(static_cast<std::size_t>(batches), -1);
    backend().batch_nonzeros(source_on.view(), ids_on.data(), source.rows, batch_rows,
                             nnz.data());
    for (std::int64_t b = 0; b < batches; ++b) {
      const std::int64_t first = b * batch_rows;
      const std::int64_t count = std::min(batch_rows, source.rows - first);
      const HostCsr expected =
          reference::gather_rows(source, {ids.begin() + first, ids.begin() + first + count});
      ASSERT_EQ(nnz[b], expected.nnz()) << "batch " << b;
      GatherOutput out = make_output(source.cols, count, expected.nnz());
      backend().gather_rows(source_on.view(), ids_on.data() + first, count, nnz[b],
                            out.output());
      const auto length = static_cast<std::size_t>(nnz[b]);
      ASSERT_TRUE(exactly_equal(download(out.row_offsets), expected.row_offsets,
                                static_cast<std::size_t>(count + 1), "row_offsets"));
      ASSERT_TRUE(exactly_equal(download(out.col_indices), expected.col_indices, length,
                                "col_indices"));
      ASSERT_TRUE(exactly_equal(download(out.values), expected.values, length, "values"));
    }
  }
}

TEST_P(GatherConformance, BatchNonzerosThrowsForRowIdOutOfRange) {
  std::mt19937_64 rng(5600);
  const BackendCsr source(backend(), random_csr(rng, 10, 13, 0.3, 0.0));
  for (std::int64_t bad : {std::int64_t{10}, std::int64_t{-1}}) {
    const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{0, 9, bad, 3, 5});
    std::vector<std::int64_t> nnz(3);
    EXPECT_TRUE(throws_error(
        [&] { backend().batch_nonzeros(source.view(), ids.data(), 5, 2, nnz.data()); },
        "gather_rows: row id " + std::to_string(bad) + " outside [0, 10)", true));
  }
}

TEST_P(GatherConformance, KnownNonZerosBeyondCapacityThrow) {
  const BackendCsr source_on(backend(), three_row_source());
  const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{2, 0, 1, 2});  // 8 non-zeros
  GatherOutput out = make_output(4, 4, 7);
  EXPECT_TRUE(throws_error(
      [&] { backend().gather_rows(source_on.view(), ids.data(), 4, 8, out.output()); },
      "gather_rows: batch has 8 non-zeros, output holds 7", true));
  // Only the cpu backend can tell a batch beyond its bound without waiting for the device.
  if (is_cpu()) {
    GatherOutput roomy = make_output(4, 4, 10);
    EXPECT_TRUE(throws_error(
        [&] { backend().gather_rows(source_on.view(), ids.data(), 4, 7, roomy.output()); },
        "gather_rows: the batch has 8 non-zeros, more than the 7 given", true));
  }
}

TEST_P(GatherConformance, AnUpperBoundOfTheNonZerosGathersTheBatch) {
  // What a captured step passes: the buffer's capacity, not the batch's count.
  const BackendCsr source_on(backend(), three_row_source());
  const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{2, 0, 1});  // 5 non-zeros
  GatherOutput out = make_output(4, 3, 9);
  backend().gather_rows(source_on.view(), ids.data(), 3, 9, out.output());
  EXPECT_EQ(out.row_offsets.download(), (std::vector<RowOffset>{0, 3, 5, 5}));
  const std::vector<ColIndex> cols = out.col_indices.download();
  const std::vector<float> values = out.values.download();
  EXPECT_EQ(std::vector<ColIndex>(cols.begin(), cols.begin() + 5),
            (std::vector<ColIndex>{0, 1, 2, 0, 3}));
  EXPECT_EQ(std::vector<float>(values.begin(), values.begin() + 5),
            (std::vector<float>{3, 4, 5, 1, 2}));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(GatherConformance);

// ==== reconstruction loss ====

// An element's loss term or gradient: a few float roundings plus expf/log1pf (softplus, sigmoid,
// the Poisson rate) within 2 ulps each and lgammaf (poisson) within 6 ulps on glibc and in CUDA,
// relative to the magnitude of the term (kElementwiseTolerance); a row's loss and mse_cosine's
// gradient also sum cols terms (|y|^2, |x|^2, x.y and the row's terms), which
// product_tolerance(cols) bounds.
double loss_tolerance(std::int64_t cols) {
  return kElementwiseTolerance + product_tolerance(cols);
}

constexpr LossKind kAllLosses[] = {LossKind::mse,     LossKind::mae,          LossKind::bce,
                                   LossKind::mse_cosine, LossKind::poisson, LossKind::weighted_mse,
                                   LossKind::huber};

// The loss parameters the tests use: none at its default, so that a backend that ignored one
// (or read another in its place) fails.
LossParams test_params(float cosine_weight = 0.5f) {
  LossParams params;
  params.cosine_weight = cosine_weight;
  params.zero_weight = 0.3f;
  params.huber_delta = 1.5f;
  return params;
}

// Counts as bce reads them: divided by the largest, into (0, 1].
HostCsr scaled_to_unit(HostCsr m) {
  float largest = 1.0f;
  for (const float v : m.values) largest = std::max(largest, v);
  for (float& v : m.values) v /= largest;
  return m;
}

class LossConformance : public BackendTest {
 protected:
  // Runs the loss of y against target, read as CSR and then as a dense matrix (the dense path),
  // each time into a grad with grad_pad NaN padding columns and a NaN row_loss, and checks both
  // against the reference. Returns the CSR path's outputs.
  std::pair<FloatMatrix, std::vector<float>> check(LossKind kind, const LossParams& params,
                                                   const FloatMatrix& y, const HostCsr& target,
                                                   std::int64_t grad_pad) {
    std::ostringstream trace;
    trace << "loss " << loss_name(kind) << " cosine_weight=" << params.cosine_weight
          << " zero_weight=" << params.zero_weight << " huber_delta=" << params.huber_delta
          << " y " << y.rows << "x" << y.cols << " (ld " << y.ld << "), target nnz "
          << target.nnz() << ", grad_pad=" << grad_pad;
    SCOPED_TRACE(trace.str());
    const reference::LossResult expected =
        reference::reconstruction_loss(kind, params, y, target);

    const BackendMatrix y_on = upload(y);
    std::pair<FloatMatrix, std::vector<float>> csr_result;
    for (const bool dense : {false, true}) {
      SCOPED_TRACE(dense ? "dense target" : "CSR target");
      const BackendMatrix grad_on =
          upload(filled_matrix(y.rows, y.cols, kPoison, y.cols + grad_pad));
      Buffer<float> row_loss_on =
          upload(std::vector<float>(static_cast<std::size_t>(y.rows), kPoison));
      if (dense) {
        FloatMatrix dense_target(target.rows, target.cols, target.cols, 0.0f);
        for (std::int64_t r = 0; r < target.rows; ++r)
          for (RowOffset k = target.row_offsets[r]; k < target.row_offsets[r + 1]; ++k)
            dense_target(r, target.col_indices[k]) = target.values[k];
        const BackendMatrix target_on = upload(dense_target);
        backend().reconstruction_loss(kind, params, y_on.const_view(), target_on.const_view(),
                                      grad_on.view(), row_loss_on.data());
      } else {
        const BackendCsr target_on(backend(), target);
        backend().reconstruction_loss(kind, params, y_on.const_view(), target_on.view(),
                                      grad_on.view(), row_loss_on.data());
      }
      FloatMatrix grad = download(grad_on);
      std::vector<float> row_loss = download(row_loss_on);
      EXPECT_TRUE(matrix_close(grad, expected.grad, expected.grad_magnitude,
                               loss_tolerance(y.cols)))
          << "gradient";
      EXPECT_TRUE(padding_untouched(grad));
      EXPECT_TRUE(vector_close(row_loss, expected.row_loss, expected.row_loss_magnitude,
                               loss_tolerance(y.cols)))
          << "row losses";
      if (!dense) csr_result = {std::move(grad), std::move(row_loss)};
    }
    return csr_result;
  }

  // Random outputs in the range each loss sees in training (logits for bce, log-rates for
  // poisson) against random counts (scaled into (0, 1] for bce).
  void check_random(LossKind kind, const LossParams& params, std::int64_t rows, std::int64_t cols,
                    double density, double empty_rows, std::int64_t y_pad, std::int64_t grad_pad,
                    std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    HostCsr target = random_csr(rng, rows, cols, density, empty_rows);
    if (kind == LossKind::bce) target = scaled_to_unit(std::move(target));
    const auto [low, high] = kind == LossKind::bce       ? std::pair(-6.0f, 6.0f)
                             : kind == LossKind::poisson ? std::pair(-4.0f, 3.0f)
                                                         : std::pair(-1.0f, 4.0f);
    check(kind, params, random_matrix(rng, rows, cols, low, high, cols + y_pad), target,
          grad_pad);
  }
};

TEST_P(LossConformance, MatchesReferenceForEveryLossAndShape) {
  std::uint64_t seed = 7000;
  for (LossKind kind : kAllLosses)
    for (const Shape& s : kElementwiseShapes)
      check_random(kind, test_params(), s.rows, s.cols, 0.1, 0.2, 0, 0, ++seed);
}

TEST_P(LossConformance, CosineWeights) {
  std::uint64_t seed = 7100;
  for (const float weight : {0.0f, 0.1f, 1.0f, 10.0f})
    check_random(LossKind::mse_cosine, test_params(weight), 33, 65, 0.2, 0.1, 0, 0, ++seed);
}

// weighted_mse at zero weights 0 (the zeros ignored), 1 (plain mse) and 10; huber with a delta
// below every |y - x| of a count (linear almost everywhere), at 1.5 and above every |y - x|
// (half the mse everywhere).
TEST_P(LossConformance, ZeroWeightsAndHuberDeltas) {
  std::uint64_t seed = 7150;
  for (const float weight : {0.0f, 1.0f, 10.0f}) {
    LossParams params = test_params();
    params.zero_weight = weight;
    check_random(LossKind::weighted_mse, params, 33, 65, 0.2, 0.1, 0, 0, ++seed);
  }
  for (const float delta : {0.01f, 1.5f, 100.0f}) {
    LossParams params = test_params();
    params.huber_delta = delta;
    check_random(LossKind::huber, params, 33, 65, 0.2, 0.1, 0, 0, ++seed);
  }
  // weighted_mse with zero weight 1 is mse, exactly: the same float operations.
  std::mt19937_64 rng(++seed);
  const HostCsr target = random_csr(rng, 9, 40, 0.3, 0.1);
  const FloatMatrix y = random_matrix(rng, 9, 40, -1.0f, 4.0f);
  LossParams one = test_params();
  one.zero_weight = 1.0f;
  const auto weighted = check(LossKind::weighted_mse, one, y, target, 0);
  const auto mse = check(LossKind::mse, one, y, target, 0);
  EXPECT_EQ(weighted.first.data, mse.first.data);
  EXPECT_EQ(weighted.second, mse.second);
}

TEST_P(LossConformance, RowsWithoutNonZerosAndACsrWithoutAny) {
  std::uint64_t seed = 7200;
  for (LossKind kind : kAllLosses) {
    check_random(kind, test_params(), 129, 257, 0.05, 0.8, 0, 0, ++seed);  // most rows empty
    check_random(kind, test_params(), 33, 65, 0.0, 0.0, 0, 0, ++seed);  // no non-zeros at all
  }
}

TEST_P(LossConformance, BatchOfOneAnd512Wide) {
  std::uint64_t seed = 7300;
  for (LossKind kind : kAllLosses) {
    check_random(kind, test_params(), 1, 512, 0.05, 0.0, 0, 0, ++seed);
    check_random(kind, test_params(), 1, 1, 1.0, 0.0, 0, 0, ++seed);
    check_random(kind, test_params(), 256, 512, 0.03, 0.1, 0, 0, ++seed);
  }
}

TEST_P(LossConformance, LeadingDimensionsLargerThanColumns) {
  std::uint64_t seed = 7400;
  for (LossKind kind : kAllLosses) {
    check_random(kind, test_params(), 33, 65, 0.1, 0.2, 3, 0, ++seed);
    check_random(kind, test_params(), 7, 13, 0.3, 0.2, 0, 5, ++seed);
    check_random(kind, test_params(), 1, 512, 0.05, 0.0, 64, 1, ++seed);
  }
}

TEST_P(LossConformance, NoRowsWritesNothing) {
  for (LossKind kind : kAllLosses) check_random(kind, test_params(), 0, 13, 0.1, 0.0, 0, 0, 7500);
}

// The definitions by hand, independent of the reference: y = [[1, 3, 0], [0, 0, 0]] against
// x = [[0, 2, 0], [0, 0, 0]], averaged over 6 entries.
TEST_P(LossConformance, HandComputedValues) {
  // Float results of a few operations on small exact inputs.
  constexpr double kTolerance = 8.0 * kEps;
  HostCsr x;
  x.rows = 2;
  x.cols = 3;
  x.row_offsets = {0, 1, 1};
  x.col_indices = {1};
  x.values = {2.0f};
  FloatMatrix y(2, 3, 3, 0.0f);
  y(0, 0) = 1.0f;
  y(0, 1) = 3.0f;
  const auto run = [&](LossKind kind, const LossParams& params, const FloatMatrix& out,
                       const HostCsr& target, const std::vector<double>& row_loss,
                       const std::vector<double>& grad) {
    SCOPED_TRACE(loss_name(kind));
    const BackendMatrix y_on = upload(out);
    const BackendCsr target_on(backend(), target);
    const BackendMatrix grad_on = upload(filled_matrix(out.rows, out.cols, kPoison));
    Buffer<float> row_loss_on = upload(std::vector<float>(out.rows, kPoison));
    backend().reconstruction_loss(kind, params, y_on.const_view(), target_on.view(),
                                  grad_on.view(), row_loss_on.data());
    const std::vector<float> got_loss = download(row_loss_on);
    const FloatMatrix got_grad = download(grad_on);
    for (std::size_t r = 0; r < row_loss.size(); ++r)
      EXPECT_NEAR(got_loss[r], row_loss[r], kTolerance * (1.0 + std::fabs(row_loss[r])))
          << "row " << r;
    for (std::size_t i = 0; i < grad.size(); ++i)
      EXPECT_NEAR(got_grad.data[i], grad[i], kTolerance * (1.0 + std::fabs(grad[i])))
          << "gradient element " << i;
  };
  run(LossKind::mse, test_params(0.0f), y, x, {2.0 / 6, 0.0}, {2.0 / 6, 2.0 / 6, 0, 0, 0, 0});
  // mae: sign(0) = 0 where output and target are both 0.
  run(LossKind::mae, test_params(0.0f), y, x, {2.0 / 6, 0.0}, {1.0 / 6, 1.0 / 6, 0, 0, 0, 0});
  // mse_cosine, weight 0.5 over 2 rows: row 0 has |y| = sqrt(10), |x| = 2, x.y = 6; row 1 is all
  // zeros on both sides, so its cosine loss is 1 and its gradient 0.
  const double cosine = 6.0 / (std::sqrt(10.0) * 2.0);
  const double per_row = 0.5 / 2;
  const double norms = std::sqrt(10.0) * 2.0;
  run(LossKind::mse_cosine, test_params(0.5f), y, x, {2.0 / 6 + per_row * (1 - cosine), per_row},
      {2.0 / 6 + per_row * (cosine * 1 / 10), 2.0 / 6 + per_row * (-2 / norms + cosine * 3 / 10),
       0, 0, 0, 0});
  // bce on logits [[0, 2, -1], [0, 0, 0]] against [[0, 0.5, 0], [0, 0, 0]].
  FloatMatrix logits(2, 3, 3, 0.0f);
  logits(0, 1) = 2.0f;
  logits(0, 2) = -1.0f;
  HostCsr half = x;
  half.values = {0.5f};
  const auto softplus = [](double v) { return std::log(1.0 + std::exp(v)); };
  const auto sigmoid = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  run(LossKind::bce, test_params(0.0f), logits, half,
      {(softplus(0) + softplus(2) - 0.5 * 2 + softplus(-1)) / 6, 3 * softplus(0) / 6},
      {0.5 / 6, (sigmoid(2) - 0.5) / 6, sigmoid(-1) / 6, 0.5 / 6, 0.5 / 6, 0.5 / 6});
  // weighted_mse, zero weight 0.3: the zero targets at (0, 0) (y = 1) and (0, 2) (y = 0) pay
  // 0.3 y^2, the count 2 at (0, 1) (y = 3) pays (3 - 2)^2.
  run(LossKind::weighted_mse, test_params(), y, x, {(0.3 + 1.0) / 6, 0.0},
      {2 * 0.3 / 6, 2.0 / 6, 0, 0, 0, 0});
  // huber, delta 1.5, on y = [[1, 5, -2], [0, 0, 0]]: d = 1 (quadratic: 0.5), d = 3 (linear:
  // 1.5 * (3 - 0.75)), d = -2 (linear: 1.5 * (2 - 0.75)).
  FloatMatrix wide(2, 3, 3, 0.0f);
  wide(0, 0) = 1.0f;
  wide(0, 1) = 5.0f;
  wide(0, 2) = -2.0f;
  run(LossKind::huber, test_params(), wide, x, {(0.5 + 1.5 * 2.25 + 1.5 * 1.25) / 6, 0.0},
      {1.0 / 6, 1.5 / 6, -1.5 / 6, 0, 0, 0});
  // poisson on log-rates [[0, 1, -1], [0, 0, 0]]: rate e^eta, and at the count 2 the full
  // negative log-likelihood e - 2 * 1 + log(2!).
  FloatMatrix eta(2, 3, 3, 0.0f);
  eta(0, 1) = 1.0f;
  eta(0, 2) = -1.0f;
  const double e = std::exp(1.0);
  run(LossKind::poisson, test_params(), eta, x,
      {(1.0 + (e - 2.0 + std::log(2.0)) + 1.0 / e) / 6, 3.0 / 6},
      {1.0 / 6, (e - 2.0) / 6, 1.0 / e / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6});
  // Above the continuation point: at eta = 40 the rate is e^30 * 11 and its slope e^30; the
  // count 3 adds -3 * 40 + log(3!) (lost to rounding at this rate, as it must be).
  HostCsr three;
  three.rows = 1;
  three.cols = 2;
  three.row_offsets = {0, 1};
  three.col_indices = {1};
  three.values = {3.0f};
  FloatMatrix high(1, 2, 2, 40.0f);
  const double e30 = std::exp(30.0);
  run(LossKind::poisson, test_params(), high, three,
      {(e30 * 11 + e30 * 11 - 120.0 + std::log(6.0)) / 2}, {e30 / 2, (e30 - 3.0) / 2});
}

// A row whose output is all zeros has no direction: its cosine loss is 1 and only mse's
// gradient remains; likewise a row whose target is empty.
TEST_P(LossConformance, ZeroRowsHaveCosineLossOneAndNoCosineGradient) {
  constexpr double kTolerance = 8.0 * kEps;  // a few roundings of exact small inputs
  HostCsr x;
  x.rows = 2;
  x.cols = 3;
  x.row_offsets = {0, 2, 2};  // row 0: columns 0 and 2; row 1: empty
  x.col_indices = {0, 2};
  x.values = {1.0f, 3.0f};
  FloatMatrix y(2, 3, 3, 0.0f);  // row 0 all zero
  y(1, 0) = 2.0f;
  y(1, 1) = -1.0f;
  const BackendMatrix y_on = upload(y);
  const BackendCsr x_on(backend(), x);
  const BackendMatrix grad_on = upload(filled_matrix(2, 3, kPoison));
  Buffer<float> row_loss_on = upload(std::vector<float>(2, kPoison));
  backend().reconstruction_loss(LossKind::mse_cosine, test_params(1.0f), y_on.const_view(),
                                x_on.view(), grad_on.view(), row_loss_on.data());
  const std::vector<float> row_loss = download(row_loss_on);
  const FloatMatrix grad = download(grad_on);
  // mse over 6 entries, cosine weight 1 over 2 rows.
  EXPECT_NEAR(row_loss[0], (1.0 + 9.0) / 6 + 0.5, kTolerance);
  EXPECT_NEAR(row_loss[1], (4.0 + 1.0) / 6 + 0.5, kTolerance);
  const double expected_grad[] = {-2.0 / 6, 0.0, -6.0 / 6, 4.0 / 6, -2.0 / 6, 0.0};
  for (int i = 0; i < 6; ++i)
    EXPECT_NEAR(grad.data[i], expected_grad[i], kTolerance) << "gradient element " << i;
}

// Far from the usual range: logits of +-100 and +-1000 (softplus and sigmoid must not overflow),
// and counts up to 1e5 for mse and mse_cosine (squares near 1e10, row sums near 1e12).
TEST_P(LossConformance, ExtremeValuesStayFiniteAndAccurate) {
  std::mt19937_64 rng(7600);
  {
    const HostCsr target = scaled_to_unit(random_csr(rng, 8, 64, 0.3, 0.1));
    FloatMatrix logits(8, 64, 64, 0.0f);
    const float extremes[] = {-1000.0f, -100.0f, -30.0f, 30.0f, 100.0f, 1000.0f};
    for (std::size_t i = 0; i < logits.data.size(); ++i) logits.data[i] = extremes[i % 6];
    check(LossKind::bce, test_params(0.0f), logits, target, 0);
  }
  for (LossKind kind : {LossKind::mse, LossKind::mse_cosine, LossKind::mae}) {
    HostCsr target = random_csr(rng, 16, 512, 0.2, 0.1);
    for (float& v : target.values) v = static_cast<float>(reference::uniform_int(rng, 1, 100000));
    const FloatMatrix y = random_matrix(rng, 16, 512, 0.0f, 1e5f);
    check(kind, test_params(1.0f), y, target, 0);
  }
  // check() compares with the reference; finiteness on top, spelled out.
  for (LossKind kind : kAllLosses) {
    const HostCsr target = scaled_to_unit(random_csr(rng, 4, 32, 0.5, 0.0));
    FloatMatrix y(4, 32, 32, 0.0f);
    for (std::size_t i = 0; i < y.data.size(); ++i) y.data[i] = i % 2 ? 100.0f : -100.0f;
    const BackendMatrix y_on = upload(y);
    const BackendCsr target_on(backend(), target);
    const BackendMatrix grad_on = upload(filled_matrix(4, 32, kPoison));
    Buffer<float> row_loss_on = upload(std::vector<float>(4, kPoison));
    backend().reconstruction_loss(kind, test_params(1.0f), y_on.const_view(), target_on.view(),
                                  grad_on.view(), row_loss_on.data());
    for (const float v : download(row_loss_on))
      EXPECT_TRUE(std::isfinite(v)) << loss_name(kind) << " row loss " << v;
    for (const float v : download(grad_on).data)
      EXPECT_TRUE(std::isfinite(v)) << loss_name(kind) << " gradient " << v;
  }
}

// The count losses far from the usual range, through both target paths (check() runs the CSR
// and the dense one): counts from 1 to 1e5 (1e5 itself, 1, and uniform between) among zeros;
// poisson log-rates from -1e4 to 1e4 (expf underflows to 0 below about -104, and would overflow
// above 88.7 but for the linear continuation above 30, the point itself and both sides of it
// included); weighted_mse and huber outputs up to +-1e6 (squares near 1e12). Everything stays
// finite and matches the reference within loss_tolerance of the magnitudes.
TEST_P(LossConformance, CountLossesStayFiniteAtExtremeCountsAndOutputs) {
  std::mt19937_64 rng(7650);
  const float log_rates[] = {-1e4f, -1000.0f, -104.0f, -88.0f, -30.0f, -1.0f,
                             0.0f,  1.0f,     11.5f,   29.99f, 30.0f,  30.01f,
                             88.0f, 89.0f,    100.0f,  1000.0f, 1e4f};
  const float outputs[] = {-1e6f, -1e5f, -1000.0f, -1.0f, 0.0f,
                           0.5f,  1.0f,  1000.0f,  1e5f,  1e6f};
  for (const LossKind kind : {LossKind::poisson, LossKind::weighted_mse, LossKind::huber}) {
    HostCsr target = random_csr(rng, 17, 512, 0.3, 0.1);
    for (std::size_t i = 0; i < target.values.size(); ++i)
      target.values[i] = i % 3 == 0   ? 1e5f
                         : i % 3 == 1 ? 1.0f
                                      : static_cast<float>(reference::uniform_int(rng, 1, 100000));
    FloatMatrix y(17, 512, 512, 0.0f);
    for (float& v : y.data)
      v = kind == LossKind::poisson ? log_rates[reference::uniform_int(rng, 0, 16)]
                                    : outputs[reference::uniform_int(rng, 0, 9)];
    const auto [grad, row_loss] = check(kind, test_params(), y, target, 0);
    for (const float v : row_loss)
      EXPECT_TRUE(std::isfinite(v)) << loss_name(kind) << " row loss " << v;
    for (const float v : grad.data)
      EXPECT_TRUE(std::isfinite(v)) << loss_name(kind) << " gradient " << v;
  }
}

TEST_P(LossConformance, RejectsMismatchedShapes) {
  std::mt19937_64 rng(7700);
  const BackendCsr target(backend(), random_csr(rng, 3, 4, 0.5, 0.0));
  Buffer<float> y(backend(), 3 * 5);
  Buffer<float> grad(backend(), 3 * 5);
  Buffer<float> row_loss(backend(), 3);
  EXPECT_TRUE(throws_error(
      [&] {
        backend().reconstruction_loss(LossKind::mse, test_params(), y.matrix(3, 5), target.view(),
                                      grad.matrix(3, 5), row_loss.data());
      },
      "reconstruction_loss: target 3x4 and y 3x5 differ", true));
  EXPECT_TRUE(throws_error(
      [&] {
        backend().reconstruction_loss(LossKind::mse, test_params(), y.matrix(3, 4), target.view(),
                                      grad.matrix(4, 3), row_loss.data());
      },
      "differ", false));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LossConformance);

// ==== activity penalties ====

// The penalties' values sum rows x cols terms (l1) or average rows activations per unit (kl);
// each term is an element-wise evaluation.
double penalty_tolerance(std::int64_t terms) {
  return kElementwiseTolerance + product_tolerance(terms);
}

class PenaltyConformance : public BackendTest {
 protected:
  enum class Kind { l1, kl };

  // Applies the penalty to a (pad NaN padding columns) into a grad pre-filled with grad_in (same
  // padding, NaN), and a NaN loss slot in backend memory.
  void check(Kind kind, float rho, float weight, const FloatMatrix& a, const FloatMatrix& grad_in) {
    std::ostringstream trace;
    trace << (kind == Kind::l1 ? "l1" : "kl") << " rho=" << rho << " weight=" << weight << " a "
          << a.rows << "x" << a.cols << " (ld " << a.ld << ")";
    SCOPED_TRACE(trace.str());
    const reference::PenaltyResult expected =
        kind == Kind::l1
            ? reference::l1_activity_penalty(weight, reference::to_double(a),
                                             reference::to_double(grad_in))
            : reference::kl_sparsity_penalty(rho, weight, reference::to_double(a),
                                             reference::to_double(grad_in));
    const BackendMatrix a_on = upload(a);
    const BackendMatrix grad_on = upload(grad_in);
    Buffer<float> loss_on = upload(std::vector<float>{kPoison});
    if (kind == Kind::l1) {
      backend().l1_activity_penalty(weight, a_on.const_view(), grad_on.view(), loss_on.data());
    } else {
      backend().kl_sparsity_penalty(rho, weight, a_on.const_view(), grad_on.view(),
                                    loss_on.data());
    }
    const FloatMatrix grad = download(grad_on);
    const std::int64_t terms = kind == Kind::l1 ? a.rows * a.cols : a.rows;
    EXPECT_TRUE(matrix_close(grad, expected.grad, expected.grad_magnitude,
                             penalty_tolerance(terms)))
        << "gradient (pre-filled, added to)";
    EXPECT_TRUE(padding_untouched(grad));
    const float loss = download(loss_on)[0];
    EXPECT_TRUE(std::isfinite(loss)) << "penalty value " << loss;
    EXPECT_NEAR(loss, expected.loss,
                penalty_tolerance(terms) * expected.loss_magnitude + kSubnormalFloor)
        << "penalty value";
  }

  // a uniform in [low, high) with one element in ten exactly 0 (l1's kink; for kl, whose a are a
  // sigmoid layer's probabilities, an activation that underflowed); grad pre-filled with values in
  // [-1, 1).
  void check_random(Kind kind, float rho, float weight, std::int64_t rows, std::int64_t cols,
                    float low, float high, std::int64_t pad, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    FloatMatrix a = random_matrix(rng, rows, cols, low, high, cols + pad);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c)
        if (reference::uniform(rng, 0.0, 1.0) < 0.1) a(r, c) = 0.0f;
    const FloatMatrix grad_in = random_matrix(rng, rows, cols, -1.0f, 1.0f, cols + pad);
    check(kind, rho, weight, a, grad_in);
  }
};

TEST_P(PenaltyConformance, L1MatchesReference) {
  std::uint64_t seed = 8000;
  for (const Shape& s : kElementwiseShapes)
    check_random(Kind::l1, 0.0f, 0.01f, s.rows, s.cols, -2.0f, 2.0f, 0, ++seed);
  check_random(Kind::l1, 0.0f, 3.0f, 33, 65, 0.0f, 5.0f, 0, ++seed);  // relu-like codes
  check_random(Kind::l1, 0.0f, 0.5f, 33, 65, -2.0f, 2.0f, 7, ++seed);
}

// The kl penalty reads a as a sigmoid layer's outputs: probabilities in [0, 1).
TEST_P(PenaltyConformance, KlMatchesReference) {
  std::uint64_t seed = 8100;
  for (const Shape& s : kElementwiseShapes)
    check_random(Kind::kl, 0.05f, 0.3f, s.rows, s.cols, 0.0f, 0.2f, 0, ++seed);
  check_random(Kind::kl, 0.5f, 1.0f, 129, 33, 0.0f, 1.0f, 0, ++seed);  // rho_hat near rho
  check_random(Kind::kl, 0.01f, 2.0f, 33, 65, 0.0f, 0.03f, 5, ++seed);  // rho_hat near rho
  check_random(Kind::kl, 0.05f, 0.7f, 64, 40, 0.9f, 1.0f, 3, ++seed);   // rho_hat near 0.9
}

// By hand: a = [[1, -2], [0, 3]], weight 0.5 over 2 rows: value 0.25 * 6; gradient 0.25 * sign
// added to the pre-filled [[10, 20], [30, 40]] (nothing at a = 0).
TEST_P(PenaltyConformance, L1AddsToTheGradientByHand) {
  FloatMatrix a(2, 2, 2, 0.0f);
  a.data = {1.0f, -2.0f, 0.0f, 3.0f};
  FloatMatrix grad(2, 2, 2, 0.0f);
  grad.data = {10.0f, 20.0f, 30.0f, 40.0f};
  const BackendMatrix a_on = upload(a);
  const BackendMatrix grad_on = upload(grad);
  Buffer<float> loss_on = upload(std::vector<float>{kPoison});
  backend().l1_activity_penalty(0.5f, a_on.const_view(), grad_on.view(), loss_on.data());
  // Every number here is exact in float.
  EXPECT_EQ(download(loss_on)[0], 1.5f);
  EXPECT_EQ(download(grad_on).data, (std::vector<float>{10.25f, 19.75f, 30.0f, 40.25f}));
}

// By hand: a = [0.25, 0.75] in one column makes rho_hat = 1/2; with rho = 0.05 and beta = 1,
// KL = 0.05 ln 0.1 + 0.95 ln 1.9, and each of the 2 rows' activations gets
// (1/2) (-0.05/0.5 + 0.95/0.5) = 0.9 added, whatever its own value (no sigmoid' here: the
// layer's backward applies it).
TEST_P(PenaltyConformance, KlAddsToTheGradientByHand) {
  constexpr double kTolerance = 16.0 * kEps;  // logf and a few roundings
  FloatMatrix a(2, 1, 1, 0.0f);
  a.data = {0.25f, 0.75f};
  FloatMatrix grad(2, 1, 1, 0.0f);
  grad.data = {1.0f, -1.0f};
  const BackendMatrix a_on = upload(a);
  const BackendMatrix grad_on = upload(grad);
  Buffer<float> loss_on = upload(std::vector<float>{kPoison});
  backend().kl_sparsity_penalty(0.05f, 1.0f, a_on.const_view(), grad_on.view(), loss_on.data());
  const double kl = 0.05 * std::log(0.1) + 0.95 * std::log(1.9);
  EXPECT_NEAR(download(loss_on)[0], kl, kTolerance);
  const double added = 0.5 * (-0.05 / 0.5 + 0.95 / 0.5);
  const std::vector<float> got = download(grad_on).data;
  EXPECT_NEAR(got[0], 1.0 + added, kTolerance * 2);
  EXPECT_NEAR(got[1], -1.0 + added, kTolerance * 2);
}

// A dead unit (every activation 0: rho_hat = 0) and a saturated one (every activation 1:
// rho_hat = 1) are clamped to 1e-6 and 1 - 1e-6: large, finite penalties.
TEST_P(PenaltyConformance, KlClampsDeadAndSaturatedUnits) {
  FloatMatrix a(16, 3, 3, 0.0f);
  for (std::int64_t r = 0; r < 16; ++r) {
    a(r, 0) = 0.0f;
    a(r, 1) = 1.0f;
    a(r, 2) = r % 2 ? 0.75f : 0.25f;
  }
  std::mt19937_64 rng(8200);
  const FloatMatrix grad_in = random_matrix(rng, 16, 3, -1.0f, 1.0f);
  check(Kind::kl, 0.05f, 0.5f, a, grad_in);
  // The dead unit alone, by the clamped formula: beta * (rho ln(rho / 1e-6) + (1 - rho) ln((1 -
  // rho) / (1 - 1e-6))) = 0.5 * 0.5409... ~ 0.2705; its value dominates, so check it is there.
  const FloatMatrix dead = filled_matrix(4, 1, 0.0f);
  const BackendMatrix dead_on = upload(dead);
  const BackendMatrix grad_on = upload(filled_matrix(4, 1, 0.0f));
  Buffer<float> loss_on = upload(std::vector<float>{kPoison});
  backend().kl_sparsity_penalty(0.05f, 0.5f, dead_on.const_view(), grad_on.view(), loss_on.data());
  const double expected = 0.5 * (0.05 * std::log(0.05 / 1e-6) + 0.95 * std::log(0.95 / (1 - 1e-6)));
  // The clamp constant itself is rounded to float: 1e-6f differs from 1e-6 by 3e-8 relative, and
  // logf adds an ulp.
  EXPECT_NEAR(download(loss_on)[0], expected, 1e-5 * expected);
  // Each of its 4 activations gets beta/4 * (-rho/1e-6 + (1 - rho)/(1 - 1e-6)) ~ -6250: a
  // strong push up, finite.
  const double dead_grad = 0.5 / 4 * (-0.05 / 1e-6 + 0.95 / (1 - 1e-6));
  for (const float g : download(grad_on).data) EXPECT_NEAR(g, dead_grad, 1e-5 * -dead_grad);
}

TEST_P(PenaltyConformance, NoRowsGiveZeroPenalty) {
  for (Kind kind : {Kind::l1, Kind::kl}) {
    const BackendMatrix a_on = upload(filled_matrix(0, 5, 0.0f));
    const BackendMatrix grad_on = upload(filled_matrix(0, 5, 0.0f));
    Buffer<float> loss_on = upload(std::vector<float>{kPoison});
    if (kind == Kind::l1) {
      backend().l1_activity_penalty(1.0f, a_on.const_view(), grad_on.view(), loss_on.data());
      EXPECT_EQ(download(loss_on)[0], 0.0f) << "l1";
    } else {
      // No rows: rho_hat = 0 clamped to 1e-6 for each of the 5 units, which is still finite.
      backend().kl_sparsity_penalty(0.05f, 1.0f, a_on.const_view(), grad_on.view(),
                                    loss_on.data());
      EXPECT_TRUE(std::isfinite(download(loss_on)[0])) << "kl";
    }
  }
}

TEST_P(PenaltyConformance, RejectsMismatchedShapes) {
  Buffer<float> a(backend(), 6 * 5);
  Buffer<float> grad(backend(), 6 * 5);
  Buffer<float> loss(backend(), 1);
  EXPECT_TRUE(throws_error(
      [&] { backend().l1_activity_penalty(1.0f, a.matrix(6, 5), grad.matrix(5, 6), loss.data()); },
      "l1_activity_penalty: a 6x5 and grad 5x6 differ", true));
  EXPECT_TRUE(throws_error(
      [&] {
        backend().kl_sparsity_penalty(0.05f, 1.0f, a.matrix(6, 5), grad.matrix(6, 4), loss.data());
      },
      "kl_sparsity_penalty: a 6x5 and grad 6x4 differ", true));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(PenaltyConformance);

// ==== sum of squares ====

class SumOfSquaresConformance : public BackendTest {
 protected:
  float run(const std::vector<float>& x) {
    const Buffer<float> x_on = upload(x);
    Buffer<float> out = upload(std::vector<float>{kPoison});
    backend().sum_of_squares(x_on.data(), static_cast<std::int64_t>(x.size()), out.data());
    return download(out)[0];
  }
};

TEST_P(SumOfSquaresConformance, EmptyAndSingle) {
  EXPECT_EQ(run({}), 0.0f) << "n = 0 must write 0";
  EXPECT_EQ(run({-3.0f}), 9.0f);
  EXPECT_EQ(run({1e-3f}), 1e-3f * 1e-3f);
}

TEST_P(SumOfSquaresConformance, MatchesReference) {
  std::uint64_t seed = 9000;
  for (const std::int64_t n : {2, 31, 1000, 65537, (1 << 20) + 3}) {
    std::mt19937_64 rng(++seed);
    const std::vector<float> x = reference::random_log_uniform_floats(rng, n, -4.0, 1.0);
    const double expected = reference::sum_of_squares(x);
    // Every term is positive, so the sum is its own magnitude; squaring adds half an ulp.
    EXPECT_NEAR(run(x), expected, (product_tolerance(n) + kEps) * expected) << "n = " << n;
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(SumOfSquaresConformance);

// ==== optimizer ====

struct OptimizerCase {
  const char* label;
  OptimizerKind kind;
  float weight_decay;
  float momentum;
};

constexpr OptimizerCase kOptimizerCases[] = {
    {"adam", OptimizerKind::adam, 0.0f, 0.0f},
    {"adam + L2 0.01", OptimizerKind::adam, 0.01f, 0.0f},
    {"adamw", OptimizerKind::adamw, 0.0f, 0.0f},
    {"adamw + decoupled decay 0.01", OptimizerKind::adamw, 0.01f, 0.0f},
    {"sgd", OptimizerKind::sgd, 0.0f, 0.0f},
    {"sgd + L2 0.01", OptimizerKind::sgd, 0.01f, 0.0f},
    {"sgd momentum 0.9", OptimizerKind::sgd, 0.0f, 0.9f},
    {"sgd momentum 0.9 + L2 0.01", OptimizerKind::sgd, 0.01f, 0.9f},
};

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Clipping multiplies every gradient by min(1, max_norm / sqrt(sum_squares)): sqrtf, a division
// and the float rounding of the squared norm handed in add about 2 roundings to each update term,
// on top of kOptimizerTolerance.
constexpr double kClipScaleTolerance = 4.0 * kEps;

class OptimizerConformance : public BackendTest {
 protected:
  // One step of the backend from its current state, checked against the reference step run from
  // the same state (downloaded first), so rounding cannot accumulate over steps. With
  // config.max_grad_norm > 0 the backend gets the float of the exact squared norm of grads (the
  // reduction itself is sum_of_squares' own test).
  void step_and_compare(const OptimizerConfig& config, int step, const std::vector<float>& grads,
                        Buffer<float>& params, Buffer<float>& first, Buffer<float>& second) {
    SCOPED_TRACE("step " + std::to_string(step));
    const bool adam_like = config.kind != OptimizerKind::sgd;
    const std::size_t n = grads.size();
    reference::OptimizerState state{to_double(download(params)), to_double(download(first)),
                                    adam_like ? to_double(download(second))
                                              : std::vector<double>{}};
    const reference::OptimizerState before = state;
    const std::vector<double> grads_double = to_double(grads);
    reference::optimizer_step(config, step, grads_double, state);

    const bool clipping = config.max_grad_norm > 0.0f;
    const double sum_squares = reference::sum_of_squares(grads);
    const double clip = clipping ? reference::clip_scale(config.max_grad_norm, sum_squares) : 1.0;
    const Buffer<float> grads_on = upload(grads);
    const Buffer<float> sum_squares_on =
        upload(std::vector<float>{static_cast<float>(sum_squares)});
    backend().optimizer_step(config, step, static_cast<std::int64_t>(n), params.data(),
                             grads_on.data(), first.data(), adam_like ? second.data() : nullptr,
                             clipping ? sum_squares_on.data() : nullptr);

    // Scales: each result's sum of |terms|, from the state before the step.
    const double lr = config.learning_rate;
    const double decay = config.weight_decay;
    const double beta1 = config.beta1;
    const double beta2 = config.beta2;
    const double correction1 = 1.0 - std::pow(beta1, step);
    const double correction2 = 1.0 - std::pow(beta2, step);
    std::vector<double> param_scale(n), first_scale(n), second_scale(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double p = std::fabs(before.params[i]);
      const double g = clip * std::fabs(grads_double[i]);
      if (adam_like) {
        const double g_terms = g + (config.kind == OptimizerKind::adam ? decay * p : 0.0);
        first_scale[i] = beta1 * std::fabs(before.first_moment[i]) + (1 - beta1) * g_terms;
        second_scale[i] = beta2 * before.second_moment[i] + (1 - beta2) * g_terms * g_terms;
        const double denominator = std::sqrt(state.second_moment[i] / correction2) + config.epsilon;
        param_scale[i] = p + (config.kind == OptimizerKind::adamw ? lr * decay * p : 0.0) +
                         lr * (first_scale[i] / correction1) / denominator;
      } else {
        first_scale[i] = config.momentum * std::fabs(before.first_moment[i]) + g + decay * p;
        param_scale[i] = p + lr * first_scale[i];
      }
    }
    const double tolerance = kOptimizerTolerance + (clipping ? kClipScaleTolerance : 0.0);
    EXPECT_TRUE(vector_close(download(params), state.params, param_scale, tolerance))
        << "parameters";
    EXPECT_TRUE(vector_close(download(first), state.first_moment, first_scale, tolerance))
        << (adam_like ? "first moment" : "velocity");
    if (adam_like) {
      EXPECT_TRUE(vector_close(download(second), state.second_moment, second_scale, tolerance))
          << "second moment";
    }
  }

  // Runs kSteps steps of every optimizer case from fresh state; max_norm_factor > 0 turns
  // clipping on with max_grad_norm = max_norm_factor * the norm of the first step's gradients.
  void run_cases(double max_norm_factor, std::uint64_t seed) {
    constexpr std::int64_t kParams = 3001;
    constexpr int kSteps = 5;
    for (const OptimizerCase& c : kOptimizerCases) {
      SCOPED_TRACE(c.label);
      OptimizerConfig config;
      config.kind = c.kind;
      config.learning_rate = 0.01f;
      config.weight_decay = c.weight_decay;
      config.momentum = c.momentum;
      const bool adam_like = c.kind != OptimizerKind::sgd;
      std::mt19937_64 rng(++seed);
      const auto n = static_cast<std::size_t>(kParams);
      Buffer<float> params = upload(reference::random_log_uniform_floats(rng, kParams, -3.0, 1.0));
      Buffer<float> first = upload(std::vector<float>(n, 0.0f));
      Buffer<float> second = upload(std::vector<float>(adam_like ? n : 0, 0.0f));
      for (int step = 1; step <= kSteps; ++step) {
        // Gradients from 1e-9 (where adam's epsilon matters) to 10.
        const std::vector<float> grads = reference::random_log_uniform_floats(rng, kParams, -9, 1);
        if (max_norm_factor > 0.0 && step == 1) {
          config.max_grad_norm =
              static_cast<float>(max_norm_factor * std::sqrt(reference::sum_of_squares(grads)));
        }
        step_and_compare(config, step, grads, params, first, second);
      }
    }
  }
};

// Five consecutive steps on the same buffers (so bias correction sees t = 1..5); sgd runs with no
// second-moment buffer.
TEST_P(OptimizerConformance, ConsecutiveStepsMatchReference) { run_cases(0.0, 6000); }

// Clipping to a quarter of the gradient norm (every step of the five draws gradients of about
// the same norm, so it stays active), against the reference that clips in double.
TEST_P(OptimizerConformance, ClippingActiveMatchesReference) { run_cases(0.25, 6100); }

// A max norm four times the gradient norm leaves the gradients as they are.
TEST_P(OptimizerConformance, ClippingInactiveMatchesReference) { run_cases(4.0, 6200); }

// Scaling by exactly 1 changes nothing: an inactive clip gives bit for bit the unclipped step.
TEST_P(OptimizerConformance, InactiveClipIsBitIdenticalToNoClip) {
  constexpr std::size_t kParams = 1001;
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    SCOPED_TRACE(optimizer_name(kind));
    std::mt19937_64 rng(6300);
    const std::vector<float> start = reference::random_log_uniform_floats(rng, kParams, -3, 1);
    const std::vector<float> grads = reference::random_log_uniform_floats(rng, kParams, -6, 0);
    const auto sum_squares = static_cast<float>(reference::sum_of_squares(grads));
    std::vector<float> results[2];
    for (int clipped = 0; clipped < 2; ++clipped) {
      OptimizerConfig config;
      config.kind = kind;
      config.weight_decay = 0.01f;
      config.max_grad_norm = clipped ? 2.0f * std::sqrt(sum_squares) : 0.0f;
      Buffer<float> params = upload(start);
      const Buffer<float> grads_on = upload(grads);
      Buffer<float> first = upload(std::vector<float>(kParams, 0.0f));
      Buffer<float> second = upload(std::vector<float>(kParams, 0.0f));
      const Buffer<float> norm_on = upload(std::vector<float>{sum_squares});
      for (int step = 1; step <= 3; ++step)
        backend().optimizer_step(config, step, kParams, params.data(), grads_on.data(),
                                 first.data(), second.data(), clipped ? norm_on.data() : nullptr);
      results[clipped] = download(params);
    }
    EXPECT_TRUE(exactly_equal(results[1], results[0], kParams, "inactive clip vs no clip"));
  }
}

// What a captured step does: the learning rate and bias corrections read from backend memory
// (StepScalars) replace the config's and the step's, bit for bit.
TEST_P(OptimizerConformance, StepScalarsInBackendMemoryReplaceRateAndStep) {
  constexpr std::size_t kParams = 1001;
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    SCOPED_TRACE(optimizer_name(kind));
    std::mt19937_64 rng(6350);
    const std::vector<float> start = reference::random_log_uniform_floats(rng, kParams, -3, 1);
    const std::vector<float> grads = reference::random_log_uniform_floats(rng, kParams, -6, 0);
    const std::vector<float> moment = reference::random_log_uniform_floats(rng, kParams, -6, -2);
    std::vector<float> square_moment(moment);
    for (float& v : square_moment) v = std::fabs(v);  // a second moment is never negative
    OptimizerConfig config;
    config.kind = kind;
    config.weight_decay = 0.01f;
    config.learning_rate = 3e-3f;
    constexpr std::int64_t kStep = 7;
    std::vector<float> results[2];
    for (int from_memory = 0; from_memory < 2; ++from_memory) {
      Buffer<float> params = upload(start);
      const Buffer<float> grads_on = upload(grads);
      Buffer<float> first = upload(moment);
      Buffer<float> second = upload(square_moment);
      const Buffer<StepScalars> scalars(
          backend(), std::vector<StepScalars>{math::make_step_scalars(config, kStep)});
      OptimizerConfig given = config;
      if (from_memory) given.learning_rate = 0.5f;  // replaced, as the step is
      backend().optimizer_step(given, from_memory ? 1 : kStep, kParams, params.data(),
                               grads_on.data(), first.data(), second.data(), nullptr,
                               from_memory ? scalars.data() : nullptr);
      results[from_memory] = download(params);
    }
    EXPECT_TRUE(exactly_equal(results[1], results[0], kParams, "scalars from memory vs given"));
    EXPECT_FALSE(exactly_equal(results[0], start, kParams, "")) << "the step changed nothing";
  }
}

// By hand: gradients (3, 4) have norm 5; clipped to 1 they become (0.6, 0.8), and plain sgd
// with learning rate 1 subtracts exactly that. At the boundary (max norm 5) nothing changes.
TEST_P(OptimizerConformance, ClipScaleIsMaxNormOverNorm) {
  // 0.6 and 0.8 are not exact in float: a few roundings of the scale and the update.
  constexpr double kTolerance = 4.0 * kEps;
  for (const float max_norm : {1.0f, 5.0f, 10.0f}) {
    SCOPED_TRACE("max_grad_norm " + std::to_string(max_norm));
    OptimizerConfig config;
    config.kind = OptimizerKind::sgd;
    config.learning_rate = 1.0f;
    config.momentum = 0.0f;
    config.max_grad_norm = max_norm;
    Buffer<float> params = upload(std::vector<float>{0.0f, 0.0f});
    const Buffer<float> grads = upload(std::vector<float>{3.0f, 4.0f});
    Buffer<float> velocity = upload(std::vector<float>{0.0f, 0.0f});
    const Buffer<float> sum_squares = upload(std::vector<float>{25.0f});
    backend().optimizer_step(config, 1, 2, params.data(), grads.data(), velocity.data(), nullptr,
                             sum_squares.data());
    const double scale = std::min(1.0, max_norm / 5.0);
    const std::vector<float> p = download(params);
    EXPECT_NEAR(p[0], -3.0 * scale, kTolerance * 3.0);
    EXPECT_NEAR(p[1], -4.0 * scale, kTolerance * 4.0);
  }
}

// All-zero gradients have norm 0: no division by zero, nothing moves (sgd without decay).
TEST_P(OptimizerConformance, ClippingZeroGradientsStaysFinite) {
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    SCOPED_TRACE(optimizer_name(kind));
    OptimizerConfig config;
    config.kind = kind;
    config.max_grad_norm = 1.0f;
    const std::vector<float> start{1.0f, -2.0f, 0.5f};
    Buffer<float> params = upload(start);
    const Buffer<float> grads = upload(std::vector<float>(3, 0.0f));
    Buffer<float> first = upload(std::vector<float>(3, 0.0f));
    Buffer<float> second = upload(std::vector<float>(3, 0.0f));
    const Buffer<float> sum_squares = upload(std::vector<float>{0.0f});
    backend().optimizer_step(config, 1, 3, params.data(), grads.data(), first.data(),
                             second.data(), sum_squares.data());
    EXPECT_EQ(download(params), start);
    for (const float m : download(first)) EXPECT_EQ(m, 0.0f);
  }
}

TEST_P(OptimizerConformance, ClippingNeedsTheSquaredNorm) {
  OptimizerConfig config;
  config.max_grad_norm = 1.0f;
  Buffer<float> params = upload(std::vector<float>(4, 1.0f));
  const Buffer<float> grads = upload(std::vector<float>(4, 1.0f));
  Buffer<float> first = upload(std::vector<float>(4, 0.0f));
  Buffer<float> second = upload(std::vector<float>(4, 0.0f));
  EXPECT_TRUE(throws_error(
      [&] {
        backend().optimizer_step(config, 1, 4, params.data(), grads.data(), first.data(),
                                 second.data(), nullptr);
      },
      "optimizer_step: clipping needs the squared gradient norm", true));
}

// The update must stop at n: a launch that rounds n up to whole blocks must not touch the rest.
TEST_P(OptimizerConformance, UpdatesExactlyNParameters) {
  constexpr std::size_t kUsed = 1000;
  constexpr std::size_t kAllocated = 1031;
  constexpr float kSentinel = 1234.5f;
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    SCOPED_TRACE(optimizer_name(kind));
    OptimizerConfig config;
    config.kind = kind;
    Buffer<float> params = upload(std::vector<float>(kAllocated, kSentinel));
    const Buffer<float> grads = upload(std::vector<float>(kAllocated, 1.0f));
    Buffer<float> first = upload(std::vector<float>(kAllocated, kSentinel));
    Buffer<float> second = upload(std::vector<float>(kAllocated, kSentinel));
    for (std::int64_t n : {std::int64_t{0}, static_cast<std::int64_t>(kUsed)}) {
      backend().optimizer_step(config, 1, n, params.data(), grads.data(), first.data(),
                               second.data(), nullptr);
      const std::vector<float> p = download(params);
      const std::vector<float> m = download(first);
      const auto used = static_cast<std::size_t>(n);
      for (std::size_t i = 0; i < kAllocated; ++i) {
        if (i < used) {
          ASSERT_NE(p[i], kSentinel) << "parameter " << i << " of " << n << " not updated";
        } else {
          ASSERT_EQ(p[i], kSentinel) << "parameter " << i << " beyond n = " << n << " changed";
          ASSERT_EQ(m[i], kSentinel) << "moment " << i << " beyond n = " << n << " changed";
        }
      }
    }
  }
}

TEST_P(OptimizerConformance, AdamNeedsASecondMoment) {
  Buffer<float> params = upload(std::vector<float>(16, 1.0f));
  const Buffer<float> grads = upload(std::vector<float>(16, 1.0f));
  Buffer<float> first = upload(std::vector<float>(16, 0.0f));
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw}) {
    OptimizerConfig config;
    config.kind = kind;
    EXPECT_THROW(backend().optimizer_step(config, 1, 16, params.data(), grads.data(),
                                          first.data(), nullptr, nullptr),
                 Error)
        << optimizer_name(kind);
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(OptimizerConformance);

// ==== float64 linear algebra (the PCA baseline) ====

// csr_to_dense moves values without arithmetic (but for duplicate entries, summed): exact.
class CsrToDenseConformance : public BackendTest {
 protected:
  // Densifies a into a poisoned rows x ld buffer and checks every element, padding included.
  void check(const HostCsr& a, std::int64_t ld) {
    const BackendCsr a_on(backend(), a);
    const FloatMatrix poisoned = filled_matrix(a.rows, a.cols, kPoison, ld);
    BackendMatrix out = upload(poisoned);
    backend().csr_to_dense(a_on.view(), out.view());
    const FloatMatrix got = download(out);
    std::vector<double> expected(static_cast<std::size_t>(a.rows * a.cols), 0.0);
    for (std::int64_t r = 0; r < a.rows; ++r)
      for (RowOffset k = a.row_offsets[r]; k < a.row_offsets[r + 1]; ++k)
        expected[r * a.cols + a.col_indices[k]] += a.values[k];
    for (std::int64_t r = 0; r < a.rows; ++r) {
      for (std::int64_t c = 0; c < a.cols; ++c)
        ASSERT_EQ(got(r, c), expected[r * a.cols + c]) << "(" << r << ", " << c << ")";
      for (std::int64_t c = a.cols; c < got.ld; ++c)
        ASSERT_TRUE(std::isnan(got(r, c))) << "padding (" << r << ", " << c << ") written";
    }
  }
};

TEST_P(CsrToDenseConformance, MatchesReference) {
  std::uint64_t seed = 9500;
  const Shape shapes[] = {{1, 1}, {7, 13}, {33, 65}, {300, 512}, {1, 512}};
  for (const Shape& s : shapes) {
    std::mt19937_64 rng(++seed);
    check(random_csr(rng, s.rows, s.cols, 0.2, 0.25), s.cols);
    check(random_csr(rng, s.rows, s.cols, 0.2, 0.25), s.cols + 3);
  }
}

TEST_P(CsrToDenseConformance, NoNonZerosAndDuplicates) {
  std::mt19937_64 rng(9600);
  check(random_csr(rng, 9, 11, 0.0, 0.0), 11);
  HostCsr duplicates;  // row 0 names column 2 twice; row 1 is empty
  duplicates.rows = 3;
  duplicates.cols = 4;
  duplicates.row_offsets = {0, 3, 3, 4};
  duplicates.col_indices = {2, 0, 2, 3};
  duplicates.values = {1.5f, 2.0f, 4.0f, 7.0f};
  check(duplicates, 4);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(CsrToDenseConformance);

// accumulate is one float64 addition per element: exact against the same addition here.
class AccumulateConformance : public BackendTest {};

TEST_P(AccumulateConformance, AddsFloatsIntoDoubles) {
  std::uint64_t seed = 9700;
  for (const std::int64_t n : {0, 1, 31, 65537, (1 << 20) + 3}) {
    std::mt19937_64 rng(++seed);
    const std::vector<float> x = reference::random_log_uniform_floats(rng, n, -6.0, 6.0);
    std::vector<double> sums(static_cast<std::size_t>(n + 1));
    for (double& v : sums) v = reference::uniform(rng, -1e6, 1e6);
    const Buffer<float> x_on = upload(x);
    Buffer<double> sums_on = upload(sums);
    backend().accumulate(x_on.data(), n, sums_on.data());
    const std::vector<double> got = download(sums_on);
    for (std::int64_t i = 0; i < n; ++i)
      ASSERT_EQ(got[i], sums[i] + static_cast<double>(x[i])) << "n = " << n << ", i = " << i;
    EXPECT_EQ(got[n], sums[n]) << "the element past n was written";
  }
  EXPECT_TRUE(contains(error_message([&] { backend().accumulate(nullptr, -1, nullptr); }),
                       "accumulate: negative length -1"));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(AccumulateConformance);

// symmetric_eigen against the Jacobi reference in float64. Eigenvalues within 1e-12 of the
// largest magnitude (backward-stable solvers: a few n eps ||A||); eigenvectors, whose signs are
// the solver's, through the residual ||A v - λ v|| and orthonormality at the same scale. The lower
// triangle is NaN, which passes only if nothing reads it.
class SymmetricEigenConformance : public BackendTest {
 protected:
  void check(const std::vector<double>& symmetric, std::int64_t n) {
    std::vector<double> input = symmetric;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < i; ++j) input[i * n + j] = std::nan("");
    Buffer<double> a = upload(input);
    Buffer<double> values = upload(std::vector<double>(static_cast<std::size_t>(n), std::nan("")));
    backend().symmetric_eigen(n, a.data(), values.data());
    const std::vector<double> got_values = download(values);
    const std::vector<double> vectors = download(a);
    const reference::SymmetricEigen expected = reference::symmetric_eigen(symmetric, n);
    double scale = 1e-300;
    for (double v : expected.values) scale = std::max(scale, std::fabs(v));
    const double tolerance = 1e-12 * static_cast<double>(n + 1) * scale;
    for (std::int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(got_values[i], expected.values[i], tolerance) << "n = " << n << ", value " << i;
      for (std::int64_t r = 0; r < n; ++r) {  // (A v_i)_r - λ_i v_i[r]
        double product = 0.0;
        for (std::int64_t c = 0; c < n; ++c) product += symmetric[r * n + c] * vectors[i * n + c];
        ASSERT_NEAR(product, got_values[i] * vectors[i * n + r], tolerance)
            << "n = " << n << ": row " << i << " is no eigenvector";
      }
      for (std::int64_t j = 0; j <= i; ++j) {
        double dot = 0.0;
        for (std::int64_t c = 0; c < n; ++c) dot += vectors[i * n + c] * vectors[j * n + c];
        ASSERT_NEAR(dot, i == j ? 1.0 : 0.0, 1e-12 * static_cast<double>(n + 1))
            << "n = " << n << ": rows " << i << " and " << j;
      }
    }
  }
};

TEST_P(SymmetricEigenConformance, MatchesReference) {
  std::uint64_t seed = 9800;
  for (const std::int64_t n : {1, 2, 7, 64, 129}) {
    std::mt19937_64 rng(++seed);
    std::vector<double> a(static_cast<std::size_t>(n * n));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = i; j < n; ++j)
        a[i * n + j] = a[j * n + i] = reference::uniform(rng, -10.0, 10.0);
    check(a, n);
  }
}

TEST_P(SymmetricEigenConformance, RepeatedAndZeroEigenvalues) {
  std::vector<double> identity(25, 0.0);
  for (int i = 0; i < 5; ++i) identity[i * 5 + i] = 1.0;
  check(identity, 5);
  check(std::vector<double>(16, 0.0), 4);
  // A covariance of rank 1: x xᵀ with x = (1, 2, 3).
  check({1, 2, 3, 2, 4, 6, 3, 6, 9}, 3);
  backend().symmetric_eigen(0, nullptr, nullptr);  // nothing to do, nothing read
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(SymmetricEigenConformance);

}  // namespace
}  // namespace sparseae::test
