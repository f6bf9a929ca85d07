#pragma once
// What the network reads of a batch of counts, and the per-row offsets of its output: the input
// transform (InputTransform) applied to a copy of the batch's values, so that the loss still
// compares against the counts themselves, and each row's log size factor
// (LossParams::size_factors). Both buffers are sized once, so preparing a batch allocates nothing.
#include <cstdint>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/io.hpp"

namespace sparseae::detail {

// The median of the rows' total counts (the mean of the two middle ones for an even count): the
// reference library size against which size factors are taken. 1 when the rows hold no counts.
double median_row_total(const HostCsr& counts);
double median_row_total(const HostDense& counts);
// The parts of median_row_total, for rows spread over the ranks of a data-parallel run: each
// row's total, and the median of totals gathered from every rank.
std::vector<double> row_totals(const HostCsr& counts);
std::vector<double> row_totals(const HostDense& counts);
double median_total(std::vector<double> totals);

struct BatchInputOptions {
  InputTransform transform = InputTransform::none;
  bool size_factors = false;
  double reference_library_size = 1.0;
};

class BatchInput {
 public:
  // values_capacity: the most values a batch holds (its non-zeros, or rows x cols when dense).
  BatchInput(Backend& backend, const BatchInputOptions& options, std::int64_t max_rows,
             std::int64_t values_capacity);

  // The batch as the first layer reads it: batch itself without a transform.
  CsrView input(CsrView batch);
  ConstDenseView input(ConstDenseView batch);
  // The rows' log size factors (backend memory, one per row of the batch), or null without size
  // factors: what Network::forward adds to the output's offset head.
  const float* log_offsets(CsrView batch);
  const float* log_offsets(ConstDenseView batch);

 private:
  Backend& backend_;
  BatchInputOptions options_;
  float log_reference_;
  Buffer<float> values_;
  Buffer<float> offsets_;
};

}  // namespace sparseae::detail
