#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "math/loss_math.hpp"
#include "metrics/metrics_json.hpp"
#include "sparseae/error.hpp"
#include "sparseae/metrics.hpp"

namespace sparseae {

bool has_count_likelihood(LossKind loss) {
  return loss == LossKind::poisson || loss == LossKind::nb || loss == LossKind::zinb ||
         has_support_head(loss);
}

DecodeMode default_decode(LossKind loss) {
  return has_count_likelihood(loss) ? DecodeMode::mean : DecodeMode::round;
}

std::optional<DecodeMode> alternative_decode(LossKind loss, DecodeMode decode) {
  if (!has_count_likelihood(loss)) return std::nullopt;
  return decode == DecodeMode::mode ? default_decode(loss) : DecodeMode::mode;
}

void check_decode(LossKind loss, DecodeMode decode) {
  require(decode != DecodeMode::mode || has_count_likelihood(loss),
          std::string("--decode mode needs a count likelihood (poisson, nb, zinb, hurdle, "
                      "hurdle_nb); the model's loss is ") +
              loss_name(loss));
}

EntryDecoder::EntryDecoder(LossKind loss_kind, float data_scale, DecodeMode decode_mode,
                           double threshold, double largest)
    : loss(loss_kind),
      scale(data_scale),
      decode(decode_mode),
      hurdle_threshold(threshold),
      largest_count(largest) {
  check_decode(loss, decode);
  require(threshold >= 0.0 && threshold <= 1.0,
          "hurdle threshold " + std::to_string(threshold) + " is not in [0, 1]");
  require(largest > 0.0, "largest count " + std::to_string(largest) + " is not positive");
}

float EntryDecoder::value(const float* h) const {
  return static_cast<float>(std::min<double>(math::head_mean(loss, h, scale), largest_count));
}

float EntryDecoder::count(const float* h) const {
  return static_cast<float>(
      std::min<double>(math::head_count(loss, decode, h, scale, hurdle_threshold), largest_count));
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ln mu of the poisson model's rate mu = rate(y) * scale, in double: from the log-rate itself
// where the rate is e^y, so that it stays exact (and finite where expf underflows).
double poisson_log_rate(float y, float scale) {
  if (y <= math::kPoissonLinearFrom) return static_cast<double>(y) + std::log(double{scale});
  return std::log(static_cast<double>(math::poisson_rate(y)) * scale);
}

double poisson_rate_double(float y, float scale) {
  if (y <= math::kPoissonLinearFrom) return std::exp(static_cast<double>(y)) * scale;
  return static_cast<double>(math::poisson_rate(y)) * scale;
}

}  // namespace

MetricsAccumulator::MetricsAccumulator(LossKind loss, float scale, DecodeMode decode,
                                       double hurdle_threshold)
    : loss_(loss),
      scale_(scale),
      decode_(decode),
      decoder_(loss, scale, decode, hurdle_threshold) {}

MetricsAccumulator::MetricsAccumulator(LossKind loss, float scale)
    : MetricsAccumulator(loss, scale, default_decode(loss)) {}

MetricsAccumulator::MetricsAccumulator(const EntryDecoder& decoder)
    : loss_(decoder.loss), scale_(decoder.scale), decode_(decoder.decode), decoder_(decoder) {}

void MetricsAccumulator::add(ConstDenseView outputs, CsrView target) {
  const std::int64_t heads = output_heads(loss_);
  require(outputs.rows == target.rows && outputs.cols == target.cols * heads,
          "metrics: outputs and targets differ in shape");
  if (column_sum_.empty()) {
    column_sum_.assign(static_cast<std::size_t>(target.cols), 0.0);
    column_square_.assign(static_cast<std::size_t>(target.cols), 0.0);
  }
  require(static_cast<std::int64_t>(column_sum_.size()) == target.cols,
          "metrics: batches differ in their number of columns");
  const bool likelihood = has_count_likelihood(loss_);
  if (collect_detail_ && detail_.column_nonzeros.empty()) {
    detail_.column_nonzeros.assign(static_cast<std::size_t>(target.cols), 0);
    detail_.column_exact_nonzeros.assign(static_cast<std::size_t>(target.cols), 0);
  }
  if (collect_detail_ && detail_.count_confusion.empty())
    detail_.count_confusion.assign(kCountClasses * kCountClasses, 0);
  std::vector<float> dense_row(static_cast<std::size_t>(target.cols));
  for (std::int64_t r = 0; r < target.rows; ++r) {
    std::int64_t row_wrong = 0;
    double row_error = 0;
    std::fill(dense_row.begin(), dense_row.end(), 0.0f);
    for (RowOffset k = target.row_offsets[r]; k < target.row_offsets[r + 1]; ++k)
      dense_row[target.col_indices[k]] = target.values[k];
    bool row_exact = true;
    for (std::int64_t c = 0; c < target.cols; ++c) {
      const float x = dense_row[c];
      // The entry's heads (one for most losses), head k at column c + k * cols.
      float h[math::kMaxHeads] = {};
      for (std::int64_t k = 0; k < heads; ++k) h[k] = outputs(r, c + k * target.cols);
      const float y = h[0];
      const float value = decoder_.value(h);
      const float count = decoder_.count(h);
      const double xd = x;
      const double error = static_cast<double>(value) - xd;
      squared_error_ += error * error;
      absolute_error_ += std::abs(error);
      column_sum_[c] += xd;
      column_square_[c] += xd * xd;
      const bool predicted = count > 0.0f;
      const bool truth = x != 0.0f;
      predicted_nonzeros_ += predicted;
      true_nonzeros_ += truth;
      true_positive_support_ += predicted && truth;
      exact_nonzeros_ += truth && count == x;
      if (truth) nonzero_absolute_error_ += std::abs(static_cast<double>(count) - xd);
      row_exact = row_exact && count == x;
      if (collect_detail_) {
        row_wrong += count != x;
        row_error += std::abs(static_cast<double>(count) - xd);
        detail_.column_nonzeros[c] += truth;
        detail_.column_exact_nonzeros[c] += truth && count == x;
        ++detail_.count_confusion[static_cast<std::size_t>(kCountClasses * count_class(x) +
                                                           count_class(count))];
      }
      const double mu = std::max(static_cast<double>(value), kDevianceRateFloor);
      deviance_ += 2.0 * ((x > 0.0f ? xd * std::log(xd / mu) : 0.0) - (xd - mu));
      if (likelihood && heads > 1)
        nll_nats_ += math::head_loss_term(loss_, h, x).value;  // in nats, lgamma(x + 1) included
      else if (likelihood)
        nll_nats_ += poisson_rate_double(y, scale_) -
                     (x != 0.0f ? xd * poisson_log_rate(y, scale_) : 0.0) + std::lgamma(xd + 1.0);
    }
    exact_rows_ += row_exact;
    if (collect_detail_) {
      detail_.row_wrong_entries.push_back(row_wrong);
      detail_.row_absolute_error.push_back(row_error);
    }
  }
  rows_ += target.rows;
  entries_ += target.rows * target.cols;
}

void MetricsAccumulator::collect_detail() {
  collect_detail_ = true;
  if (!column_sum_.empty() && detail_.column_nonzeros.empty()) {
    detail_.column_nonzeros.assign(column_sum_.size(), 0);
    detail_.column_exact_nonzeros.assign(column_sum_.size(), 0);
  }
}

std::vector<double> MetricsAccumulator::sums(std::int64_t cols) const {
  std::vector<double> out = {static_cast<double>(rows_),
                             static_cast<double>(entries_),
                             squared_error_,
                             absolute_error_,
                             static_cast<double>(true_nonzeros_),
                             static_cast<double>(exact_nonzeros_),
                             static_cast<double>(predicted_nonzeros_),
                             static_cast<double>(true_positive_support_),
                             static_cast<double>(exact_rows_),
                             nonzero_absolute_error_,
                             deviance_,
                             nll_nats_};
  const std::size_t width = static_cast<std::size_t>(cols);
  std::vector<double> column_sum = column_sum_;
  std::vector<double> column_square = column_square_;
  column_sum.resize(width, 0.0);
  column_square.resize(width, 0.0);
  out.insert(out.end(), column_sum.begin(), column_sum.end());
  out.insert(out.end(), column_square.begin(), column_square.end());
  return out;
}

void MetricsAccumulator::set_sums(const std::vector<double>& sums) {
  constexpr std::size_t kScalars = 12;
  require(sums.size() >= kScalars && (sums.size() - kScalars) % 2 == 0,
          "metrics: running sums of the wrong length");
  const auto count = [&](std::size_t i) { return static_cast<std::int64_t>(sums[i]); };
  rows_ = count(0);
  entries_ = count(1);
  squared_error_ = sums[2];
  absolute_error_ = sums[3];
  true_nonzeros_ = count(4);
  exact_nonzeros_ = count(5);
  predicted_nonzeros_ = count(6);
  true_positive_support_ = count(7);
  exact_rows_ = count(8);
  nonzero_absolute_error_ = sums[9];
  deviance_ = sums[10];
  nll_nats_ = sums[11];
  const std::size_t width = (sums.size() - kScalars) / 2;
  column_sum_.assign(sums.begin() + kScalars, sums.begin() + kScalars + width);
  column_square_.assign(sums.begin() + kScalars + width, sums.end());
}

ReconstructionMetrics MetricsAccumulator::result() const {
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  ReconstructionMetrics m;
  m.rows = rows_;
  m.entries = entries_;
  m.decode = decode_;
  m.mse = ratio(squared_error_, static_cast<double>(entries_));
  m.mae = ratio(absolute_error_, static_cast<double>(entries_));
  m.nonzero_exact_fraction = ratio(exact_nonzeros_, true_nonzeros_);
  m.exact_precision = ratio(exact_nonzeros_, predicted_nonzeros_);
  m.exact_f1 = ratio(2.0 * static_cast<double>(exact_nonzeros_),
                     static_cast<double>(predicted_nonzeros_ + true_nonzeros_));
  m.row_exact_fraction = ratio(exact_rows_, rows_);
  m.support_precision = ratio(true_positive_support_, predicted_nonzeros_);
  m.support_recall = ratio(true_positive_support_, true_nonzeros_);
  m.support_f1 =
      ratio(2.0 * m.support_precision * m.support_recall, m.support_precision + m.support_recall);
  m.nonzero_mae = ratio(nonzero_absolute_error_, static_cast<double>(true_nonzeros_));
  double total_squares = 0;  // SST: per column, sum x^2 - (sum x)^2 / N
  if (rows_ > 0)
    for (std::size_t c = 0; c < column_sum_.size(); ++c)
      total_squares += std::max(
          0.0, column_square_[c] - column_sum_[c] * column_sum_[c] / static_cast<double>(rows_));
  m.explained_variance = total_squares > 0 ? 1.0 - squared_error_ / total_squares : kNaN;
  m.poisson_deviance = ratio(deviance_, static_cast<double>(entries_));
  m.nll_bits_per_row = has_count_likelihood(loss_) && rows_ > 0
                           ? nll_nats_ / std::log(2.0) / static_cast<double>(rows_)
                           : kNaN;
  m.raw_csr_bytes_per_row =
      ratio(8.0 * static_cast<double>(true_nonzeros_) + 4.0 * static_cast<double>(rows_),
            static_cast<double>(rows_));
  return m;
}

Json metrics_json(const ReconstructionMetrics& m) {
  Json json = Json::object();
  json.set("rows", Json::integer(m.rows))
      .set("entries", Json::integer(m.entries))
      .set("decode", Json::string(decode_mode_name(m.decode)))
      .set("mse", Json::number_significant(m.mse, 6))
      .set("mae", Json::number_significant(m.mae, 6))
      .set("exact_f1", Json::number_fixed(m.exact_f1, 6))
      .set("exact_precision", Json::number_fixed(m.exact_precision, 6))
      .set("exact_recall", Json::number_fixed(m.nonzero_exact_fraction, 6))
      .set("nonzero_exact_fraction", Json::number_fixed(m.nonzero_exact_fraction, 6))
      .set("row_exact_fraction", Json::number_fixed(m.row_exact_fraction, 6))
      .set("support_precision", Json::number_fixed(m.support_precision, 6))
      .set("support_recall", Json::number_fixed(m.support_recall, 6))
      .set("support_f1", Json::number_fixed(m.support_f1, 6))
      .set("nonzero_mae", Json::number_significant(m.nonzero_mae, 6))
      .set("explained_variance", Json::number_significant(m.explained_variance, 6))
      .set("poisson_deviance", Json::number_significant(m.poisson_deviance, 6))
      .set("nll_bits_per_row", Json::number_significant(m.nll_bits_per_row, 6))
      .set("code_bits_per_row", Json::number_significant(m.code_bits_per_row, 6))
      .set("description_bits_per_row", Json::number_significant(m.description_bits_per_row, 6))
      .set("raw_csr_bytes_per_row", Json::number_significant(m.raw_csr_bytes_per_row, 6))
      .set("latent_l0", Json::number_significant(m.latent_l0, 6))
      .set("dead_latent_fraction", Json::number_fixed(m.dead_latent_fraction, 6))
      .set("dense_latent_fraction", Json::number_fixed(m.dense_latent_fraction, 6));
  return json;
}

std::string ReconstructionMetrics::to_json() const { return metrics_json(*this).dump(); }

}  // namespace sparseae
