#pragma once
// How a model's outputs become counts, and how exactly the counts come back: the numbers users
// care about (exact non-zeros, exact rows, support) beside the usual mse and mae, the deviance
// and, for a likelihood, the code length the model assigns.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "sparseae/matrix.hpp"
#include "sparseae/ops.hpp"

namespace sparseae {

// ---- decoding ----

// Whether the loss is the negative log-likelihood of a distribution over counts (poisson, nb,
// zinb, hurdle), which
// gives DecodeMode::mode and the NLL metric a meaning.
bool has_count_likelihood(LossKind loss);

// How outputs of a model trained with loss become counts unless asked otherwise: the rounded
// mean for a count likelihood (poisson), round for every other loss. Mode (floor of the rate for
// poisson) is exact only for rates in [x, x+1), rounding for [x-0.5, x+0.5): measured on topic
// counts it reproduced 12% of the non-zeros against rounding's 23%.
DecodeMode default_decode(LossKind loss);

// The decode other than decode that loss allows and that gives other counts (round and mean
// give the same): mode, or default_decode(loss) when decode is mode; none for losses without a
// mode. sae train keeps the better of default_decode and this one.
std::optional<DecodeMode> alternative_decode(LossKind loss, DecodeMode decode);

// Throws Error when decode cannot be applied to outputs of loss: mode needs a count likelihood.
// Every function here that decodes checks it before it decodes anything.
void check_decode(LossKind loss, DecodeMode decode);

// How the outputs of one entry become its decoded value and count: the one place every
// decode goes through (MetricsAccumulator, TrainedModel::counts_from_outputs and
// values_from_outputs, hence the written reconstructions and the threshold search), so that the
// counts written and the counts measured are the same. h holds the entry's
// output_heads(loss) outputs (head k of column c at column c + k D of the output row).
struct EntryDecoder {
  LossKind loss = LossKind::mse;
  float scale = 1.0f;
  DecodeMode decode = DecodeMode::round;
  // hurdle, decode mode only: the support probability from which an entry is predicted non-zero.
  double hurdle_threshold = kDefaultHurdleThreshold;
  // The largest value and count it decodes to (RunConfig::largest_training_count where the model
  // knows it): a count head that gets no gradient where the count is 0, as a hurdle's, can
  // extrapolate to means of millions there.
  double largest_count = std::numeric_limits<double>::infinity();

