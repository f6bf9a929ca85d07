// Conformance of symmetric_eigen, the PCA's float64 eigen-decomposition, which libraries run
// (LAPACK in src/backend/cpu/cpu_backend.cpp, cuSOLVER on cuda): no kernels/*.cu of its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "conformance_fixtures.hpp"

namespace sparseae::test::conformance {
namespace {

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
}  // namespace sparseae::test::conformance
