#pragma once
// Small helpers the test files share.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"

namespace sparseae::test {

// Whether this build runs under AddressSanitizer (gcc says so by a macro, clang by a feature).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
constexpr bool kAddressSanitizer = __has_feature(address_sanitizer);
#else
constexpr bool kAddressSanitizer = false;
#endif

// A CSR matrix from its parts, as written out in a test.
inline HostCsr csr(std::int64_t rows, std::int64_t cols, std::vector<RowOffset> offsets,
                   std::vector<ColIndex> columns, std::vector<float> values) {
  HostCsr m;
  m.rows = rows;
  m.cols = cols;
  m.row_offsets = std::move(offsets);
  m.col_indices = std::move(columns);
  m.values = std::move(values);
  return m;
}

// Expects two CSR matrices to be the same, part by part (so that a failure names the part).
inline void expect_same(const HostCsr& actual, const HostCsr& expected) {
  EXPECT_EQ(actual.rows, expected.rows);
  EXPECT_EQ(actual.cols, expected.cols);
  EXPECT_EQ(actual.row_offsets, expected.row_offsets);
  EXPECT_EQ(actual.col_indices, expected.col_indices);
  EXPECT_EQ(actual.values, expected.values);
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Expects run() to throw Error with part in its message.
template <typename Run>
void expect_error_containing(Run run, const std::string& part) {
  try {
    run();
    ADD_FAILURE() << "no error; expected one containing '" << part << "'";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), part)) << "'" << e.what() << "' lacks '" << part << "'";
  }
}

// Generated counts of 128 columns (8 topics of 12 columns, about mean_nonzeros non-zeros a row):
// small enough to train a model on in a test.
inline HostCsr narrow_topic_counts(std::int64_t rows, std::uint64_t seed,
                                   double mean_nonzeros = 10) {
  TopicDataConfig data;
  data.rows = rows;
  data.cols = 128;
  data.topics = 8;
  data.columns_per_topic = 12;
  data.mean_nonzeros = mean_nonzeros;
  data.seed = seed;
  return generate_topic_counts(data);
}

// Generated counts of 64 columns (6 topics of 10 columns, about 8 non-zeros a row): a latent of
// a few units learns them in a few epochs.
inline HostCsr small_topic_counts(std::int64_t rows, std::uint64_t seed) {
  TopicDataConfig config;
  config.rows = rows;
  config.cols = 64;
  config.topics = 6;
  config.columns_per_topic = 10;
  config.mean_nonzeros = 8;
  config.seed = seed;
  return generate_topic_counts(config);
}

// Heavy-tailed counts: topic counts of 3 000 rows x 128 columns in which every tenth row (from
// the tenth) is multiplied by 300, so that a tenth of the rows hold counts in the hundreds to
// thousands (as code tokens and colour histograms do, bench/real-data/README.md).
inline HostCsr heavy_tailed_counts() {
  TopicDataConfig config;
  config.rows = 3000;
  config.cols = 128;
  config.topics = 8;
  HostCsr data = generate_topic_counts(config);
  for (std::int64_t row = 9; row < data.rows; row += 10)
    for (RowOffset i = data.row_offsets[row]; i < data.row_offsets[row + 1]; ++i)
      data.values[static_cast<std::size_t>(i)] *= 300.0f;
  return data;
}

// Runs op, which must throw Error; returns its message ("" and a test failure when it does not).
template <typename Op>
std::string error_message(Op&& op) {
  try {
    op();
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no sparseae::Error thrown";
  return "";
}

}  // namespace sparseae::test
