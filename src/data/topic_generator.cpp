// The topic-mixture count generator. Every draw comes from SplitMix64 streams keyed by (seed,
// purpose, index) and is turned into a sample with integer arithmetic and correctly rounded
// IEEE operations only (no std::*_distribution, no exp or log, whose results vary between
// implementations), so a seed gives the same matrix everywhere. Rows are generated from their
// own stream, which makes the result independent of how rows are split among threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "math/op_math.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"

namespace sparseae {

namespace {

// Stream ids ("topics", "calib", "rows" in ASCII) keep the draws made for each purpose apart.
constexpr std::uint64_t kTopicStream = 0x746f70696373ull;
constexpr std::uint64_t kCalibrationStream = 0x63616c6962ull;
constexpr std::uint64_t kRowStream = 0x726f7773ull;

constexpr int kMaxTopicsPerRow = 8;
constexpr std::uint32_t kZipfScale = 1u << 24;
constexpr std::uint32_t kZipfOffset = 4;
// Mixtures drawn to estimate how many distinct columns a row of a given length has.
constexpr int kCalibrationMixtures = 256;

class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream, std::uint64_t index)
      : state_(math::mix64(math::mix64(seed ^ stream) ^ index)) {}

  std::uint64_t next() {
    const std::uint64_t out = math::mix64(state_);
    state_ += 0x9E3779B97F4A7C15ull;
    return out;
  }
  // Uniform in [0, n), n <= 2^32, by multiply-shift of the top 32 bits.
  std::uint32_t below(std::uint64_t n) {
    return static_cast<std::uint32_t>(((next() >> 32) * n) >> 32);
  }
  // True with probability threshold / 2^53.
  bool chance(std::uint64_t threshold) { return (next() >> 11) < threshold; }

 private:
  std::uint64_t state_;
};

constexpr double kTwoPow53 = 0x1p53;

// The threshold that makes Rng::chance true with probability p (p * 2^53 is exact).
std::uint64_t chance_threshold(double p) {
  return static_cast<std::uint64_t>(std::min(std::max(p, 0.0), 1.0) * kTwoPow53);
}

struct Topic {
  std::vector<ColIndex> columns;
  std::vector<std::uint32_t> cumulative_weights;
};

struct Mixture {
  int count = 0;
  int topics[kMaxTopicsPerRow] = {};
  std::uint32_t cumulative_weights[kMaxTopicsPerRow] = {};
};

void validate(const TopicDataConfig& c) {
  const auto check = [](bool ok, const std::string& what) {
    require(ok, "TopicDataConfig: " + what);
  };
  check(c.rows >= 0, "rows must be >= 0, got " + std::to_string(c.rows));
  check(c.cols >= 1 && c.cols <= (1 << 24),
        "cols must be in [1, 16777216], got " + std::to_string(c.cols));
  check(c.topics >= 1 && c.topics <= 65536,
        "topics must be in [1, 65536], got " + std::to_string(c.topics));
  check(c.columns_per_topic >= 1 && c.columns_per_topic <= std::min<std::int64_t>(c.cols, 65536),
        "columns_per_topic must be in [1, min(cols, 65536)], got " +
            std::to_string(c.columns_per_topic));
  check(c.max_topics_per_row >= 1 && c.max_topics_per_row <= std::min(c.topics, kMaxTopicsPerRow),
        "max_topics_per_row must be in [1, min(topics, 8)], got " +
            std::to_string(c.max_topics_per_row));
  check(c.background_fraction >= 0.0 && c.background_fraction <= 1.0,
        "background_fraction must be in [0, 1], got " + std::to_string(c.background_fraction));
  check(c.length_shape >= 1 && c.length_shape <= 16,
        "length_shape must be in [1, 16], got " + std::to_string(c.length_shape));
  check(c.mean_nonzeros > 0.0 && c.mean_nonzeros <= static_cast<double>(c.cols) / 4,
        "mean_nonzeros must be in (0, cols / 4], got " + std::to_string(c.mean_nonzeros));
}