  // Throws Error when check_decode(loss, decode) does, or hurdle_threshold is outside [0, 1].
  EntryDecoder(LossKind loss, float scale, DecodeMode decode,
               double hurdle_threshold = kDefaultHurdleThreshold,
               double largest_count = std::numeric_limits<double>::infinity());
  std::int64_t heads() const { return output_heads(loss); }
  // v: the predicted mean in data units, unrounded (math::head_mean).
  float value(const float* h) const;
  // k: the decoded count (math::head_count).
  float count(const float* h) const;
};

// ---- metrics ----

// The metrics of a reconstruction of N rows x D columns (E = N*D entries) of counts x, where
// the model's output for entry (r, c) is turned into
//   v  the decoded value: the predicted mean in data units, unrounded (math::decoded_value)
//   k  the decoded count under the DecodeMode (math::decoded_count)
// "Non-zeros" are the entries with x != 0; "predicted non-zeros" those with k != 0.
struct ReconstructionMetrics {
  std::int64_t rows = 0;                  // N
  std::int64_t entries = 0;               // E = N * D
  DecodeMode decode = DecodeMode::round;  // how k was made from the outputs
  double mse = 0;                         // sum (v - x)^2 / E, on the unrounded value
  double mae = 0;                         // sum |v - x| / E, on the unrounded value
  // The headline, how exactly the counts come back: exact-entry F1 = 2 P R / (P + R) of the
  // exact precision P (predicted non-zeros whose k == x) and the exact recall R (non-zeros whose
  // k == x, nonzero_exact_fraction); 0 when P + R = 0. Recall alone rewards predicting non-zeros
  // everywhere; precision pays for them.
  double exact_f1 = 0;
  double exact_precision = 0;         // predicted non-zeros (k != 0) with k == x
  double nonzero_exact_fraction = 0;  // non-zeros with k == x: the exact recall
  double row_exact_fraction = 0;      // rows with k == x in every column, zeros included
  double support_precision = 0;       // predicted non-zeros that are non-zeros
  double support_recall = 0;          // non-zeros that are predicted non-zeros
  double support_f1 = 0;              // 2 P R / (P + R); 0 when P + R = 0
  double nonzero_mae = 0;             // sum over non-zeros of |k - x| / their number: how far
                                      // off the decoded counts are where the data is non-zero
  // 1 - SSE / SST on the unrounded value: SSE = sum (v - x)^2 over all entries, SST = the sum
  // over columns of the squared deviations of x from that column's mean over the N evaluated
  // rows. NaN (JSON null) when SST = 0 (no rows, or every column constant).
  double explained_variance = 0;
  // Mean Poisson deviance per entry, sum 2 [x log(x / mu) - (x - mu)] / E, with
  // mu = max(v, kDevianceRateFloor) and x log(x / mu) = 0 at x = 0: defined for every loss (an
  // mse model's v is read as a rate); 0 for v = x, but for the floor's 2e-8 where both are 0.
  double poisson_deviance = 0;
  // Negative log-likelihood of the counts under the model, in bits per row, where the loss is a
  // likelihood over counts (nb, zinb, hurdle: the loss's own per-entry NLL, in double; poisson:
  // sum (mu - x ln mu + lgamma(x + 1)) / ln 2 / N with the
  // model's exact rate mu (no floor; ln mu taken from the log-rate, so a rate that underflows
  // to 0 in float still gives a finite NLL). NaN (JSON null) for any other loss, and for N = 0.
  double nll_bits_per_row = 0;
  // A model with a latent prior (rate-aware training): its integer codes' NLL under the prior,
  // in bits per row, and the description length of a row, code_bits_per_row +
  // nll_bits_per_row (what lossless mode stores, before the coder's overhead). NaN (JSON null)
  // for a model without a prior; set by TrainedModel::evaluate, not by MetricsAccumulator.
  double code_bits_per_row = std::numeric_limits<double>::quiet_NaN();
  double description_bits_per_row = std::numeric_limits<double>::quiet_NaN();
  // The evaluated counts stored as raw CSR, per row, for scale beside the NLL: a 4-byte column
  // index and a 4-byte value per non-zero plus a 4-byte row offset per row, i.e.
  // (8 nnz + 4 N) / N = 4 + 8 nnz / N (the one extra closing offset is not counted).
  double raw_csr_bytes_per_row = 0;
  // The latent code of the evaluated rows (what a sparse latent, ModelConfig::latent_sparsity,
  // is judged by): its L0, the mean number of non-zero latents per row; the fraction of latents
  // that are dead (non-zero in no row) and dense (non-zero in more than half the rows). NaN
  // (JSON null) for N = 0; set by TrainedModel::evaluate, not by MetricsAccumulator.
  double latent_l0 = std::numeric_limits<double>::quiet_NaN();
  double dead_latent_fraction = std::numeric_limits<double>::quiet_NaN();
  double dense_latent_fraction = std::numeric_limits<double>::quiet_NaN();

