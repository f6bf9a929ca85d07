// Discrete decoding and the fidelity metrics, on values worked out by hand: the Poisson mode
// against a brute-force argmax of the pmf (and its tie rule), each decode mode on hand-picked
// outputs, the decode checks and their message, every ReconstructionMetrics field on a small
// mse case and a small poisson case under two decode modes, the JSON, and TrainedModel's
// decoding and evaluation with a decode mode (including the NLL against the trainer's loss).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "math/loss_math.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/io.hpp"
#include "sparseae/metrics.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"
#include "trained_run.hpp"

namespace sparseae {
namespace {

using test::contains;
using test::error_message;
using test::train_run;
using test::TrainedRun;

HostCsr csr(std::int64_t rows, std::int64_t cols, const std::vector<float>& dense) {
  return to_csr(HostDense{rows, cols, dense});
}

// ---- decoding ----

// The mode of Poisson(mu) is the exact argmax of the pmf: checked against a brute-force search
// over k = 0..200 in float64 on a grid of rates, where a tie (P(k) = P(k - 1), at an integer
// mu) goes to the larger k, the documented rule.
TEST(Decode, PoissonModeIsTheArgmaxOfThePmf) {
  const auto log_pmf = [](double mu, int k) {
    return k * std::log(mu) - mu - std::lgamma(k + 1.0);
  };
  for (int i = 1; i <= 2000; ++i) {  // mu = 0.01 .. 100 in steps of 0.05
    const float mu = static_cast<float>(i * 0.05 - 0.04);
    const double m = mu;
    int best = 0;
    for (int k = 1; k <= 200; ++k)
      if (log_pmf(m, k) >= log_pmf(m, best) - 1e-12 * std::fabs(log_pmf(m, best))) best = k;
    ASSERT_EQ(math::poisson_mode(mu), static_cast<float>(best)) << "mu " << mu;
  }
  // The tie: at an integer mu >= 1, P(mu) = P(mu - 1) and the mode is mu.
  for (const int mu : {1, 2, 3, 7, 40}) {
    EXPECT_NEAR(log_pmf(mu, mu), log_pmf(mu, mu - 1), 1e-12) << mu;
    EXPECT_EQ(math::poisson_mode(static_cast<float>(mu)), static_cast<float>(mu));
  }
  // Just below an integer the pmf's peak is the integer below.
  EXPECT_EQ(math::poisson_mode(0.999f), 0.0f);
  EXPECT_EQ(math::poisson_mode(1.999f), 1.0f);
  EXPECT_EQ(math::poisson_mode(0.0f), 0.0f);
  EXPECT_EQ(math::poisson_mode(-1.0f), 0.0f);
  EXPECT_EQ(math::poisson_mode(std::numeric_limits<float>::quiet_NaN()), 0.0f);
}

// Hand values of every mode. poisson outputs are log-rates: the rates here are 0.6, 1, 2.4, 2.7
// and 3.6 (none within float rounding of an integer or a half once through logf and expf),
// whose modes are 0, 1, 2, 2, 3 and whose rounded means are 1, 1, 2, 3, 4. mse outputs are the
// value itself: round and mean agree, ties to even as rintf (2.5 -> 2).
TEST(Decode, EachModeOnHandValues) {
  struct Case {
    float rate;
    float mode;
    float mean;
  };
  for (const Case c :
       {Case{0.6f, 0, 1}, Case{1.0f, 1, 1}, Case{2.4f, 2, 2}, Case{2.7f, 2, 3}, Case{3.6f, 3, 4}}) {
    SCOPED_TRACE(c.rate);
    const float eta = std::log(c.rate);
    EXPECT_EQ(math::decoded_count(LossKind::poisson, DecodeMode::mode, eta, 1.0f), c.mode);
    EXPECT_EQ(math::decoded_count(LossKind::poisson, DecodeMode::mean, eta, 1.0f), c.mean);
    EXPECT_EQ(math::decoded_count(LossKind::poisson, DecodeMode::round, eta, 1.0f), c.mean);
  }
  EXPECT_EQ(math::decoded_count(LossKind::poisson, DecodeMode::mode, -200.0f, 1.0f), 0.0f);
  for (const DecodeMode mode : {DecodeMode::round, DecodeMode::mean}) {
    EXPECT_EQ(math::decoded_count(LossKind::mse, mode, 2.5f, 1.0f), 2.0f);
    EXPECT_EQ(math::decoded_count(LossKind::mse, mode, 2.51f, 1.0f), 3.0f);
    EXPECT_EQ(math::decoded_count(LossKind::mse, mode, -0.7f, 1.0f), 0.0f);
    EXPECT_EQ(math::decoded_count(LossKind::huber, mode, 1.2f, 2.0f), 2.0f);  // times the scale
    EXPECT_EQ(math::decoded_count(LossKind::bce, mode, 0.0f, 4.0f), 2.0f);    // sigmoid(0) * 4
  }
  // count_from_value reads a value already in data units (what TrainedModel returns).
  EXPECT_EQ(math::count_from_value(LossKind::poisson, DecodeMode::mode, 4.99f), 4.0f);
  EXPECT_EQ(math::count_from_value(LossKind::poisson, DecodeMode::mean, 4.99f), 5.0f);
}

// A hurdle's count head gets no gradient where the count is 0, so it can extrapolate there: a
// decoder that knows the largest training count decodes no value or count beyond it, and the
// metrics it feeds stay finite-sized; one that does not (infinity) keeps the head's own.
TEST(Decode, NothingBeyondTheLargestTrainingCount) {
  const float h[3] = {4.0f, 20.0f, 1.0f};  // support ~0.98, log-mean 20: ~4.8e8
  const EntryDecoder unbounded(LossKind::hurdle_nb, 1.0f, DecodeMode::mode, 0.5);
  EXPECT_GT(unbounded.value(h), 1e8f);
  EXPECT_GT(unbounded.count(h), 1e8f);
  for (const DecodeMode decode : {DecodeMode::mode, DecodeMode::mean, DecodeMode::round}) {
    const EntryDecoder bounded(LossKind::hurdle_nb, 1.0f, decode, 0.5, 543.0);
    EXPECT_EQ(bounded.value(h), 543.0f) << decode_mode_name(decode);
    EXPECT_EQ(bounded.count(h), 543.0f) << decode_mode_name(decode);
    const float small[3] = {4.0f, std::log(3.0f), 1.0f};
    const EntryDecoder same_decode(LossKind::hurdle_nb, 1.0f, decode, 0.5);
    EXPECT_EQ(bounded.count(small), same_decode.count(small)) << "below the bound: unchanged";
    EXPECT_EQ(bounded.value(small), same_decode.value(small));
  }
  MetricsAccumulator metrics(EntryDecoder(LossKind::hurdle_nb, 1.0f, DecodeMode::mode, 0.5, 543.0));
  const std::vector<float> outputs = {h[0], h[1], h[2]};
  HostCsr target;
  target.rows = 1;
  target.cols = 1;
  target.row_offsets = {0, 0};
  metrics.add(ConstDenseView{outputs.data(), 1, 3, 3}, target.view());
  EXPECT_DOUBLE_EQ(metrics.result().mse, 543.0 * 543.0);
  EXPECT_THROW(EntryDecoder(LossKind::hurdle_nb, 1.0f, DecodeMode::mode, 0.5, 0.0), Error);
}

TEST(Decode, DefaultsAndTheModeCheck) {
  EXPECT_EQ(default_decode(LossKind::poisson), DecodeMode::mean);
  for (const LossKind loss : {LossKind::mse, LossKind::mae, LossKind::bce, LossKind::mse_cosine,
                              LossKind::weighted_mse, LossKind::huber}) {
    SCOPED_TRACE(loss_name(loss));
    EXPECT_EQ(default_decode(loss), DecodeMode::round);
    EXPECT_FALSE(has_count_likelihood(loss));
    EXPECT_NO_THROW(check_decode(loss, DecodeMode::round));
    EXPECT_NO_THROW(check_decode(loss, DecodeMode::mean));
    EXPECT_EQ(
        error_message([&] { check_decode(loss, DecodeMode::mode); }),
        std::string(
            "--decode mode needs a count likelihood (poisson, nb, zinb, hurdle, hurdle_nb); the "
            "model's loss is ") +
            loss_name(loss));
  }
  EXPECT_TRUE(has_count_likelihood(LossKind::poisson));
  for (const DecodeMode mode : {DecodeMode::round, DecodeMode::mode, DecodeMode::mean})
    EXPECT_NO_THROW(check_decode(LossKind::poisson, mode));
  EXPECT_EQ(parse_decode_mode("mode"), DecodeMode::mode);
  EXPECT_STREQ(decode_mode_name(DecodeMode::mean), "mean");
  // Every decoder checks before it decodes.
  EXPECT_THROW(MetricsAccumulator(LossKind::mse, 1.0f, DecodeMode::mode), Error);
  EXPECT_THROW(decode_to_counts(HostDense{1, 1, {1.0f}}, LossKind::mae, DecodeMode::mode), Error);
  EXPECT_EQ(MetricsAccumulator(LossKind::poisson, 1.0f).result().decode, DecodeMode::mean);
  EXPECT_EQ(MetricsAccumulator(LossKind::mse, 1.0f).result().decode, DecodeMode::round);
}

// Values in data units (rates of a poisson model) to counts, zeros dropped.
TEST(Decode, ReconstructionToCounts) {
  const HostDense rates{2, 3, {0.5f, 1.0f, 2.0f, 2.7f, 3.5f, 0.2f}};
  const HostCsr mode = decode_to_counts(rates, LossKind::poisson, DecodeMode::mode);
  EXPECT_EQ(to_dense(mode).values, (std::vector<float>{0, 1, 2, 2, 3, 0}));
  EXPECT_EQ(mode.nnz(), 4);
  const HostCsr mean = decode_to_counts(rates, LossKind::poisson, DecodeMode::mean);
  EXPECT_EQ(to_dense(mean).values, (std::vector<float>{0, 1, 2, 3, 4, 0}));
  EXPECT_EQ(to_dense(round_to_counts(rates)).values, to_dense(mean).values);
}

// ---- metrics by hand ----

// The mse case of Metrics.HandMadeCase (trainer_test.cpp), every field:
//   row 0: target [2, 0, 1, 0], output [2.2, 0.4, 0.6, 0.51] -> counts [2, 0, 1, 1]
//   row 1: target [0, 3, 0, 0], output [-0.7, 2.4, 0.2, 0]   -> counts [0, 2, 0, 0]
//   row 2: target [0, 0, 0, 0], output [0.49, -3, 0.1, 0.3]  -> counts [0, 0, 0, 0]
// precision 3/4, recall 1: F1 = 2 (3/4) / (7/4) = 6/7. Non-zero count errors 0, 0, 1: 1/3.
// SSE 10.8502; column means over the 3 rows 2/3, 1, 1/3, 0 give SST = 8/3 + 6 + 2/3 + 0 = 28/3,
// so explained variance 1 - 10.8502 * 3 / 28. Deviance terms (mu = max(v, 1e-8)):
//   2 [x ln(x / mu) - (x - mu)], which is 2 mu at x = 0. Raw CSR: (8 * 3 + 4 * 3) / 3 = 12.
TEST(Metrics, EveryFieldOnAnMseCase) {
  constexpr double kTolerance = 1e-6;  // the float outputs 0.2, 0.4, ... are not exact
  const HostCsr target = csr(3, 4, {2, 0, 1, 0, 0, 3, 0, 0, 0, 0, 0, 0});
  const std::vector<float> outputs = {2.2f, 0.4f, 0.6f,  0.51f, -0.7f, 2.4f,
                                      0.2f, 0.0f, 0.49f, -3.0f, 0.1f,  0.3f};
  const double floor = kDevianceRateFloor;
  const double deviance = 2 * (2 * std::log(2 / 2.2) + 0.2) + 2 * 0.4 +
                          2 * (std::log(1 / 0.6) - 0.4) + 2 * 0.51 +  // row 0
                          2 * floor + 2 * (3 * std::log(3 / 2.4) - 0.6) + 2 * 0.2 +
                          2 * floor +                                // row 1
                          2 * 0.49 + 2 * floor + 2 * 0.1 + 2 * 0.3;  // row 2
  const auto check = [&](const ReconstructionMetrics& m) {
    EXPECT_EQ(m.rows, 3);
    EXPECT_EQ(m.entries, 12);
    EXPECT_EQ(m.decode, DecodeMode::round);
    EXPECT_NEAR(m.mse, 10.8502 / 12, kTolerance);
    EXPECT_NEAR(m.mae, 6.9 / 12, kTolerance);
    EXPECT_DOUBLE_EQ(m.nonzero_exact_fraction, 2.0 / 3.0);
    EXPECT_DOUBLE_EQ(m.exact_precision, 2.0 / 4.0);  // 4 predicted non-zeros, 2 of them exact
    EXPECT_DOUBLE_EQ(m.exact_f1, 2.0 * 2.0 / (4.0 + 3.0));
    EXPECT_DOUBLE_EQ(m.row_exact_fraction, 1.0 / 3.0);
    EXPECT_DOUBLE_EQ(m.support_precision, 3.0 / 4.0);
    EXPECT_DOUBLE_EQ(m.support_recall, 1.0);
    EXPECT_DOUBLE_EQ(m.support_f1, 6.0 / 7.0);
    EXPECT_DOUBLE_EQ(m.nonzero_mae, 1.0 / 3.0);
    EXPECT_NEAR(m.explained_variance, 1.0 - 10.8502 * 3.0 / 28.0, kTolerance);
    EXPECT_NEAR(m.poisson_deviance, deviance / 12, kTolerance);
    EXPECT_TRUE(std::isnan(m.nll_bits_per_row)) << "mse is no likelihood over counts";
    EXPECT_DOUBLE_EQ(m.raw_csr_bytes_per_row, 12.0);
  };
  MetricsAccumulator whole(LossKind::mse, 1.0f, DecodeMode::round);
  whole.add(ConstDenseView(outputs.data(), 3, 4), target.view());
  check(whole.result());
  // In two batches (the column means of SST span both), and with decode mean: the same.
  MetricsAccumulator split(LossKind::mse, 1.0f, DecodeMode::mean);
  split.add(ConstDenseView(outputs.data(), 2, 4), select_rows(target, {0, 1}).view());
  split.add(ConstDenseView(outputs.data() + 8, 1, 4), select_rows(target, {2}).view());
  ReconstructionMetrics m = split.result();
  EXPECT_EQ(m.decode, DecodeMode::mean);
  m.decode = DecodeMode::round;
  check(m);
}

// A poisson model, 2 rows x 3 columns, outputs the log-rates of
//   row 0: target [0, 1, 3], rates [0.5, 1, 2.2]
//   row 1: target [2, 0, 0], rates [2.7, e^-120 (0 in float), 0.6]
// mode decodes [0, 1, 2] and [2, 0, 0] (the tie at the integer rate 1 goes up);
// mean decodes [0, 1, 2] and [3, 0, 1] (rintf(0.5) = 0).
//   mode: exact non-zeros 2/3, exact precision 2/3, rows 1/2, support precision 3/3, recall 3/3,
//         F1 1, non-zero mae 1/3
//   mean: exact non-zeros 1/3, exact precision 1/4, rows 0, support precision 3/4, recall 1,
//         F1 6/7, non-zero mae 2/3
// On the rates, whatever the decode: errors 0.5, 0, -0.8, 0.7, 0, 0.6: mse 1.74 / 6,
// mae 2.6 / 6; SST = 2 + 0.5 + 4.5 = 7 (column means 1, 0.5, 1.5), explained variance
// 1 - 1.74 / 7. NLL in nats, mu - x ln mu + ln x!: 0.5, 1, 2.2 - 3 ln 2.2 + ln 6,
// 2.7 - 2 ln 2.7 + ln 2, e^-120,
// 0.6; in bits per row, / ln 2 / 2. Raw CSR: (8 * 3 + 4 * 2) / 2 = 16.
TEST(Metrics, PoissonCaseUnderModeAndMean) {
  constexpr double kTolerance = 1e-6;
  const HostCsr target = csr(2, 3, {0, 1, 3, 2, 0, 0});
  const std::vector<float> eta = {std::log(0.5f), 0.0f,    std::log(2.2f),
                                  std::log(2.7f), -120.0f, std::log(0.6f)};
  const double floor = kDevianceRateFloor;
  const double deviance = (2 * 0.5 + 0 + 2 * (3 * std::log(3 / 2.2) - 0.8) +
                           2 * (2 * std::log(2 / 2.7) + 0.7) + 2 * floor + 2 * 0.6) /
                          6;
  const double nll_nats = 0.5 + 1 + (2.2 - 3 * std::log(2.2) + std::log(6.0)) +
                          (2.7 - 2 * std::log(2.7) + std::log(2.0)) + std::exp(-120.0) + 0.6;
  const auto common = [&](const ReconstructionMetrics& m) {
    EXPECT_EQ(m.rows, 2);
    EXPECT_EQ(m.entries, 6);
    EXPECT_NEAR(m.mse, 1.74 / 6, kTolerance);
    EXPECT_NEAR(m.mae, 2.6 / 6, kTolerance);
    EXPECT_NEAR(m.explained_variance, 1 - 1.74 / 7, kTolerance);
    EXPECT_NEAR(m.poisson_deviance, deviance, kTolerance);
    EXPECT_NEAR(m.nll_bits_per_row, nll_nats / std::log(2.0) / 2, kTolerance);
    EXPECT_DOUBLE_EQ(m.raw_csr_bytes_per_row, 16.0);
  };
  MetricsAccumulator mode(LossKind::poisson, 1.0f, DecodeMode::mode);
  mode.add(ConstDenseView(eta.data(), 2, 3), target.view());
  const ReconstructionMetrics a = mode.result();
  common(a);
  EXPECT_EQ(a.decode, DecodeMode::mode);
  EXPECT_DOUBLE_EQ(a.nonzero_exact_fraction, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(a.exact_precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(a.exact_f1, 2.0 * 2.0 / (3.0 + 3.0));
  EXPECT_DOUBLE_EQ(a.row_exact_fraction, 0.5);
  EXPECT_DOUBLE_EQ(a.support_precision, 1.0);
  EXPECT_DOUBLE_EQ(a.support_recall, 1.0);
  EXPECT_DOUBLE_EQ(a.support_f1, 1.0);
  EXPECT_DOUBLE_EQ(a.nonzero_mae, 1.0 / 3.0);

  MetricsAccumulator mean(LossKind::poisson, 1.0f, DecodeMode::mean);
  mean.add(ConstDenseView(eta.data(), 2, 3), target.view());
  const ReconstructionMetrics b = mean.result();
  common(b);
  EXPECT_EQ(b.decode, DecodeMode::mean);
  EXPECT_DOUBLE_EQ(b.nonzero_exact_fraction, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(b.exact_precision, 1.0 / 4.0);
  EXPECT_DOUBLE_EQ(b.exact_f1, 2.0 * 1.0 / (4.0 + 3.0));
  EXPECT_DOUBLE_EQ(b.row_exact_fraction, 0.0);
  EXPECT_DOUBLE_EQ(b.support_precision, 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(b.support_recall, 1.0);
  EXPECT_DOUBLE_EQ(b.support_f1, 6.0 / 7.0);
  EXPECT_DOUBLE_EQ(b.nonzero_mae, 2.0 / 3.0);
}

// Where the rate underflows to 0 in float against a non-zero count, the NLL comes from the
// log-rate and stays finite (e^-120 + 120 nats for a count of 1), while the deviance uses the
// floored rate: 2 [ln(1 / 1e-8) - (1 - 1e-8)].
TEST(Metrics, NllUsesTheLogRateWhereTheRateUnderflows) {
  const HostCsr target = csr(1, 1, {1});
  const float eta = -120.0f;
  MetricsAccumulator m(LossKind::poisson, 1.0f);
  m.add(ConstDenseView(&eta, 1, 1), target.view());
  const ReconstructionMetrics r = m.result();
  EXPECT_NEAR(r.nll_bits_per_row, (std::exp(-120.0) + 120.0) / std::log(2.0), 1e-9);
  EXPECT_NEAR(r.poisson_deviance, 2 * (std::log(1e8) - (1 - 1e-8)), 1e-9);
  EXPECT_DOUBLE_EQ(r.nonzero_exact_fraction, 0.0);
  EXPECT_DOUBLE_EQ(r.nonzero_mae, 1.0);
  EXPECT_DOUBLE_EQ(r.raw_csr_bytes_per_row, 12.0);
  EXPECT_TRUE(std::isnan(r.explained_variance)) << "one row: every column is constant";
}

// With a scale, a poisson model's rate is rate(eta) * scale and ln mu = eta + ln scale.
TEST(Metrics, PoissonRateTimesScale) {
  const HostCsr target = csr(1, 2, {4, 0});
  const std::vector<float> eta = {0.0f, std::log(0.25f)};  // rates 2 * 1 and 2 * 0.25
  MetricsAccumulator m(LossKind::poisson, 2.0f, DecodeMode::mode);
  m.add(ConstDenseView(eta.data(), 1, 2), target.view());
  const ReconstructionMetrics r = m.result();
  const double nll = (2 - 4 * std::log(2.0) + std::lgamma(5.0)) + 0.5;
  EXPECT_NEAR(r.nll_bits_per_row, nll / std::log(2.0), 1e-6);
  EXPECT_NEAR(r.mse, (4.0 + 0.25) / 2, 1e-6);
  EXPECT_DOUBLE_EQ(r.nonzero_mae, 2.0);  // mode 2 against 4
}

TEST(Metrics, JsonHasEveryFieldAndNullWhereUndefined) {
  const HostCsr target = csr(3, 4, {2, 0, 1, 0, 0, 3, 0, 0, 0, 0, 0, 0});
  const std::vector<float> outputs = {2.2f, 0.4f, 0.6f,  0.51f, -0.7f, 2.4f,
                                      0.2f, 0.0f, 0.49f, -3.0f, 0.1f,  0.3f};
  MetricsAccumulator m(LossKind::mse, 1.0f);
  m.add(ConstDenseView(outputs.data(), 3, 4), target.view());
  const std::string json = m.result().to_json();
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  for (const char* field :
       {"{\"rows\": 3, \"entries\": 12, \"decode\": \"round\", \"mse\": 0.904183, \"mae\": 0.575, ",
        "\"exact_f1\": 0.571429, \"exact_precision\": 0.500000, \"exact_recall\": 0.666667, ",
        "\"nonzero_exact_fraction\": 0.666667, \"row_exact_fraction\": 0.333333, ",
        "\"support_precision\": 0.750000, \"support_recall\": 1.000000, \"support_f1\": 0.857143, ",
        "\"nonzero_mae\": 0.333333, \"explained_variance\": -0.162521, \"poisson_deviance\": ",
        "\"nll_bits_per_row\": null, \"code_bits_per_row\": null, ",
        "\"description_bits_per_row\": null, \"raw_csr_bytes_per_row\": 12, ",
        // The latent code's statistics come from TrainedModel::evaluate, not the accumulator.
        "\"latent_l0\": null, \"dead_latent_fraction\": null, \"dense_latent_fraction\": null}"})
    EXPECT_TRUE(contains(json, field)) << field << " missing from " << json;

  const std::string empty = MetricsAccumulator(LossKind::poisson, 1.0f).result().to_json();
  EXPECT_TRUE(contains(empty, "\"decode\": \"mean\"")) << empty;
  EXPECT_TRUE(contains(empty, "\"explained_variance\": null")) << empty;
  EXPECT_TRUE(contains(empty, "\"nll_bits_per_row\": null")) << empty;
  EXPECT_TRUE(contains(empty, "\"raw_csr_bytes_per_row\": 0, ")) << empty;
}

// Nothing added: the ratios are 0, the undefined ones NaN.
TEST(Metrics, NothingAddedGivesZerosAndNaN) {
  const ReconstructionMetrics m = MetricsAccumulator(LossKind::poisson, 1.0f).result();
  EXPECT_EQ(m.rows, 0);
  EXPECT_EQ(m.exact_f1, 0.0);
  EXPECT_EQ(m.exact_precision, 0.0);
  EXPECT_EQ(m.support_f1, 0.0);
  EXPECT_EQ(m.nonzero_mae, 0.0);
  EXPECT_EQ(m.poisson_deviance, 0.0);
  EXPECT_EQ(m.raw_csr_bytes_per_row, 0.0);
  EXPECT_TRUE(std::isnan(m.explained_variance));
  EXPECT_TRUE(std::isnan(m.nll_bits_per_row));
}

// ---- a trained model ----

// 2 epochs on 300 rows of the topic generator.
TrainedRun train_briefly(Backend& backend, LossKind loss) {
  TopicDataConfig data_config;
  data_config.rows = 300;
  const HostCsr data = generate_topic_counts(data_config);
  RunConfig run;
  run.model.input_dim = data.cols;
  run.model.hidden = {16};
  run.model.latent = 4;
  run.train.loss = loss;
  run.train.epochs = 2;
  run.train.batch_size = 32;
  run.train.optimizer.learning_rate = 3e-3f;
  return train_run(backend, run, data);
}
// A poisson model decodes by its rounded mean unless asked otherwise; its counts are floor(rate)
// (mode) or the rounded rate (mean); its NLL in bits per row is the trainer's validation loss (mean
// nats per entry) times the width over ln 2.
TEST(TrainedModelDecode, PoissonModelDecodesByMeanAndItsNllIsItsLoss) {
  const auto backend = make_backend(BackendChoice::cpu);
  const TrainedRun t = train_briefly(*backend, LossKind::poisson);
  TrainedModel model(*backend, t.run, t.parameters);
  EXPECT_EQ(model.default_decode(), DecodeMode::mean);

  const ReconstructionMetrics by_default = model.evaluate(t.validation);
  EXPECT_EQ(by_default.decode, DecodeMode::mean);
  EXPECT_EQ(by_default.to_json(), model.evaluate(t.validation, DecodeMode::mean).to_json());
  const ReconstructionMetrics by_mean = model.evaluate(t.validation, DecodeMode::mean);
  EXPECT_EQ(by_mean.decode, DecodeMode::mean);
  EXPECT_EQ(by_mean.mse, by_default.mse) << "the unrounded value does not depend on the decode";
  const double bits = t.validation_loss * static_cast<double>(t.validation.cols) / std::log(2.0);
  std::printf(
      "  poisson, 2 epochs: nll %.2f bits/row, raw csr %.2f bytes/row, exact non-zeros "
      "%.3f (mode) %.3f (mean)\n",
      by_default.nll_bits_per_row, by_default.raw_csr_bytes_per_row,
      model.evaluate(t.validation, DecodeMode::mode).nonzero_exact_fraction,
      by_mean.nonzero_exact_fraction);
  EXPECT_NEAR(by_default.nll_bits_per_row, bits, 1e-5 * bits);
  EXPECT_NEAR(
      by_default.raw_csr_bytes_per_row,
      4.0 + 8.0 * static_cast<double>(t.validation.nnz()) / static_cast<double>(t.validation.rows),
      1e-12);

  const HostDense rates = model.reconstruct(t.validation);
  const HostDense mode = to_dense(model.to_counts(rates, DecodeMode::mode));
  const HostDense mean = to_dense(model.to_counts(rates));
  for (std::size_t i = 0; i < rates.values.size(); ++i) {
    ASSERT_EQ(mode.values[i], rates.values[i] >= 1.0f ? std::floor(rates.values[i]) : 0.0f) << i;
    ASSERT_EQ(mean.values[i], std::nearbyint(rates.values[i])) << i;
  }
}

// An mse model rounds; asking it for the mode fails before anything is decoded.
TEST(TrainedModelDecode, MseModelRefusesMode) {
  const auto backend = make_backend(BackendChoice::cpu);
  const TrainedRun t = train_briefly(*backend, LossKind::mse);
  TrainedModel model(*backend, t.run, t.parameters);
  EXPECT_EQ(model.default_decode(), DecodeMode::round);
  EXPECT_EQ(model.evaluate(t.validation).decode, DecodeMode::round);
  const std::string message =
      "--decode mode needs a count likelihood (poisson, nb, zinb, hurdle, hurdle_nb); the model's "
      "loss is mse";
  EXPECT_EQ(error_message([&] { model.evaluate(t.validation, DecodeMode::mode); }), message);
  const HostDense values = model.reconstruct(t.validation);
  EXPECT_EQ(error_message([&] { model.to_counts(values, DecodeMode::mode); }), message);
  const HostCsr counts = model.to_counts(values);
  const HostCsr rounded = round_to_counts(values);
  EXPECT_EQ(counts.values, rounded.values);
  EXPECT_EQ(counts.col_indices, rounded.col_indices);
}

// ---- counts from the raw outputs, and the hurdle threshold ----

// The exactly reproduced, predicted and true non-zeros of decoded counts against the truth.
struct ExactCounts {
  std::int64_t exact = 0;
  std::int64_t predicted = 0;
  std::int64_t truth = 0;
  std::int64_t support = 0;             // predicted non-zeros that are non-zeros
  std::vector<std::int64_t> row_wrong;  // per row: entries with k != x
  // The exact-match F1 of choose_hurdle_threshold: 2 exact / (predicted + true).
  double f1() const {
    return predicted + truth > 0 ? 2.0 * exact / static_cast<double>(predicted + truth) : 0.0;
  }
};

ExactCounts exact_counts(const HostCsr& counts, const HostCsr& truth) {
  const HostDense k = to_dense(counts);
  const HostDense x = to_dense(truth);
  EXPECT_EQ(k.rows, x.rows);
  EXPECT_EQ(k.cols, x.cols);
  ExactCounts e;
  for (std::int64_t r = 0; r < x.rows; ++r) {
    std::int64_t wrong = 0;
    for (std::int64_t c = 0; c < x.cols; ++c) {
      const float kv = k.values[r * x.cols + c], xv = x.values[r * x.cols + c];
      e.predicted += kv != 0.0f;
      e.truth += xv != 0.0f;
      e.exact += xv != 0.0f && kv == xv;
      e.support += xv != 0.0f && kv != 0.0f;
      wrong += kv != xv;
    }
    e.row_wrong.push_back(wrong);
  }
  return e;
}

// For every count likelihood and every decode it allows, the counts written from the raw outputs
// (counts_from_outputs, what sae writes) are the counts the metrics measured: the same exact
// non-zeros, predicted non-zeros and wrong entries row by row. The values are reconstruct's, and
// the outputs from latent codes are those from counts.
TEST(TrainedModelDecode, CountsFromOutputsAreTheCountsTheMetricsMeasure) {
  const auto backend = make_backend(BackendChoice::cpu);
  for (const LossKind loss : {LossKind::poisson, LossKind::nb, LossKind::zinb, LossKind::hurdle}) {
    SCOPED_TRACE(loss_name(loss));
    TrainedRun t = train_briefly(*backend, loss);
    t.run.hurdle_threshold = 0.35;  // a threshold other than the default, for hurdle's mode
    TrainedModel model(*backend, t.run, t.parameters);
    const HostDense outputs = model.outputs(t.validation);
    ASSERT_EQ(outputs.cols, t.validation.cols * output_heads(loss));
    EXPECT_EQ(model.values_from_outputs(outputs).values, model.reconstruct(t.validation).values);
    EXPECT_EQ(model.decode_outputs(model.encode(t.validation)).values, outputs.values);
    for (const DecodeMode decode : {DecodeMode::mode, DecodeMode::mean, DecodeMode::round}) {
      SCOPED_TRACE(decode_mode_name(decode));
      const HostCsr counts = model.counts_from_outputs(outputs, decode);
      ReconstructionDetail detail;
      const ReconstructionMetrics m = model.evaluate(t.validation, decode, &detail);
      const ExactCounts e = exact_counts(counts, t.validation);
      EXPECT_EQ(detail.row_wrong_entries, e.row_wrong);
      EXPECT_EQ(m.nonzero_exact_fraction, static_cast<double>(e.exact) / e.truth);
      EXPECT_EQ(m.support_precision,
                e.predicted > 0 ? static_cast<double>(e.support) / e.predicted : 0.0);
      if (decode != DecodeMode::mode || output_heads(loss) == 1) {
        EXPECT_EQ(counts.values, model.to_counts(model.reconstruct(t.validation), decode).values)
            << "the counts of the means where the means suffice";
      }
    }
  }
}

// A model whose outputs are its output biases (every weight 0): four hurdle columns with
// support probabilities 0.12, 0.32, 0.62, 0.92 and rate 2.5 (mode count 2), against two rows
//   column  0       1       2       3
//   x       1, 0    2, 2    2, 3    2, 0
// True non-zeros 6. The threshold t predicts a 2 in every column whose probability is >= t:
//   t <= 0.10         columns 0-3: predicted 8, exact 4 (col 1: 2, col 2: 1, col 3: 1), F1 8/14
//   0.15 <= t <= 0.30 columns 1-3: predicted 6, exact 4, F1 8/12 (the best)
//   0.35 <= t <= 0.60 columns 2-3: predicted 4, exact 2, F1 4/10
//   0.65 <= t <= 0.90 column 3:    predicted 2, exact 1, F1 2/8
//   t = 0.95          none:        F1 0
// so the grid's best is 0.15 .. 0.30, and the tie goes to the one nearest 0.5: 0.30.
TEST(HurdleThreshold, GridChoiceOnAHandBuiltCase) {
  const auto backend = make_backend(BackendChoice::cpu);
  RunConfig run;
  run.model.input_dim = 4;
  run.model.hidden = {};
  run.model.latent = 1;
  run.model.output_activation = Activation::identity;
  run.train.loss = LossKind::hurdle;
  run.model.output_heads = 2;
  const ModelLayout layout(run.model);
  std::vector<float> parameters(static_cast<std::size_t>(layout.parameter_count()), 0.0f);
  const LayerShape& out = layout.layers().back();
  ASSERT_EQ(out.out, 8);
  const double probabilities[4] = {0.12, 0.32, 0.62, 0.92};
  for (int c = 0; c < 4; ++c) {
    parameters[out.bias_offset + c] =
        static_cast<float>(std::log(probabilities[c] / (1.0 - probabilities[c])));
    parameters[out.bias_offset + 4 + c] = std::log(2.5f);
  }
  HostCsr truth;
  truth.rows = 2;
  truth.cols = 4;
  truth.row_offsets = {0, 4, 6};
  truth.col_indices = {0, 1, 2, 3, 1, 2};
  truth.values = {1, 2, 2, 2, 2, 3};
  TrainedModel model(*backend, run, parameters);
  EXPECT_EQ(model.hurdle_threshold(), 0.5);
  EXPECT_EQ(choose_hurdle_threshold(model, truth), 0.30);
  EXPECT_EQ(model.hurdle_threshold(), 0.5) << "the choice is the caller's to store";

  // The F1s of the table, from the counts the model writes at each threshold.
  const HostDense outputs = model.outputs(truth);
  const auto f1_at = [&](double threshold) {
    model.set_hurdle_threshold(threshold);
    return exact_counts(model.counts_from_outputs(outputs, DecodeMode::mode), truth).f1();
  };
  EXPECT_DOUBLE_EQ(f1_at(0.10), 8.0 / 14.0);
  EXPECT_DOUBLE_EQ(f1_at(0.30), 8.0 / 12.0);
  EXPECT_DOUBLE_EQ(f1_at(0.50), 4.0 / 10.0);
  EXPECT_DOUBLE_EQ(f1_at(0.90), 2.0 / 8.0);
  EXPECT_DOUBLE_EQ(f1_at(0.95), 0.0);
  // The metrics decode with the model's threshold too.
  model.set_hurdle_threshold(0.30);
  EXPECT_DOUBLE_EQ(model.evaluate(truth, DecodeMode::mode).nonzero_exact_fraction, 4.0 / 6.0);
  model.set_hurdle_threshold(0.5);
  EXPECT_DOUBLE_EQ(model.evaluate(truth, DecodeMode::mode).nonzero_exact_fraction, 2.0 / 6.0);

  // No non-zeros at all: every F1 is 0, and the tie goes to the default.
  HostCsr zeros;
  zeros.rows = 2;
  zeros.cols = 4;
  zeros.row_offsets = {0, 0, 0};
  EXPECT_EQ(choose_hurdle_threshold(model, zeros), 0.5);
  EXPECT_THROW(model.set_hurdle_threshold(1.5), Error);
}

// A trained hurdle model: the chosen threshold's F1 is the best on the grid (so at least the
// default's), and the threshold survives a checkpoint round trip.
TEST(HurdleThreshold, ChosenOnTrainedModelBeatsTheDefaultAndIsCheckpointed) {
  const auto backend = make_backend(BackendChoice::cpu);
  TrainedRun t = train_briefly(*backend, LossKind::hurdle);
  TrainedModel model(*backend, t.run, t.parameters);
  const double chosen = choose_hurdle_threshold(model, t.validation);
  const HostDense outputs = model.outputs(t.validation);
  const auto f1_at = [&](double threshold) {
    model.set_hurdle_threshold(threshold);
    return exact_counts(model.counts_from_outputs(outputs, DecodeMode::mode), t.validation).f1();
  };
  const double best = f1_at(chosen);
  std::printf("  hurdle, 2 epochs: threshold %.2f, exact-match F1 %.4f (0.5: %.4f)\n", chosen, best,
              f1_at(0.5));
  EXPECT_GE(best, f1_at(0.5));
  for (int i = 1; i <= 19; ++i) EXPECT_LE(f1_at(i / 20.0), best) << i / 20.0;

  t.run.hurdle_threshold = chosen;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparseae-hurdle-" + std::to_string(::getpid()) + ".ckpt"))
                               .string();
  Trainer::State state;
  state.parameters = state.first_moment = state.second_moment = state.best_parameters =
      t.parameters;
  save_checkpoint(path, {t.run, state});
  const Checkpoint loaded = load_checkpoint(path);
  std::filesystem::remove(path);
  EXPECT_EQ(loaded.config.hurdle_threshold, chosen);
  TrainedModel reloaded(*backend, loaded.config, loaded.state.parameters);
  EXPECT_EQ(reloaded.hurdle_threshold(), chosen);
  EXPECT_EQ(reloaded.evaluate(t.validation, DecodeMode::mode).to_json(), [&] {
    model.set_hurdle_threshold(chosen);
    return model.evaluate(t.validation, DecodeMode::mode).to_json();
  }());

  // Only a hurdle model has a threshold to choose.
  TrainedRun nb = train_briefly(*backend, LossKind::nb);
  TrainedModel nb_model(*backend, nb.run, nb.parameters);
  EXPECT_THROW(choose_hurdle_threshold(nb_model, nb.validation), Error);
}

}  // namespace
}  // namespace sparseae
