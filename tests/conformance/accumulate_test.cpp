// Conformance of accumulate, the PCA's float64 running totals (kernels/accumulate.cu,
// src/backend/cpu/accumulate.cpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "conformance_fixtures.hpp"
#include "test_util.hpp"

namespace sparseae::test::conformance {
namespace {

using test::contains;
using test::error_message;

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

}  // namespace
}  // namespace sparseae::test::conformance
