#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"

namespace sparseae {
namespace {

TopicDataConfig rows_of_default(std::int64_t rows) {
  TopicDataConfig config;
  config.rows = rows;
  return config;
}

void expect_identical(const HostCsr& a, const HostCsr& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  EXPECT_EQ(a.row_offsets, b.row_offsets);
  EXPECT_EQ(a.col_indices, b.col_indices);
  EXPECT_EQ(a.values, b.values);
}

// FNV-1a over the arrays, to pin the exact output of a seed.
std::uint64_t fingerprint(const HostCsr& m) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  const auto mix = [&](std::uint64_t word) {
    for (int i = 0; i < 8; ++i) {
      hash ^= (word >> (8 * i)) & 0xff;
      hash *= 0x100000001b3ull;
    }
  };
  for (const RowOffset offset : m.row_offsets) mix(static_cast<std::uint64_t>(offset));
  for (const ColIndex column : m.col_indices) mix(static_cast<std::uint64_t>(column));
  for (const float value : m.values) mix(static_cast<std::uint64_t>(value));
  return hash;
}

// The default dataset is generated once and shared by the tests that only read it.
const HostCsr& default_dataset() {
  static const HostCsr dataset = generate_topic_counts(TopicDataConfig{});
  return dataset;
}

TEST(Generator, SameSeedSameMatrixDifferentSeedDifferentMatrix) {
  TopicDataConfig config = rows_of_default(2000);
  const HostCsr first = generate_topic_counts(config);
  expect_identical(generate_topic_counts(config), first);
  config.seed = 43;
  const HostCsr other = generate_topic_counts(config);
  EXPECT_NE(other.col_indices, first.col_indices);
}

TEST(Generator, GivesEveryPlatformTheSameMatrix) {
  // Pinned when the generator was written, and the same from g++ and clang++ at -O0, at -O3 with
  // fused multiply-adds, and with -ffast-math: a change here changes every user's default data.
  EXPECT_EQ(topic_mean_row_length(TopicDataConfig{}), 38.34326171875);
  EXPECT_EQ(fingerprint(generate_topic_counts(rows_of_default(1000))), 3251904911160537310ull);
}

TEST(Generator, RowsDoNotDependOnTheThreadCount) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const HostCsr one_thread = generate_topic_counts(rows_of_default(1000));
  omp_set_num_threads(2);
  const HostCsr two_threads = generate_topic_counts(rows_of_default(1000));
  omp_set_num_threads(threads);
  expect_identical(two_threads, one_thread);
  // A longer run holds the same rows first: a row depends on the seed and its index alone.
  const HostCsr longer = generate_topic_counts(rows_of_default(3000));
  const RowOffset shared_nonzeros = one_thread.nnz();
  EXPECT_TRUE(std::equal(one_thread.row_offsets.begin(), one_thread.row_offsets.end(),
                         longer.row_offsets.begin()));
  EXPECT_TRUE(
      std::equal(one_thread.values.begin(), one_thread.values.end(), longer.values.begin()));
  EXPECT_TRUE(std::equal(longer.col_indices.begin(), longer.col_indices.begin() + shared_nonzeros,
                         one_thread.col_indices.begin()));
}

TEST(Generator, MakesAValidMatrixOfPositiveIntegerCounts) {
  const HostCsr& m = default_dataset();
  EXPECT_EQ(m.rows, 100000);
  EXPECT_EQ(m.cols, 512);
  ASSERT_NO_THROW(m.validate());
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (RowOffset k = m.row_offsets[r] + 1; k < m.row_offsets[r + 1]; ++k)
      ASSERT_LT(m.col_indices[k - 1], m.col_indices[k]) << "row " << r;
  for (const float value : m.values) {
    ASSERT_GE(value, 1.0f);
    ASSERT_EQ(value, std::floor(value));
  }
}

TEST(Generator, HasTheRequestedDensityAndMostlySmallCounts) {
  const HostCsr& m = default_dataset();
  const double mean_nonzeros = static_cast<double>(m.nnz()) / static_cast<double>(m.rows);
  EXPECT_NEAR(mean_nonzeros, 20.0, 0.15 * 20.0);
  std::int64_t small = 0, ones = 0;
  float largest = 0;
  double total = 0;
  for (const float value : m.values) {
    small += value <= 3.0f;
    ones += value == 1.0f;
    largest = std::max(largest, value);
    total += value;
  }
  EXPECT_GT(static_cast<double>(small) / static_cast<double>(m.nnz()), 0.85);
  EXPECT_GT(static_cast<double>(ones) / static_cast<double>(m.nnz()), 0.5);
  EXPECT_GE(largest, 10.0f);  // and a tail
  // The row lengths (sums of counts) average what the calibration chose.
  EXPECT_NEAR(total / static_cast<double>(m.rows), topic_mean_row_length(TopicDataConfig{}), 0.5);
}

std::int64_t unused_columns(const HostCsr& m) {
  std::vector<bool> used(static_cast<std::size_t>(m.cols), false);
  for (const ColIndex column : m.col_indices) used[static_cast<std::size_t>(column)] = true;
  return std::count(used.begin(), used.end(), false);
}

TEST(Generator, UsesEveryColumn) {
  EXPECT_EQ(unused_columns(generate_topic_counts(rows_of_default(1000))), 0);
  EXPECT_EQ(unused_columns(default_dataset()), 0);
}

TEST(Generator, MeetsTheDensityOfOtherShapes) {
  TopicDataConfig config;
  config.rows = 20000;
  config.cols = 128;
  config.topics = 8;
  config.columns_per_topic = 16;
  config.mean_nonzeros = 8;
  config.max_topics_per_row = 2;
  config.seed = 7;
  const HostCsr m = generate_topic_counts(config);
  EXPECT_NEAR(static_cast<double>(m.nnz()) / static_cast<double>(m.rows), 8.0, 0.15 * 8.0);
}

TEST(Generator, NamesAConfigurationValueOutOfRange) {
  const auto expect_refused = [](const std::function<void(TopicDataConfig&)>& change,
                                 const std::string& message) {
    TopicDataConfig config;
    change(config);
    try {
      generate_topic_counts(config);
      ADD_FAILURE() << "accepted; expected: " << message;
    } catch (const Error& error) {
      EXPECT_EQ(std::string(error.what()), message);
    }
  };
  expect_refused([](TopicDataConfig& c) { c.topics = 0; },
                 "TopicDataConfig: topics must be in [1, 65536], got 0");
  expect_refused([](TopicDataConfig& c) { c.mean_nonzeros = 200; },
                 "TopicDataConfig: mean_nonzeros must be in (0, cols / 4], got 200.000000");
  expect_refused([](TopicDataConfig& c) { c.max_topics_per_row = 9; },
                 "TopicDataConfig: max_topics_per_row must be in [1, min(topics, 8)], got 9");
  expect_refused(
      [](TopicDataConfig& c) {
        c.background_fraction = 0;
        c.max_topics_per_row = 1;
        c.columns_per_topic = 8;
      },
      "TopicDataConfig: mean_nonzeros 20.000000 is out of reach: rows draw from about 8.000000 "
      "columns (raise columns_per_topic, max_topics_per_row or background_fraction)");
}

}  // namespace
}  // namespace sparseae