// Deals a shuffled list of the columns round-robin so that the topics cover them all, tops each
// topic up with random further columns, and gives its columns Zipf weights in random order.
std::vector<Topic> make_topics(const TopicDataConfig& config) {
  Rng rng(config.seed, kTopicStream, 0);
  std::vector<ColIndex> shuffled(static_cast<std::size_t>(config.cols));
  for (std::size_t i = 0; i < shuffled.size(); ++i) shuffled[i] = static_cast<ColIndex>(i);
  for (std::size_t i = shuffled.size() - 1; i > 0; --i)
    std::swap(shuffled[i], shuffled[rng.below(i + 1)]);

  const auto per_topic = static_cast<std::size_t>(config.columns_per_topic);
  std::vector<Topic> topics(static_cast<std::size_t>(config.topics));
  for (std::size_t i = 0; i < shuffled.size(); ++i) {
    Topic& topic = topics[i % topics.size()];
    if (topic.columns.size() < per_topic) topic.columns.push_back(shuffled[i]);
  }
  std::vector<bool> in_topic(static_cast<std::size_t>(config.cols));
  for (Topic& topic : topics) {
    std::fill(in_topic.begin(), in_topic.end(), false);
    for (const ColIndex column : topic.columns) in_topic[static_cast<std::size_t>(column)] = true;
    while (topic.columns.size() < per_topic) {
      const std::uint32_t column = rng.below(static_cast<std::uint64_t>(config.cols));
      if (in_topic[column]) continue;
      in_topic[column] = true;
      topic.columns.push_back(static_cast<ColIndex>(column));
    }
    for (std::size_t i = per_topic - 1; i > 0; --i)
      std::swap(topic.columns[i], topic.columns[rng.below(i + 1)]);
    std::uint32_t total = 0;
    for (std::size_t rank = 0; rank < per_topic; ++rank) {
      total += kZipfScale / (static_cast<std::uint32_t>(rank) + kZipfOffset);
      topic.cumulative_weights.push_back(total);
    }
  }
  return topics;
}

// Index of the first cumulative weight above u, for u below the last one. Branch-free, since u is
// random and a branching search mispredicts half its steps.
std::size_t bucket(const std::uint32_t* cumulative, std::size_t count, std::uint32_t u) {
  const std::uint32_t* base = cumulative;
  while (count > 1) {
    const std::size_t half = count / 2;
    base = base[half - 1] <= u ? base + half : base;
    count -= half;
  }
  return static_cast<std::size_t>(base - cumulative) + (*base <= u);
}

Mixture draw_mixture(Rng& rng, const TopicDataConfig& config) {
  Mixture mixture;
  mixture.count = 1;
  while (mixture.count < config.max_topics_per_row && rng.below(2) == 1) ++mixture.count;
  for (int i = 0; i < mixture.count; ++i) {
    int topic = 0;
    do {
      topic = static_cast<int>(rng.below(static_cast<std::uint64_t>(config.topics)));
    } while (std::find(mixture.topics, mixture.topics + i, topic) != mixture.topics + i);
    mixture.topics[i] = topic;
  }
  // Spacings between sorted uniform cuts are uniform on the simplex; + 1 keeps every weight
  // positive.
  constexpr std::uint32_t kCutRange = 1u << 16;
  std::uint32_t cuts[kMaxTopicsPerRow];
  for (int i = 0; i + 1 < mixture.count; ++i) cuts[i] = rng.below(kCutRange);
  cuts[mixture.count - 1] = kCutRange;
  for (int i = 1; i + 1 < mixture.count; ++i)  // insertion sort of at most 7 cuts
    for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; --j) std::swap(cuts[j - 1], cuts[j]);
  std::uint32_t previous = 0, total = 0;
  for (int i = 0; i < mixture.count; ++i) {
    total += cuts[i] - previous + 1;
    previous = cuts[i];
    mixture.cumulative_weights[i] = total;
  }
  return mixture;
}

// Failures before `shape` successes of probability success_threshold / 2^53: a negative
// binomial with mean shape * (1 - p) / p.
std::int64_t draw_length(Rng& rng, int shape, std::uint64_t success_threshold) {
  std::int64_t failures = 0;
  for (int successes = 0; successes < shape;) {
    if (rng.chance(success_threshold))
      ++successes;
    else
      ++failures;
  }
  return failures;
}

// The token probabilities the sampler gives a mixture: columns of its topics, then the rest.
struct ColumnProbabilities {
  std::vector<double> of_topic_columns;
  double of_other_column = 0.0;
  std::int64_t other_columns = 0;
};

// position_of_column maps a column to its place in of_topic_columns, or -1; it is all -1 again on
// return.
ColumnProbabilities column_probabilities(const Mixture& mixture, const std::vector<Topic>& topics,
                                         const TopicDataConfig& config,
                                         std::uint64_t background_threshold,
                                         std::vector<std::int32_t>& position_of_column) {
  const double background = static_cast<double>(background_threshold) / kTwoPow53;
  ColumnProbabilities result;
  result.of_other_column = background / static_cast<double>(config.cols);
  std::vector<ColIndex> columns;
  const double mixture_total = mixture.cumulative_weights[mixture.count - 1];
  std::uint32_t previous_weight = 0;
  for (int i = 0; i < mixture.count; ++i) {
    const double topic_share =
        (1.0 - background) * (mixture.cumulative_weights[i] - previous_weight) / mixture_total;
    previous_weight = mixture.cumulative_weights[i];
    const Topic& topic = topics[static_cast<std::size_t>(mixture.topics[i])];
    const double topic_total = topic.cumulative_weights.back();
    std::uint32_t previous = 0;
    for (std::size_t k = 0; k < topic.columns.size(); ++k) {
      const double p = topic_share * (topic.cumulative_weights[k] - previous) / topic_total;
      previous = topic.cumulative_weights[k];
      std::int32_t& position = position_of_column[static_cast<std::size_t>(topic.columns[k])];
      if (position < 0) {
        position = static_cast<std::int32_t>(columns.size());
        columns.push_back(topic.columns[k]);
        result.of_topic_columns.push_back(result.of_other_column);
      }
      result.of_topic_columns[static_cast<std::size_t>(position)] += p;
    }
  }
  for (const ColIndex column : columns) position_of_column[static_cast<std::size_t>(column)] = -1;
  result.other_columns = config.cols - static_cast<std::int64_t>(columns.size());
  return result;
}

