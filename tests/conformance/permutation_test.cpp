// Conformance of random_permutation (kernels/permutation.cu, src/backend/cpu/permutation.cpp).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "conformance_fixtures.hpp"
#include "sparseae/error.hpp"

namespace sparseae::test::conformance {
namespace {

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
      return ::testing::AssertionFailure()
             << "element " << i << " is " << p[i] << ", outside [0, " << n << ")";
    if (seen[p[i]]) return ::testing::AssertionFailure() << "element " << i << " repeats " << p[i];
    seen[p[i]] = true;
  }
  return ::testing::AssertionSuccess();
}

constexpr std::int64_t kPermutationLengths[] = {0, 1, 2, 1000, 100003};
// Seeds whose high 32 bits matter, so a seed truncated anywhere gives a different permutation.
constexpr std::uint64_t kPermutationSeeds[] = {
    0, 1, 42, std::uint64_t{1} << 32, 0x123456789ABCDEF0ull, ~std::uint64_t{0}};

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
      EXPECT_TRUE(
          exactly_equal(draw(seed, n), expected, static_cast<std::size_t>(n), "permutation"))
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
      EXPECT_TRUE(
          exactly_equal(from_backend, from_cpu, static_cast<std::size_t>(n), "permutation vs cpu"))
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

}  // namespace
}  // namespace sparseae::test::conformance
