#include "compress/order0.hpp"

#include <algorithm>
#include <string>

#include "sparseae/error.hpp"

namespace sparseae::lossless {

ColumnHistogram::ColumnHistogram(std::int64_t cols)
    : cols_(cols), counts_(static_cast<std::size_t>(cols * kBins), 0) {}

void ColumnHistogram::add(const float* row) {
  for (std::int64_t c = 0; c < cols_; ++c) {
    const float clamped = std::min(row[c], static_cast<float>(kMaxExplicitCounts));
    ++counts_[static_cast<std::size_t>(c * kBins + static_cast<std::int64_t>(clamped))];
  }
  ++rows_;
}

ColumnHistogram::ColumnHistogram(const RunConfig& config)
    : cols_(config.model.input_dim), counts_(config.training_count_histogram) {
  require(!counts_.empty() && counts_.size() == static_cast<std::size_t>(cols_ * kBins),
          "the model holds no count histogram of its training rows (trained before it was stored, "
          "on values that are not counts, or a PCA model): use --codec order0");
  for (int count = 0; count < kBins; ++count) rows_ += counts_[static_cast<std::size_t>(count)];
}

Order0Tables::Order0Tables(const ColumnHistogram& histogram)
    : pmfs_(static_cast<std::size_t>(histogram.cols())) {
  const double rows = static_cast<double>(std::max<std::uint64_t>(histogram.rows(), 1));
  double probability[kMaxExplicitCounts];
  for (std::int64_t c = 0; c < histogram.cols(); ++c) {
    int explicit_counts = 1;
    for (int count = 0; count < kMaxExplicitCounts; ++count) {
      probability[count] = static_cast<double>(histogram.frequency(c, count)) / rows;
      if (histogram.frequency(c, count) != 0) explicit_counts = count + 1;
    }
    const double escape = static_cast<double>(histogram.frequency(c, kMaxExplicitCounts)) / rows;
    quantise_pmf(probability, explicit_counts, escape, pmfs_[static_cast<std::size_t>(c)]);
  }
}

Order0Tables::Order0Tables(const std::uint8_t* data, std::size_t size, std::int64_t cols)
    : pmfs_(static_cast<std::size_t>(cols)) {
  RansDecoder decoder(data, size);
  AdaptiveInteger explicit_counts, frequency;
  for (std::int64_t c = 0; c < cols; ++c) {
    CountPmf& pmf = pmfs_[static_cast<std::size_t>(c)];
    const std::uint32_t n = explicit_counts.get(decoder) + 1;
    require(n <= static_cast<std::uint32_t>(kMaxExplicitCounts),
            "column " + std::to_string(c + 1) + " has " + std::to_string(n) +
                " explicit counts, more than " + std::to_string(kMaxExplicitCounts));
    pmf.explicit_counts = static_cast<int>(n);
    pmf.cumulative[0] = 0;
    for (std::uint32_t s = 0; s < n; ++s) {
      const std::uint64_t next =
          static_cast<std::uint64_t>(pmf.cumulative[s]) + frequency.get(decoder) + 1;
      // The escape needs a slot of its own after the explicit counts.
      require(next < (1u << kPmfBits), "column " + std::to_string(c + 1) +
                                           ": frequencies beyond the total of 2^" +
                                           std::to_string(kPmfBits));
      pmf.cumulative[s + 1] = static_cast<std::uint32_t>(next);
    }
    pmf.cumulative[n + 1] = 1u << kPmfBits;
  }
  decoder.finish();
}

std::vector<std::uint8_t> Order0Tables::encode() const {
  RansEncoder encoder;
  AdaptiveInteger explicit_counts, frequency;
  for (const CountPmf& pmf : pmfs_) {
    explicit_counts.put(encoder, static_cast<std::uint32_t>(pmf.explicit_counts - 1));
    for (int s = 0; s < pmf.explicit_counts; ++s)
      frequency.put(encoder, pmf.cumulative[s + 1] - pmf.cumulative[s] - 1);
  }
  return encoder.finish();
}

void Order0RowCoder::put(RansEncoder& encoder, const float* counts) {
  for (std::int64_t c = 0; c < tables_->cols(); ++c)
    put_count(encoder, tables_->column(c), excess_, static_cast<std::uint32_t>(counts[c]));
}

void Order0RowCoder::get(RansDecoder& decoder, float* counts) {
  for (std::int64_t c = 0; c < tables_->cols(); ++c)
    counts[c] = static_cast<float>(get_count(decoder, tables_->column(c), excess_));
}

}  // namespace sparseae::lossless