// Expected distinct columns of a row of length L, averaged over sample mixtures, extended in L
// as far as asked: sum over columns of 1 - (1 - p)^L, the powers kept from one L to the next.
class DistinctColumnsCurve {
 public:
  DistinctColumnsCurve(const std::vector<Topic>& topics, const TopicDataConfig& config,
                       std::uint64_t background_threshold) {
    std::vector<std::int32_t> position_of_column(static_cast<std::size_t>(config.cols), -1);
    for (int i = 0; i < kCalibrationMixtures; ++i) {
      Rng rng(config.seed, kCalibrationStream, static_cast<std::uint64_t>(i));
      mixtures_.push_back(column_probabilities(draw_mixture(rng, config), topics, config,
                                               background_threshold, position_of_column));
      powers_.emplace_back(mixtures_.back().of_topic_columns.size() + 1, 1.0);
    }
    values_.push_back(0.0);
  }

  double at(std::int64_t length) {
    while (static_cast<std::int64_t>(values_.size()) <= length) extend();
    return values_[static_cast<std::size_t>(length)];
  }

  // Columns a row could ever use, averaged over the sample mixtures.
  double reachable_columns() const {
    double sum = 0.0;
    for (const ColumnProbabilities& m : mixtures_)
      sum += static_cast<double>(m.of_topic_columns.size()) +
             (m.of_other_column > 0.0 ? static_cast<double>(m.other_columns) : 0.0);
    return sum / kCalibrationMixtures;
  }

 private:
  void extend() {
    double sum = 0.0;
    for (std::size_t m = 0; m < mixtures_.size(); ++m) {
      const ColumnProbabilities& probabilities = mixtures_[m];
      std::vector<double>& powers = powers_[m];
      const std::size_t n = probabilities.of_topic_columns.size();
      for (std::size_t j = 0; j < n; ++j) {
        powers[j] *= 1.0 - probabilities.of_topic_columns[j];
        sum += 1.0 - powers[j];
      }
      powers[n] *= 1.0 - probabilities.of_other_column;
      sum += static_cast<double>(probabilities.other_columns) * (1.0 - powers[n]);
    }
    values_.push_back(sum / static_cast<double>(mixtures_.size()));
  }

  std::vector<ColumnProbabilities> mixtures_;
  std::vector<std::vector<double>> powers_;
  std::vector<double> values_;
};

// Expected distinct columns per row when lengths are negative binomial with the given mean:
// sums P(L) * curve(L), with P(L) by its recurrence, until the remaining mass is negligible (or,
// should rounding keep the mass short of that, where the tail is below 1e-17 for any shape).
double expected_distinct_columns(DistinctColumnsCurve& curve, int shape, double mean_length) {
  const double p = shape / (shape + mean_length);
  double probability = 1.0;
  for (int i = 0; i < shape; ++i) probability *= p;
  double mass = 0.0, expected = 0.0;
  const double last_length = 40 * mean_length + 100;
  for (std::int64_t length = 0; mass < 1.0 - 1e-12 && length <= last_length; ++length) {
    mass += probability;
    expected += probability * curve.at(length);
    probability *=
        (1.0 - p) * static_cast<double>(length + shape) / static_cast<double>(length + 1);
  }
  return expected;
}

