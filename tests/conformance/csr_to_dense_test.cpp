// Conformance of csr_to_dense, the row block of the PCA's covariance (kernels/csr_to_dense.cu,
// src/backend/cpu/csr_to_dense.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "conformance_fixtures.hpp"
#include "sparseae/csr.hpp"

namespace sparseae::test::conformance {
namespace {

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

}  // namespace
}  // namespace sparseae::test::conformance