  // Every field; NaN is written null.
  std::string to_json() const;
};

// Where a reconstruction goes wrong, for charts: per column, how many of its non-zeros came back
// exactly; per row (in the order the rows were added), how many entries are wrong and by how
// much. Filled by MetricsAccumulator when asked to (collect_detail), from the same decoded
// counts k as the metrics, so its sums agree with them: the column sums of exact non-zeros over
// those of non-zeros is nonzero_exact_fraction, and the rows with no wrong entry are the exact
// rows.
struct ReconstructionDetail {
  std::vector<std::int64_t> column_nonzeros;        // per column: entries with x != 0
  std::vector<std::int64_t> column_exact_nonzeros;  // per column: of those, entries with k == x
  std::vector<std::int64_t> row_wrong_entries;      // per row: entries with k != x, zeros included
  std::vector<double> row_absolute_error;           // per row: sum over its entries of |k - x|
  // Entries by true count class (0, 1, 2, 3, 4 or more: count_class) and decoded count class:
  // count_confusion[kCountClasses * true_class + decoded_class]. Its diagonal past the first
  // cell holds the exact non-zeros of the classes below 4 (4 or more also counts wrong counts
  // that are both large).
  std::vector<std::int64_t> count_confusion;
  // Per latent: the fraction of rows whose code holds it non-zero (its firing frequency). Filled
  // by TrainedModel::evaluate, which sees the codes; empty from MetricsAccumulator alone.
  std::vector<double> latent_firing;
  // The codes of the first rows evaluated (at most kLatentSampleRows), row-major with
  // latent_firing.size() per row, and each of those rows' total count: what the report draws the
  // code with. Filled by TrainedModel::evaluate, as latent_firing.
  std::vector<float> latent_sample;
  std::vector<double> latent_sample_totals;
};

// The classes of ReconstructionDetail::count_confusion: counts 0, 1, 2 and 3, then 4 or more.
constexpr int kCountClasses = 5;
inline int count_class(float count) {
  return count >= static_cast<float>(kCountClasses - 1) ? kCountClasses - 1
                                                        : static_cast<int>(count);
}

// The rows TrainedModel::evaluate keeps the codes of in ReconstructionDetail::latent_sample.
constexpr std::int64_t kLatentSampleRows = 2000;

// The floor under the rate in the Poisson deviance, so that a predicted zero (or a negative
// mse output) against a non-zero count gives a large but finite deviance.
constexpr double kDevianceRateFloor = 1e-8;

// Accumulates metrics over batches of (outputs, targets).
class MetricsAccumulator {
 public:
  // Throws Error when check_decode(loss, decode) does. hurdle_threshold: see EntryDecoder.
  MetricsAccumulator(LossKind loss, float scale, DecodeMode decode,
                     double hurdle_threshold = kDefaultHurdleThreshold);
  // Decoding each entry with decoder.
  explicit MetricsAccumulator(const EntryDecoder& decoder);
  // With default_decode(loss).
  MetricsAccumulator(LossKind loss, float scale);

  // outputs: host copy of the model's output for the rows of target (both rows x cols); target
  // holds the original counts (unscaled). Every batch has the same number of columns.
  // For a loss with output_heads(loss) = K > 1, outputs holds rows x (K * cols), head-major.
  void add(ConstDenseView outputs, CsrView target);
  ReconstructionMetrics result() const;
  // The running sums, in a fixed order, for targets cols wide (also before any add): what
  // accumulators on several ranks sum to measure all their rows, which set_sums takes back.
  std::vector<double> sums(std::int64_t cols) const;
  void set_sums(const std::vector<double>& sums);
  // From now on, also fill a ReconstructionDetail for every row added.
  void collect_detail();
  // What collect_detail asked for (empty vectors without it).
  const ReconstructionDetail& detail() const { return detail_; }

 private:
  LossKind loss_;
  float scale_;
  DecodeMode decode_;
  EntryDecoder decoder_;
  std::int64_t rows_ = 0;
  std::int64_t entries_ = 0;
  double squared_error_ = 0;
  double absolute_error_ = 0;
  std::int64_t true_nonzeros_ = 0;
  std::int64_t exact_nonzeros_ = 0;
  std::int64_t predicted_nonzeros_ = 0;
  std::int64_t true_positive_support_ = 0;
  std::int64_t exact_rows_ = 0;
  double nonzero_absolute_error_ = 0;  // |k - x| over the non-zeros
  double deviance_ = 0;
  double nll_nats_ = 0;
  std::vector<double> column_sum_;     // sum of x per column
  std::vector<double> column_square_;  // sum of x^2 per column
  bool collect_detail_ = false;
  ReconstructionDetail detail_;
};

}  // namespace sparseae
