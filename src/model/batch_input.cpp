#include "model/batch_input.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "sparseae/error.hpp"

namespace sparseae::detail {

namespace {

// The checks below run on every step: not require(), whose message would be built each time.
void require_row_capacity(std::int64_t rows, std::size_t capacity) {
  if (rows > static_cast<std::int64_t>(capacity))
    throw Error("batch input: batch exceeds the rows it was sized for");
}

}  // namespace

double median_total(std::vector<double> totals) {
  if (totals.empty()) return 1.0;
  const std::size_t middle = totals.size() / 2;
  std::nth_element(totals.begin(), totals.begin() + middle, totals.end());
  const double upper = totals[middle];
  if (totals.size() % 2 == 1) return upper > 0.0 ? upper : 1.0;
  const double lower = *std::max_element(totals.begin(), totals.begin() + middle);
  const double value = 0.5 * (lower + upper);
  return value > 0.0 ? value : 1.0;
}

std::vector<double> row_totals(const HostCsr& counts) {
  std::vector<double> totals(static_cast<std::size_t>(counts.rows), 0.0);
  for (std::int64_t r = 0; r < counts.rows; ++r)
    for (std::int64_t k = counts.row_offsets[r]; k < counts.row_offsets[r + 1]; ++k)
      totals[static_cast<std::size_t>(r)] += counts.values[static_cast<std::size_t>(k)];
  return totals;
}

double median_row_total(const HostCsr& counts) { return median_total(row_totals(counts)); }

std::vector<double> row_totals(const HostDense& counts) {
  std::vector<double> totals(static_cast<std::size_t>(counts.rows), 0.0);
  for (std::int64_t r = 0; r < counts.rows; ++r)
    for (std::int64_t c = 0; c < counts.cols; ++c)
      totals[static_cast<std::size_t>(r)] +=
          counts.values[static_cast<std::size_t>(r * counts.cols + c)];
  return totals;
}

double median_row_total(const HostDense& counts) { return median_total(row_totals(counts)); }

BatchInput::BatchInput(Backend& backend, const BatchInputOptions& options, std::int64_t max_rows,
                       std::int64_t values_capacity)
    : backend_(backend),
      options_(options),
      log_reference_(static_cast<float>(std::log(options.reference_library_size))),
      values_(backend, options.transform == InputTransform::none
                           ? 0
                           : static_cast<std::size_t>(std::max<std::int64_t>(1, values_capacity))),
      offsets_(backend, options.size_factors ? static_cast<std::size_t>(max_rows) : 0) {
  require(options.reference_library_size > 0.0 && std::isfinite(options.reference_library_size),
          "reference library size " + std::to_string(options.reference_library_size) +
              " is not positive");
}

CsrView BatchInput::input(CsrView batch) {
  if (options_.transform == InputTransform::none) return batch;
  if (batch.nnz > static_cast<std::int64_t>(values_.size()))
    throw Error("batch input: " + std::to_string(batch.nnz) + " non-zeros exceed the " +
                std::to_string(values_.size()) + " it was sized for");
  backend_.transform_values(options_.transform, batch.values, batch.nnz, values_.data());
  CsrView transformed = batch;
  transformed.values = values_.data();
  return transformed;
}

ConstDenseView BatchInput::input(ConstDenseView batch) {
  if (options_.transform == InputTransform::none) return batch;
  if (batch.ld != batch.cols || batch.size() > static_cast<std::int64_t>(values_.size()))
    throw Error("batch input: a contiguous batch of at most " + std::to_string(values_.size()) +
                " values is needed");
  backend_.transform_values(options_.transform, batch.data, batch.size(), values_.data());
  return {values_.data(), batch.rows, batch.cols};
}

const float* BatchInput::log_offsets(CsrView batch) {
  if (!options_.size_factors) return nullptr;
  require_row_capacity(batch.rows, offsets_.size());
  backend_.row_log_size_factors(batch, log_reference_, offsets_.data());
  return offsets_.data();
}

const float* BatchInput::log_offsets(ConstDenseView batch) {
  if (!options_.size_factors) return nullptr;
  require_row_capacity(batch.rows, offsets_.size());
  backend_.row_log_size_factors(batch, log_reference_, offsets_.data());
  return offsets_.data();
}

}  // namespace sparseae::detail
