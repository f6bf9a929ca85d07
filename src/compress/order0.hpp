#pragma once
// The order-0 code of lossless mode: each column's counts coded with one pmf of its own, counts
// 0..n-1 explicit and an escape followed by the excess for larger ones (the pmfs and escape code
// of entry_coding.hpp), fitted on the histogram of the rows being compressed. The file stores the
// quantised frequencies themselves, so decoding needs no model and no floating point.
#include <cstdint>
#include <vector>

#include "compress/entry_coding.hpp"
#include "compress/rans.hpp"
#include "sparseae/checkpoint.hpp"

namespace sparseae::lossless {

// How often each column holds each count below kMaxExplicitCounts, and a larger one.
class ColumnHistogram {
 public:
  explicit ColumnHistogram(std::int64_t cols);
  // A model's RunConfig::training_count_histogram, whose bins are this class's.
  explicit ColumnHistogram(const RunConfig& config);
  // row: cols counts, dense.
  void add(const float* row);
  std::int64_t cols() const { return cols_; }
  std::uint64_t rows() const { return rows_; }
  // How many rows hold count in column c; count kMaxExplicitCounts stands for every larger one.
  std::uint64_t frequency(std::int64_t c, int count) const {
    return counts_[static_cast<std::size_t>(c * kBins + count)];
  }

 private:
  static constexpr int kBins = kMaxExplicitCounts + 1;
  static_assert(kBins == kTrainingHistogramBins, "a model's training histogram has these bins");
  std::int64_t cols_;
  std::uint64_t rows_ = 0;
  std::vector<std::uint64_t> counts_;
};

// One quantised pmf per column: counts up to the largest one seen below kMaxExplicitCounts are
// explicit, the rest escape.
class Order0Tables {
 public:
  explicit Order0Tables(const ColumnHistogram& histogram);
  // Reads tables that encode() wrote for cols columns; throws Error when they are not valid.
  Order0Tables(const std::uint8_t* data, std::size_t size, std::int64_t cols);

  // The tables as a rANS stream: per column the explicit counts, then each one's frequency (the
  // escape's is what the total leaves), in adaptive Elias-gamma codes.
  std::vector<std::uint8_t> encode() const;
  const CountPmf& column(std::int64_t c) const { return pmfs_[static_cast<std::size_t>(c)]; }
  std::int64_t cols() const { return static_cast<std::int64_t>(pmfs_.size()); }

 private:
  std::vector<CountPmf> pmfs_;
};

// Codes dense rows of counts with the tables. The escape's adaptive code starts fresh with each
// coder: one per block.
class Order0RowCoder {
 public:
  explicit Order0RowCoder(const Order0Tables& tables) : tables_(&tables) {}
  void put(RansEncoder& encoder, const float* counts);
  void get(RansDecoder& decoder, float* counts);

 private:
  const Order0Tables* tables_;
  AdaptiveInteger excess_;
};

}  // namespace sparseae::lossless
