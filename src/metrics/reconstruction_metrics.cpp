#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "kernels/loss_math.hpp"
#include "sparseae/error.hpp"
#include "sparseae/metrics.hpp"

namespace sparseae {

void MetricsAccumulator::add(ConstDenseView outputs, CsrView target) {
  require(outputs.rows == target.rows && outputs.cols == target.cols,
          "metrics: outputs and targets differ in shape");
  std::vector<float> dense_row(static_cast<std::size_t>(target.cols));
  for (std::int64_t r = 0; r < target.rows; ++r) {
    std::fill(dense_row.begin(), dense_row.end(), 0.0f);
    for (RowOffset k = target.row_offsets[r]; k < target.row_offsets[r + 1]; ++k)
      dense_row[target.col_indices[k]] = target.values[k];
    bool row_exact = true;
    for (std::int64_t c = 0; c < target.cols; ++c) {
      const float x = dense_row[c];
      const float value = math::decoded_value(loss_, outputs(r, c), scale_);
      const float count = math::round_count(value);
      squared_error_ += static_cast<double>(value - x) * (value - x);
      absolute_error_ += std::abs(static_cast<double>(value - x));
      const bool predicted = count > 0.0f;
      const bool truth = x != 0.0f;
      predicted_nonzeros_ += predicted;
      true_nonzeros_ += truth;
      true_positive_support_ += predicted && truth;
      exact_nonzeros_ += truth && count == x;
      row_exact = row_exact && count == x;
    }
    exact_rows_ += row_exact;
  }
  rows_ += target.rows;
  entries_ += target.rows * target.cols;
}

ReconstructionMetrics MetricsAccumulator::result() const {
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  ReconstructionMetrics m;
  m.rows = rows_;
  m.entries = entries_;
  m.mse = ratio(squared_error_, static_cast<double>(entries_));
  m.mae = ratio(absolute_error_, static_cast<double>(entries_));
  m.nonzero_exact_fraction = ratio(exact_nonzeros_, true_nonzeros_);
  m.row_exact_fraction = ratio(exact_rows_, rows_);
  m.support_precision = ratio(true_positive_support_, predicted_nonzeros_);
  m.support_recall = ratio(true_positive_support_, true_nonzeros_);
  return m;
}

std::string ReconstructionMetrics::to_json() const {
  char text[512];
  std::snprintf(text, sizeof text,
                "{\"rows\": %lld, \"mse\": %.6g, \"mae\": %.6g, \"nonzero_exact_fraction\": %.6f, "
                "\"row_exact_fraction\": %.6f, \"support_precision\": %.6f, "
                "\"support_recall\": %.6f}",
                static_cast<long long>(rows), mse, mae, nonzero_exact_fraction,
                row_exact_fraction, support_precision, support_recall);
  return text;
}

}  // namespace sparseae
