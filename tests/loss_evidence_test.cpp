// Which loss and decode reproduce the embedded dataset best: every loss trained by
// compare_losses on a small slice of the embedded topic counts, measured under every decode it
// accepts, and the ordering we measured asserted with a margin. The assertions state findings,
// not hopes: the count likelihoods win on deviance and NLL, but on the non-zero exact fraction
// the winner is weighted_mse (it buys recall with precision), and a count likelihood beats mse on
// exactness only as the hurdle decoded by its mode.
//
// Setup: generate_topic_counts with rows = 4000 (seed 42, 512 columns), val_fraction 0.2 (800
// validation rows), model 512-64-16-64-512 (relu, identity output), adam lr 0.002, batch 32,
// 8 epochs, seed 1; cpu backend. 14 trainings, about 14 s on 2 idle cores (much longer when
// another process competes for the cores, as OpenMP's threads then wait on each other).
//
// Measured (seed 1; seeds 2, 3, 4 in brackets, by `sae compare` with the same settings; the
// hurdle's mode threshold chosen on the validation rows by compare_losses):
//
//   loss          decode  nz exact %              deviance / entry          NLL bits/row
//   mse           round   27.7  [27.3 27.0 27.2]  0.257 [0.279 0.282 0.260]  -
//   mae           round    0.0  [ 0.0  0.0  0.0]  1.98  [2.00  2.02  1.96 ]  -
//   mse_cosine    round   28.6  [27.2 27.2 27.4]  0.238 [0.280 0.277 0.259]  -
//   weighted_mse  round   40.3  [38.8 39.1 38.9]  0.435 [0.427 0.436 0.427]  -
//   huber         round   15.9  [ 8.0  7.6 10.2]  0.362 [0.418 0.453 0.403]  -
//   bce (max)     round    1.2  [ 2.6  1.6  1.0]  0.420 [0.388 0.415 0.408]  -
//   poisson       mean    24.7  [23.7 22.6 22.5]  0.168 [0.167 0.182 0.175]  96.5 [96.5 103.3 99.2]
//   poisson       mode    13.5  [12.8 12.3 11.9]
//   nb            mean    23.0  [24.1 24.2 22.4]  0.182 [0.165 0.180 0.175]  96.4 [93.5  99.2 95.3]
//   nb            mode     9.7  [10.5 10.9  9.6]
//   zinb          mean    26.4  [26.6 25.5 25.3]  0.156 [0.156 0.169 0.158]  90.5 [90.6  96.4 90.8]
//   zinb          mode    11.4  [10.7 10.7 10.0]
//   hurdle        mean    27.4  [26.2 26.9 26.2]  0.160 [0.160 0.168 0.159]  92.6 [93.2  97.4 92.0]
//   hurdle        mode    34.3  [33.6 33.7 33.9]
//
// round and mean give the same counts for every loss (both round the predicted mean; for the
// count likelihoods that mean is the distribution's), so the table shows one of them. Deviance
// and NLL do not depend on the decode. Why the order is what it is: most non-zeros are 1 or 2
// and many predicted rates are below 1, so floor-based modes (poisson, nb, zinb) send them to 0
// (support recall falls from ~57 % to ~37 %); the hurdle's mode puts every entry it calls
// non-zero at 1 or more, which is where most non-zeros are. weighted_mse weights the zero
// targets by 0.1, so its outputs rise everywhere: it predicts far more non-zeros (recall ~80 %,
// precision ~28 % against mse's ~68 %), which raises the exact non-zeros and worsens the deviance
// and mse. mae's optimum is the median, 0 for almost every entry, so it reproduces no non-zero.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/compare.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/metrics.hpp"

