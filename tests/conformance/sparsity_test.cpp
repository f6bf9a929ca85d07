// Conformance of topk_rows, batch_topk and threshold_latents (kernels/sparsity.cu,
// src/backend/cpu/sparsity.cpp): the kept entries must be the float64 reference's exactly, ties
// and signed zeros included, since the backends must keep the same latents; the padding (NaN)
// is neither selected nor written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include "conformance_fixtures.hpp"

namespace sparseae::test::conformance {
namespace {

// The elements where got and expected differ (bitwise: +0 and -0 differ too), and the first.
::testing::AssertionResult same_entries(const FloatMatrix& got, const FloatMatrix& expected) {
  std::int64_t mismatches = 0;
  std::ostringstream first;
  for (std::int64_t r = 0; r < expected.rows; ++r)
    for (std::int64_t c = 0; c < expected.cols; ++c) {
      const float g = got(r, c);
      const float e = expected(r, c);
      if (g == e && std::signbit(g) == std::signbit(e)) continue;
      if (mismatches++ == 0)
        first << "element (" << r << ", " << c << "): got " << g << ", expected " << e;
    }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << mismatches << " mismatches; first " << first.str();
}

// Widths 1..4096 across the warp and block sizes, with the k of TopK at 1, in between, and the
// width itself.
constexpr std::int64_t kWidths[] = {1, 2, 3, 31, 32, 33, 64, 100, 255, 256, 257, 1000, 4096};

std::vector<std::int64_t> ks_for(std::int64_t width) {
  std::vector<std::int64_t> ks = {1};
  for (const std::int64_t k : {std::int64_t{2}, std::int64_t{8}, std::int64_t{64}, width / 2})
    if (k > 1 && k < width) ks.push_back(k);
  if (width > 1) ks.push_back(width);
  return ks;
}

// Values drawn from a few levels, so that ties fall at the k-th entry: integers in [0, levels),
// scaled and shifted to straddle zero, with zeros of both signs.
FloatMatrix tied_matrix(std::mt19937_64& rng, std::int64_t rows, std::int64_t cols,
                        std::int64_t levels, std::int64_t ld) {
  FloatMatrix m(rows, cols, ld, kPoison);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const auto level = static_cast<float>(reference::uniform_int(rng, 0, levels - 1));
      const float value = 0.25f * (level - static_cast<float>(levels / 2));
      m(r, c) = value == 0.0f && reference::uniform_int(rng, 0, 1) == 1 ? -0.0f : value;
    }
  return m;
}

class TopKConformance : public BackendTest {
 protected:
  void check(std::int64_t k, const FloatMatrix& z) {
    SCOPED_TRACE("topk k=" + std::to_string(k) + " z " + std::to_string(z.rows) + "x" +
                 std::to_string(z.cols) + " (ld " + std::to_string(z.ld) + ")");
    const BackendMatrix z_on = upload(z);
    backend().topk_rows(k, z_on.view());
    const FloatMatrix got = download(z_on);
    EXPECT_TRUE(same_entries(got, reference::topk_rows(k, z)));
    EXPECT_TRUE(padding_untouched(got));
  }
};

TEST_P(TopKConformance, RandomRowsOfEveryWidth) {
  std::uint64_t seed = 1700;
  for (const std::int64_t width : kWidths) {
    std::mt19937_64 rng(++seed);
    const std::int64_t rows = width >= 1000 ? 3 : 9;
    const FloatMatrix z = random_matrix(rng, rows, width, -2.0f, 2.0f, width + 3);
    for (const std::int64_t k : ks_for(width)) check(k, z);
  }
}

TEST_P(TopKConformance, TiesGoToTheLowerColumn) {
  std::uint64_t seed = 1800;
  for (const std::int64_t width : kWidths) {
    std::mt19937_64 rng(++seed);
    for (const std::int64_t levels : {std::int64_t{1}, std::int64_t{2}, std::int64_t{5}}) {
      const FloatMatrix z = tied_matrix(rng, 4, width, levels, width + 1);
      for (const std::int64_t k : ks_for(width)) check(k, z);
    }
  }
}

// A relu's output: mostly zeros, so that k often reaches into them.
TEST_P(TopKConformance, MostlyZeroRows) {
  std::mt19937_64 rng(1900);
  FloatMatrix z = random_matrix(rng, 16, 300, -3.0f, 1.0f, 301);
  for (std::int64_t r = 0; r < z.rows; ++r)
    for (std::int64_t c = 0; c < z.cols; ++c) z(r, c) = std::max(z(r, c), 0.0f);
  for (const std::int64_t k : {1, 32, 64, 150, 299}) check(k, z);
}

TEST_P(TopKConformance, RefusesKOutsideTheRow) {
  std::mt19937_64 rng(1950);
  const BackendMatrix z_on = upload(random_matrix(rng, 2, 8, -1.0f, 1.0f));
  EXPECT_THROW(backend().topk_rows(0, z_on.view()), Error);
  EXPECT_THROW(backend().topk_rows(9, z_on.view()), Error);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(TopKConformance);

// A threshold not yet estimated (math::kThresholdUnset, written here from the contract).
constexpr float kUnset = -1.0f;

class BatchTopKConformance : public BackendTest {
 protected:
  // Runs batch_topk on z with a threshold slot holding `threshold` and checks the kept entries and
  // the slot against the reference.
  void check(std::int64_t k, const FloatMatrix& z, float threshold) {
    SCOPED_TRACE("batch_topk k=" + std::to_string(k) + " z " + std::to_string(z.rows) + "x" +
                 std::to_string(z.cols) + " (ld " + std::to_string(z.ld) + ") threshold " +
                 std::to_string(threshold));
    const reference::BatchTopKResult expected = reference::batch_topk(k, z);
    const BackendMatrix z_on = upload(z);
    Buffer<float> threshold_on = upload(std::vector<float>{threshold});
    backend().batch_topk(k, z_on.view(), threshold_on.data());
    const FloatMatrix got = download(z_on);
    EXPECT_TRUE(same_entries(got, expected.z));
    EXPECT_TRUE(padding_untouched(got));
    const float got_threshold = download(threshold_on)[0];
    if (std::isinf(expected.smallest_positive)) {
      EXPECT_EQ(got_threshold, threshold) << "no kept entry is positive: the estimate stays";
    } else {
      // The first estimate is the kept entry itself; an update rounds a few float operations.
      const double want = reference::updated_threshold(threshold, expected.smallest_positive);
      EXPECT_NEAR(got_threshold, want, 4.0 * kEps * std::fabs(want) + kSubnormalFloor);
    }
    // No slot: the same selection, nothing else written.
    const BackendMatrix again = upload(z);
    backend().batch_topk(k, again.view(), nullptr);
    EXPECT_TRUE(same_entries(download(again), expected.z));
  }
};

TEST_P(BatchTopKConformance, RandomBatchesOfEveryWidth) {
  std::uint64_t seed = 2000;
  for (const std::int64_t width : kWidths) {
    std::mt19937_64 rng(++seed);
    const std::int64_t rows = width >= 1000 ? 5 : 17;
    const FloatMatrix z = random_matrix(rng, rows, width, -1.0f, 3.0f, width + 2);
    for (const std::int64_t k : ks_for(width)) {
      check(k, z, kUnset);
      check(k, z, 0.75f);
    }
  }
}

TEST_P(BatchTopKConformance, TiesGoToTheLowerRowThenColumn) {
  std::uint64_t seed = 2100;
  for (const std::int64_t width :
       {std::int64_t{1}, std::int64_t{7}, std::int64_t{64}, std::int64_t{513}}) {
    std::mt19937_64 rng(++seed);
    for (const std::int64_t levels : {std::int64_t{1}, std::int64_t{3}, std::int64_t{6}}) {
      const FloatMatrix z = tied_matrix(rng, 11, width, levels, width + 1);
      for (const std::int64_t k : ks_for(width)) check(k, z, 0.5f);
    }
  }
}

// Rows may keep more or fewer than k: one row holds every large entry.
TEST_P(BatchTopKConformance, RowsKeepUnequalCounts) {
  std::mt19937_64 rng(2200);
  FloatMatrix z = random_matrix(rng, 8, 40, 0.0f, 1.0f, 41);
  for (std::int64_t c = 0; c < z.cols; ++c) z(3, c) += 10.0f;
  check(4, z, kUnset);
  const reference::BatchTopKResult expected = reference::batch_topk(4, z);
  std::int64_t kept_in_row_3 = 0;
  for (std::int64_t c = 0; c < z.cols; ++c) kept_in_row_3 += expected.z(3, c) != 0.0f;
  EXPECT_EQ(kept_in_row_3, 32);
}

// Nothing positive kept (all entries negative or zero): the threshold does not move.
TEST_P(BatchTopKConformance, NoPositiveEntryLeavesTheThreshold) {
  std::mt19937_64 rng(2300);
  check(3, random_matrix(rng, 6, 20, -2.0f, -0.5f, 23), 0.25f);
  check(3, filled_matrix(6, 20, 0.0f), kUnset);
}

// The largest batch a training step selects in: 256 rows of a 4096-wide latent.
TEST_P(BatchTopKConformance, LargeBatch) {
  std::mt19937_64 rng(2400);
  check(32, random_matrix(rng, 256, 4096, -1.0f, 1.0f), 0.1f);
}

TEST_P(BatchTopKConformance, RefusesKOutsideTheRow) {
  std::mt19937_64 rng(2450);
  const BackendMatrix z_on = upload(random_matrix(rng, 2, 8, -1.0f, 1.0f));
  EXPECT_THROW(backend().batch_topk(0, z_on.view(), nullptr), Error);
  EXPECT_THROW(backend().batch_topk(9, z_on.view(), nullptr), Error);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(BatchTopKConformance);

class LatentThresholdConformance : public BackendTest {};

// Strictly above the threshold is kept, equal is not; the threshold is read when the op runs.
TEST_P(LatentThresholdConformance, KeepsWhatLiesAbove) {
  std::uint64_t seed = 2500;
  for (const Shape& s : kElementwiseShapes) {
    std::mt19937_64 rng(++seed);
    FloatMatrix z = random_matrix(rng, s.rows, s.cols, -1.0f, 2.0f, s.cols + 3);
    z(0, 0) = 0.5f;  // equal to the threshold: dropped
    for (const float threshold : {0.5f, -1.0f, 1.75f}) {
      const BackendMatrix z_on = upload(z);
      const Buffer<float> threshold_on = upload(std::vector<float>{threshold});
      backend().threshold_latents(z_on.view(), threshold_on.data());
      const FloatMatrix got = download(z_on);
      EXPECT_TRUE(same_entries(got, reference::threshold_latents(z, threshold)))
          << s.rows << "x" << s.cols << " threshold " << threshold;
      EXPECT_TRUE(padding_untouched(got));
    }
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LatentThresholdConformance);

// AuxK's ops (Backend::latent_dead_steps, auxk_backward): the counters exactly as the integer
// reference; the auxiliary latents exactly as the reference's selection (the gradient where the
// code is positive, aux_weight times it on them, else 0: products of one float, so exact), and
// the bias gradient to float rounding of the float64 column sums.
class AuxKConformance : public BackendTest {};

TEST_P(AuxKConformance, DeadStepsCountBatchesWithoutFiring) {
  std::mt19937_64 rng(2300);
  for (const std::int64_t width : {std::int64_t{1}, std::int64_t{33}, std::int64_t{300}}) {
    FloatMatrix z = random_matrix(rng, 5, width, -3.0f, 1.0f, width + 2);
    for (std::int64_t r = 0; r < z.rows; ++r)
      for (std::int64_t c = 0; c < z.cols; ++c) z(r, c) = std::max(z(r, c), 0.0f);
    std::vector<std::int32_t> counters(static_cast<std::size_t>(width));
    for (std::int64_t c = 0; c < width; ++c)
      counters[static_cast<std::size_t>(c)] =
          c % 3 == 0 ? std::numeric_limits<std::int32_t>::max()
                     : static_cast<std::int32_t>(reference::uniform_int(rng, 0, 500));
    const BackendMatrix z_on = upload(z);
    Buffer<std::int32_t> counters_on = upload(counters);
    backend().latent_dead_steps(z_on.view(), counters_on.data());
    EXPECT_EQ(download(counters_on), reference::latent_dead_steps(z, counters));
  }
}

TEST_P(AuxKConformance, BackwardSendsTheGradientToTheTopDeadLatents) {
  std::uint64_t seed = 2400;
  for (const std::int64_t width :
       {std::int64_t{1}, std::int64_t{32}, std::int64_t{257}, std::int64_t{1000}}) {
    for (const std::int64_t aux_k :
         {std::int64_t{0}, std::int64_t{1}, std::int64_t{8}, std::int64_t{64}}) {
      if (aux_k > width) continue;
      SCOPED_TRACE("width " + std::to_string(width) + " aux_k " + std::to_string(aux_k));
      std::mt19937_64 rng(++seed);
      // Tied pre-selection values (ties go to the lower column) and a code that keeps some.
      const FloatMatrix pre = tied_matrix(rng, 7, width, 5, width + 1);
      FloatMatrix z = pre;
      for (std::int64_t r = 0; r < z.rows; ++r)
        for (std::int64_t c = 0; c < z.cols; ++c)
          z(r, c) = reference::uniform_int(rng, 0, 3) == 0 ? std::max(pre(r, c), 0.0f) : 0.0f;
      const FloatMatrix dz = random_matrix(rng, 7, width, -1.0f, 1.0f, width + 1);
      std::vector<std::int32_t> counters(static_cast<std::size_t>(width));
      for (auto& counter : counters)
        counter = static_cast<std::int32_t>(reference::uniform_int(rng, 0, 20));
      constexpr std::int32_t kDeadAfter = 10;
      constexpr float kWeight = 0.25f;
      const reference::AuxKBackwardResult expected =
          reference::auxk_backward(aux_k, kWeight, kDeadAfter, counters, pre, z, dz);
      const BackendMatrix pre_on = upload(pre);
      const BackendMatrix z_on = upload(z);
      const BackendMatrix dz_on = upload(dz);
      Buffer<std::int32_t> counters_on = upload(counters);
      Buffer<float> bias_on = upload(std::vector<float>(static_cast<std::size_t>(width), 7.0f));
      backend().auxk_backward(aux_k, kWeight, kDeadAfter, counters_on.data(), pre_on.view(),
                              z_on.view(), dz_on.view(), bias_on.data());
      const FloatMatrix got = download(dz_on);
      std::int64_t mismatches = 0;
      for (std::int64_t r = 0; r < got.rows; ++r)
        for (std::int64_t c = 0; c < got.cols; ++c)
          mismatches += static_cast<double>(got(r, c)) != expected.dz(r, c);
      EXPECT_EQ(mismatches, 0);
      EXPECT_TRUE(padding_untouched(got));
      const std::vector<float> bias = download(bias_on);
      for (std::int64_t c = 0; c < width; ++c)
        EXPECT_NEAR(bias[static_cast<std::size_t>(c)],
                    expected.bias_grad[static_cast<std::size_t>(c)], 1e-5)
            << "column " << c;
    }
  }
}

TEST_P(AuxKConformance, RefusesAuxKOutsideTheRow) {
  std::mt19937_64 rng(2500);
  const BackendMatrix m = upload(random_matrix(rng, 2, 8, -1.0f, 1.0f));
  Buffer<std::int32_t> counters = upload(std::vector<std::int32_t>(8, 0));
  Buffer<float> bias = upload(std::vector<float>(8, 0.0f));
  EXPECT_THROW(backend().auxk_backward(9, 1.0f, 0, counters.data(), m.view(), m.view(), m.view(),
                                       bias.data()),
               Error);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(AuxKConformance);

}  // namespace
}  // namespace sparseae::test::conformance
