// Conformance of spmm, the CSR × dense products a·b and aᵀ·b (kernels/csr_spmm.cu and cuSPARSE,
// src/backend/cpu/csr_spmm.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <utility>
#include <vector>

#include "conformance_fixtures.hpp"
#include "sparseae/csr.hpp"

namespace sparseae::test::conformance {
namespace {

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
constexpr SparseShape kSparseShapes[] = {
    {1, 1, 1, 1.0},     {7, 13, 5, 0.3},      {33, 65, 17, 0.1},  {129, 257, 32, 0.05},
    {1, 512, 32, 0.05}, {256, 512, 33, 0.03}, {64, 512, 512, 0.2}};

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

}  // namespace
}  // namespace sparseae::test::conformance
