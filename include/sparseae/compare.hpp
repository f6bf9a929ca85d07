#pragma once
// Several losses trained on the same data and the same split, with the same model widths,
// optimizer and seed, and measured the same way: one row of metrics per loss.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/metrics.hpp"
#include "sparseae/model.hpp"
#include "sparseae/ops.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae {

// The scale a loss trains at in a comparison: max for bce (its targets must lie in [0, 1]),
// none for every other loss (count likelihoods model the counts themselves).
ScaleMode comparison_scale(LossKind loss);

struct CompareConfig {
  // The model every loss trains; input_dim is taken from the data and output_activation is
  // identity for every loss (bce outputs logits, poisson log-rates).
  ModelConfig model;
  // Epochs, batch, validation fraction, seed, optimizer, ...; loss and scale are set per loss
  // (scale: comparison_scale).
  TrainConfig train;
  std::vector<LossKind> losses;      // in the order the rows come back; no loss twice
  std::optional<DecodeMode> decode;  // for every loss; default: default_decode of each
  // How many validation rows to keep decoded in ComparisonRow::sample_counts (for pictures).
  std::int64_t sample_rows = 0;
  // Each loss keeps its epoch (or start) with the best validation exact F1 by its row's decode
  // (validation_exact_f1_score); false: the parameters its training ends with.
  bool select_by_f1 = true;
};

struct ComparisonRow {
  // The PCA baseline (pca_baseline, pca.hpp) rather than a trained loss: loss is then mse, the
  // decode round, and epochs empty.
  bool pca = false;
  LossKind loss = LossKind::mse;
  ScaleMode scale = ScaleMode::none;
  DecodeMode decode = DecodeMode::round;
  std::vector<EpochReport> epochs;  // train and validation loss per epoch
  double validation_loss = 0;       // in the loss's own units: not comparable across losses
  ReconstructionMetrics metrics;    // on the validation rows, raw counts
  ReconstructionDetail detail;      // of the same decoded counts
  double seconds = 0;               // training time, all epochs
  double samples_per_second = 0;    // median over the epochs
  HostCsr sample_counts;            // the first sample_rows validation rows, decoded
  // hurdle: the support threshold of its mode decode, chosen on the validation rows
  // (choose_hurdle_threshold) and used for metrics and sample_counts; the default otherwise.
  double hurdle_threshold = kDefaultHurdleThreshold;
  // hurdle: the validation exact F1, precision and recall at each threshold of that choice's
  // grid; empty otherwise.
  std::vector<ThresholdScore> threshold_scores;
  // Why the loss did not train (its Trainer's error, "training diverged: ..."), or empty. A
  // failed loss has no metrics; the comparison goes on with the next one.
  std::string failure;
};

struct CompareObserver {
  std::function<void(LossKind loss, std::size_t index, std::size_t count)> on_loss_start;
  TrainObserver train;  // passed to each loss's Trainer
  std::function<void(const ComparisonRow&)> on_loss_done;
};

// Throws Error, before training anything, when the losses are empty or repeat, when decode
// cannot decode some loss (check_decode), or when a loss's parameters or the penalty are invalid.
void validate_compare_config(const CompareConfig& config);

// Trains config.losses one after another on data (raw counts), each keeping the parameters
// config.select_by_f1 says, and measures each on the same validation rows (the split depends only
// on the row count, val_fraction and seed).
std::vector<ComparisonRow> compare_losses(Backend& backend, const HostCsr& data,
                                          const CompareConfig& config,
                                          const CompareObserver& observer = {});

// The model trainer's current parameters make, finished as every run finishes it (sae train,
// fit, compare_losses, search_recipes, validation_exact_f1_score): run's scale and reference
// library size set to the trainer's, the training rows' count histogram (for lossless mode's
// order-0 code) and, for a loss with a support head, its hurdle threshold
// chosen on the trainer's validation rows (choose_hurdle_threshold) and set in run and in the
// model. A decode would otherwise read the outputs at another scale or threshold than the counts
// were measured at, with no error. scores, when not null, gets the threshold curve;
// sum_over_ranks, when set, sums the choice's counts over the ranks that hold the validation rows.
TrainedModel finished_model(Backend& backend, Trainer& trainer, RunConfig& run,
                            std::vector<ThresholdScore>* scores = nullptr,
                            const std::function<void(std::vector<double>&)>& sum_over_ranks = {});

// A TrainObserver::validation_score that keeps the epoch with the best validation exact F1: the
// exact F1 on trainer's validation rows of its current parameters as the model of run (with
// trainer's scale and reference library size), decoded by decode (none: the better of the loss's
// default decode and its alternative_decode, the two sae train chooses between), a hurdle loss's
// support threshold chosen on those rows first as sae train chooses the one it stores. Empty when
// trainer has no validation rows, which leaves the selection to the validation loss.
std::function<double()> validation_exact_f1_score(Backend& backend, Trainer& trainer,
                                                  const RunConfig& run,
                                                  std::optional<DecodeMode> decode);

// The validation rows compare_losses measures on, in raw counts and in its order.
HostCsr comparison_validation_rows(const HostCsr& data, const CompareConfig& config);

}  // namespace sparseae
