#pragma once
// How exactly a model's reconstructions reproduce the counts: the numbers the users care about
// (exact non-zeros, exact rows, support) beside the usual mse and mae. Computed on decoded
// outputs in data units: mse and mae on the unrounded value, the rest on the rounded count.
#include <cstdint>
#include <string>

#include "sparseae/matrix.hpp"
#include "sparseae/ops.hpp"

namespace sparseae {

struct ReconstructionMetrics {
  std::int64_t rows = 0;
  std::int64_t entries = 0;
  double mse = 0;
  double mae = 0;
  double nonzero_exact_fraction = 0;  // true non-zeros whose rounded reconstruction is exact
  double row_exact_fraction = 0;      // rows reproduced exactly, zeros included
  double support_precision = 0;       // predicted non-zeros that are true non-zeros
  double support_recall = 0;          // true non-zeros predicted non-zero

  std::string to_json() const;
};

// Accumulates metrics over batches of (outputs, targets).
class MetricsAccumulator {
 public:
  MetricsAccumulator(LossKind loss, float scale) : loss_(loss), scale_(scale) {}

  // outputs: host copy of the model's output for the rows of target (both rows x cols); target
  // holds the original counts (unscaled).
  void add(ConstDenseView outputs, CsrView target);
  ReconstructionMetrics result() const;

 private:
  LossKind loss_;
  float scale_;
  std::int64_t rows_ = 0;
  std::int64_t entries_ = 0;
  double squared_error_ = 0;
  double absolute_error_ = 0;
  std::int64_t true_nonzeros_ = 0;
  std::int64_t exact_nonzeros_ = 0;
  std::int64_t predicted_nonzeros_ = 0;
  std::int64_t true_positive_support_ = 0;
  std::int64_t exact_rows_ = 0;
};

}  // namespace sparseae