double calibrate_mean_length(const TopicDataConfig& config, const std::vector<Topic>& topics,
                             std::uint64_t background_threshold) {
  DistinctColumnsCurve curve(topics, config, background_threshold);
  // Near the number of reachable columns the length needed grows without bound.
  const double reachable = curve.reachable_columns();
  require(config.mean_nonzeros <= 0.75 * reachable,
          "TopicDataConfig: mean_nonzeros " + std::to_string(config.mean_nonzeros) +
              " is out of reach: rows draw from about " + std::to_string(reachable) +
              " columns (raise columns_per_topic, max_topics_per_row or background_fraction)");
  // A row never has more distinct columns than tokens, so the mean length is at least the
  // target.
  double low = config.mean_nonzeros, high = 2 * config.mean_nonzeros;
  while (expected_distinct_columns(curve, config.length_shape, high) < config.mean_nonzeros) {
    low = high;
    high *= 2;
  }
  for (int i = 0; i < 40; ++i) {
    const double middle = 0.5 * (low + high);
    if (expected_distinct_columns(curve, config.length_shape, middle) < config.mean_nonzeros)
      low = middle;
    else
      high = middle;
  }
  // Compilers that fuse a multiply and an add may change the last bits above; rounding to a
  // 1/4096 grid keeps such differences from reaching the samples.
  return std::round(0.5 * (low + high) * 4096.0) / 4096.0;
}

struct RowBlock {
  std::vector<RowOffset> row_lengths;
  std::vector<ColIndex> col_indices;
  std::vector<float> values;
};

}  // namespace

double topic_mean_row_length(const TopicDataConfig& config) {
  validate(config);
  return calibrate_mean_length(config, make_topics(config),
                               chance_threshold(config.background_fraction));
}

HostCsr generate_topic_counts(const TopicDataConfig& config) {
  validate(config);
  const std::vector<Topic> topics = make_topics(config);
  const std::uint64_t background_threshold = chance_threshold(config.background_fraction);
  const double mean_length = calibrate_mean_length(config, topics, background_threshold);
  const std::uint64_t success_threshold =
      chance_threshold(config.length_shape / (config.length_shape + mean_length));

  constexpr std::int64_t kBlockRows = 1024;
  std::vector<RowBlock> blocks(
      static_cast<std::size_t>((config.rows + kBlockRows - 1) / kBlockRows));
#pragma omp parallel
  {
    std::vector<std::int32_t> counts(static_cast<std::size_t>(config.cols), 0);
    std::vector<ColIndex> touched;
#pragma omp for schedule(dynamic)
    for (std::int64_t b = 0; b < static_cast<std::int64_t>(blocks.size()); ++b) {
      RowBlock& block = blocks[static_cast<std::size_t>(b)];
      const auto expected_nonzeros =
          static_cast<std::size_t>(1.5 * config.mean_nonzeros * kBlockRows);
      block.col_indices.reserve(expected_nonzeros);
      block.values.reserve(expected_nonzeros);
      const std::int64_t end = std::min(config.rows, (b + 1) * kBlockRows);
      for (std::int64_t row = b * kBlockRows; row < end; ++row) {
        Rng rng(config.seed, kRowStream, static_cast<std::uint64_t>(row));
        const Mixture mixture = draw_mixture(rng, config);
        const std::int64_t length = draw_length(rng, config.length_shape, success_threshold);
        touched.clear();
        for (std::int64_t token = 0; token < length; ++token) {
          ColIndex column;
          if (rng.chance(background_threshold)) {
            column = static_cast<ColIndex>(rng.below(static_cast<std::uint64_t>(config.cols)));
          } else {
            const std::size_t which =
                bucket(mixture.cumulative_weights, static_cast<std::size_t>(mixture.count),
                       rng.below(mixture.cumulative_weights[mixture.count - 1]));
            const Topic& topic = topics[static_cast<std::size_t>(mixture.topics[which])];
            column = topic.columns[bucket(topic.cumulative_weights.data(), topic.columns.size(),
                                          rng.below(topic.cumulative_weights.back()))];
          }
          if (counts[static_cast<std::size_t>(column)]++ == 0) touched.push_back(column);
        }
        std::sort(touched.begin(), touched.end());
        for (const ColIndex column : touched) {
          block.col_indices.push_back(column);
          block.values.push_back(static_cast<float>(counts[static_cast<std::size_t>(column)]));
          counts[static_cast<std::size_t>(column)] = 0;
        }
        block.row_lengths.push_back(static_cast<RowOffset>(touched.size()));
      }
    }
  }

  HostCsr csr;
  csr.rows = config.rows;
  csr.cols = config.cols;
  std::size_t nonzeros = 0;
  for (const RowBlock& block : blocks) nonzeros += block.values.size();
  csr.row_offsets.reserve(static_cast<std::size_t>(config.rows) + 1);
  csr.col_indices.reserve(nonzeros);
  csr.values.reserve(nonzeros);
  for (const RowBlock& block : blocks) {
    for (const RowOffset length : block.row_lengths)
      csr.row_offsets.push_back(csr.row_offsets.back() + length);
    csr.col_indices.insert(csr.col_indices.end(), block.col_indices.begin(),
                           block.col_indices.end());
    csr.values.insert(csr.values.end(), block.values.begin(), block.values.end());
  }
  return csr;
}

}  // namespace sparseae
