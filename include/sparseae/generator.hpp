#pragma once
// The embedded dataset: sparse counts with a known low-dimensional structure, made from a seed
// alone, identical on every platform, compiler and thread count.
//
// Each of `topics` topics spreads its mass over `columns_per_topic` columns with Zipf-like
// weights (rank k gets weight proportional to 1 / (k + 4)); together the topics cover every
// column when topics * columns_per_topic >= cols. A row mixes 1 to `max_topics_per_row` topics
// (one with probability 1/2, each further one with probability 1/2) with weights drawn uniformly
// from the simplex, draws a length L from a negative binomial, and draws L tokens: each from
// the mixture, or with probability `background_fraction` from a column chosen uniformly. The
// row's counts are how often each column was drawn. The mean of L is chosen so that a row has
// `mean_nonzeros` distinct non-zero columns on average.
#include <cstdint>

#include "sparseae/csr.hpp"

namespace sparseae {

struct TopicDataConfig {
  std::int64_t rows = 100000;
  std::int64_t cols = 512;
  int topics = 32;
  double mean_nonzeros = 20;  // at most cols / 4: the generator makes sparse data
  std::uint64_t seed = 42;
  int columns_per_topic = 24;
  int max_topics_per_row = 3;  // at most 8
  double background_fraction = 0.05;
  // Shape of the negative binomial of row lengths (1 to 16): the smaller, the more the lengths
  // spread around their mean.
  int length_shape = 3;
};

// Throws Error naming the first configuration value out of its range.
HostCsr generate_topic_counts(const TopicDataConfig& config);

// The mean row length (tokens per row) that makes rows of config have config.mean_nonzeros
// distinct non-zeros on average; computed from the seed, as generate_topic_counts does.
double topic_mean_row_length(const TopicDataConfig& config);

}  // namespace sparseae