namespace sparseae {
namespace {

using Key = std::pair<LossKind, DecodeMode>;

const std::vector<LossKind>& all_losses() {
  static const std::vector<LossKind> losses = {
      LossKind::mse,     LossKind::mae, LossKind::mse_cosine, LossKind::weighted_mse,
      LossKind::huber,   LossKind::bce, LossKind::poisson,    LossKind::nb,
      LossKind::zinb,    LossKind::hurdle};
  return losses;
}

const std::vector<LossKind>& count_losses() {
  static const std::vector<LossKind> losses = {LossKind::poisson, LossKind::nb, LossKind::zinb,
                                               LossKind::hurdle};
  return losses;
}

std::string describe(const Key& key) {
  return std::string(loss_name(key.first)) + "/" + decode_mode_name(key.second);
}

// Every loss under its default decode (round; mean for the count likelihoods), the count
// likelihoods also under mode. compare_losses is deterministic for a seed, so both calls train
// the same models. round is not run separately: for every loss it rounds the same predicted mean
// that mean rounds (math::head_count), so it gives the same counts.
std::map<Key, ReconstructionMetrics> measure_all() {
  TopicDataConfig data_config;
  data_config.rows = 4000;
  const HostCsr data = generate_topic_counts(data_config);

  CompareConfig config;
  config.model.hidden = {64};
  config.model.latent = 16;
  config.model.seed = 1;
  config.train.epochs = 8;
  config.train.batch_size = 32;
  config.train.val_fraction = 0.2;
  config.train.seed = 1;
  config.train.optimizer.learning_rate = 0.002f;
  // The findings are about what each loss trains to: its last epoch. Kept by F1, mae would keep
  // its random start, whose rounded outputs reproduce a few non-zeros by chance.
  config.select_by_f1 = false;

  const auto backend = make_backend(BackendChoice::cpu);
  std::map<Key, ReconstructionMetrics> measured;
  const auto run = [&](const std::vector<LossKind>& losses, std::optional<DecodeMode> decode) {
    config.losses = losses;
    config.decode = decode;
    for (const ComparisonRow& row : compare_losses(*backend, data, config)) {
      EXPECT_EQ(row.decode, decode ? *decode : default_decode(row.loss));
      EXPECT_EQ(row.metrics.rows, 800);
      measured[{row.loss, row.decode}] = row.metrics;
    }
  };
  run(all_losses(), std::nullopt);
  run(count_losses(), DecodeMode::mode);
  return measured;
}

const std::map<Key, ReconstructionMetrics>& measured() {
  static const std::map<Key, ReconstructionMetrics> result = measure_all();
  return result;
}

double exact(LossKind loss, DecodeMode decode) {
  return measured().at({loss, decode}).nonzero_exact_fraction;
}

double deviance(LossKind loss) {
  return measured().at({loss, default_decode(loss)}).poisson_deviance;
}

TEST(LossEvidence, EveryLossAndDecodeWasMeasured) {
  EXPECT_EQ(measured().size(), all_losses().size() + count_losses().size());
  for (LossKind loss : count_losses()) EXPECT_EQ(default_decode(loss), DecodeMode::mean);
}

// Measured 40.3 % for weighted_mse against 34.3 % for the next (hurdle/mode) and 27.7 % for mse
// (seeds 2-4: margins over the runner-up 5.2, 5.4, 5.0 points): asserted with 3 points.
TEST(LossEvidence, WeightedMseReproducesTheMostNonZerosExactly) {
  const Key winner{LossKind::weighted_mse, DecodeMode::round};
  for (const auto& [key, metrics] : measured()) {
    if (key == winner) continue;
    EXPECT_GT(exact(LossKind::weighted_mse, DecodeMode::round),
              metrics.nonzero_exact_fraction + 0.03)
        << describe(key);
  }
  // ... by predicting non-zeros generously: recall up, precision down (80 % / 28 % against
  // mse's 63 % / 68 %).
  const ReconstructionMetrics& weighted = measured().at(winner);
  const ReconstructionMetrics& mse = measured().at({LossKind::mse, DecodeMode::round});
  EXPECT_GT(weighted.support_recall, mse.support_recall + 0.10);
  EXPECT_LT(weighted.support_precision, mse.support_precision - 0.25);
}

// Of the count likelihoods only the hurdle decoded by its mode beats mse on exactness (34.3 %
// against 27.7 %; seeds 2-4: +6.3, +6.7, +6.7 points): asserted with 4 points. Decoded by
// their rounded mean none beats mse by more than a point (best: hurdle 27.4 % against 27.7 %).
TEST(LossEvidence, OnlyTheHurdleModeBeatsMseOnExactness) {
  const double mse = exact(LossKind::mse, DecodeMode::round);
  EXPECT_GT(exact(LossKind::hurdle, DecodeMode::mode), mse + 0.04);
  for (LossKind loss : count_losses()) {
    EXPECT_LT(exact(loss, DecodeMode::mean), mse + 0.01) << loss_name(loss);
    if (loss != LossKind::hurdle) {
      EXPECT_LT(exact(loss, DecodeMode::mode), mse) << loss_name(loss);
    }
  }
}

// The floor-based modes lose non-zeros whose rate is below 1: poisson, nb and zinb lose 11, 13
// and 15 points against their mean (at least 10.4 over seeds 1-4; asserted with 8); the hurdle's
// mode (at least 1 on its support) gains 6.9 (at least 6.7; asserted with 4).
TEST(LossEvidence, ModeHurtsTheFloorModesAndHelpsTheHurdle) {
  for (LossKind loss : {LossKind::poisson, LossKind::nb, LossKind::zinb}) {
    EXPECT_LT(exact(loss, DecodeMode::mode), exact(loss, DecodeMode::mean) - 0.08)
        << loss_name(loss);
    EXPECT_LT(measured().at({loss, DecodeMode::mode}).support_recall,
              measured().at({loss, DecodeMode::mean}).support_recall - 0.10)
        << loss_name(loss);
  }
  EXPECT_GT(exact(LossKind::hurdle, DecodeMode::mode), exact(LossKind::hurdle, DecodeMode::mean) + 0.04);
}

// Deviance: every count likelihood (0.156-0.182) beats every other loss (best: mse_cosine 0.238,
// mse 0.257) by at least 0.056 over seeds 1-4 (asserted with 0.04); the zero-aware ones
// (zinb 0.156, hurdle 0.160) beat poisson and nb (0.168, 0.182) — by at least 0.0049 over seeds
// 1-4, asserted with 0.002.
TEST(LossEvidence, CountLikelihoodsFitTheCountsBest) {
  double best_other = 1e300;
  for (LossKind loss : all_losses())
    if (!has_count_likelihood(loss)) best_other = std::min(best_other, deviance(loss));
  for (LossKind loss : count_losses())
    EXPECT_LT(deviance(loss), best_other - 0.04) << loss_name(loss);
  for (LossKind zero_aware : {LossKind::zinb, LossKind::hurdle})
    for (LossKind plain : {LossKind::poisson, LossKind::nb})
      EXPECT_LT(deviance(zero_aware), deviance(plain) - 0.002)
          << loss_name(zero_aware) << " vs " << loss_name(plain);
}

// NLL: zinb assigns the counts the shortest code (90.5 bits/row against hurdle 92.6, nb 96.4,
// poisson 96.5; its lead at least 0.99 bits over seeds 1-4): asserted with 0.5 bits.
TEST(LossEvidence, ZinbHasTheLowestNll) {
  const double zinb = measured().at({LossKind::zinb, DecodeMode::mean}).nll_bits_per_row;
  for (LossKind loss : {LossKind::poisson, LossKind::nb, LossKind::hurdle})
    EXPECT_LT(zinb, measured().at({loss, DecodeMode::mean}).nll_bits_per_row - 0.5)
        << loss_name(loss);
}

// mae's optimum is the median, 0 for nearly every entry of data this sparse: it reproduces no
// non-zero (measured 0.00 % on seeds 1-4).
TEST(LossEvidence, MaePredictsZerosEverywhere) {
  EXPECT_LT(exact(LossKind::mae, DecodeMode::round), 0.01);
}

}  // namespace
}  // namespace sparseae
