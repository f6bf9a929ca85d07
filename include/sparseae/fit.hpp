#pragma once
// Training in one call: every step sae train takes between the counts and a model that decodes
// them as its validation measured (the trainer, the scale and reference library size, the PCA
// anchor, the epoch kept by validation exact F1, the hurdle threshold, the decode), so that a
// program cannot leave one out and get other counts than the headline promised.
//
//   sparseae::FitOptions options;
//   options.model.hidden = {128};
//   options.model.latent = 16;
//   options.train.loss = sparseae::LossKind::hurdle;
//   const sparseae::FitResult result = sparseae::fit(*backend, rows, options);
//   sparseae::TrainedModel model = result.model(*backend);  // decodes by result.run.decode
//   sparseae::save_checkpoint("model.ckpt", result.checkpoint());
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
#include "sparseae/pca.hpp"
#include "sparseae/train_config.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae {

struct FitOptions {
  // The model; input_dim 0 takes the data's width (any other must equal it). linear_skip starts
  // it at PCA of the training rows (anchor_at_pca).
  ModelConfig model;
  // Loss, scale, epochs, batch, optimizer, seed, ...; val_fraction splits the rows of the
  // one-matrix fit (the fit given validation rows uses them instead).
  TrainConfig train;
  // How the model's outputs become counts: none chooses, on the validation rows, the better by
  // exact F1 of the loss's default decode and its alternative_decode (the default on a tie).
  std::optional<DecodeMode> decode;
  // Keep the epoch (or the start) with the best validation exact F1 by that decode; false: the
  // lowest validation loss. Without validation rows, the last epoch either way.
  bool select_by_f1 = true;
  // Progress and stopping (TrainObserver); its validation_score is fit's own when select_by_f1.
  TrainObserver observer;
  // Recorded as RunConfig::data_source, for sae eval to find the rows again; may stay empty.
  std::string data_source;
  // How the fitted model refines its codes (RunConfig::latent_refinement), in its final
  // measurement and wherever it is used; none by default.
  LatentRefinement latent_refinement;
};

struct FitResult {
  // The model's resolved configuration: scale, reference library size, hurdle threshold and the
  // decode all set; with state, what a checkpoint holds.
  RunConfig run;
  // The trained state; state.parameters are the kept epoch's.
  TrainingState state;
  std::vector<EpochReport> epochs;  // one per epoch trained
  // The epoch whose parameters state holds: the best by the selection (0: the start, when no
  // epoch beat it; -1: a resumed trainer's best, from before this fit's epochs); without
  // validation rows, the last.
  int kept_epoch = 0;
  double validation_loss = 0;  // of the kept parameters, in the loss's own units
  // The validation rows, in raw counts, decoded by run.decode: the model's headline.
  ReconstructionMetrics validation;
  // The decode that was not chosen (or not asked for) and its validation exact F1; none when the
  // loss has one decode only or there are no validation rows.
  std::optional<DecodeMode> other_decode;
  double other_decode_f1 = 0;
  // ModelConfig::linear_skip: the PCA the model started at (none for a resumed trainer).
  std::optional<PcaModel> anchor;
  // observer.stop_requested ended training: state is where it stopped (sae train --resume of
  // its checkpoint goes on from there), and nothing after training ran (run keeps the default
  // hurdle threshold and the asked decode, validation is empty).
  bool interrupted = false;

  // The trained model, decoding as measured.
  TrainedModel model(Backend& backend) const {
    return TrainedModel(backend, run, state.parameters);
  }
  Checkpoint checkpoint() const { return {run, state}; }
};

// Trains a model on data (raw counts), split into training and validation rows by
// options.train.val_fraction and seed as sae train splits them. Throws Error, before training,
// when the options do not fit the data or each other (an input_dim other than the data's, a
// decode the loss cannot give, ...), and as Trainer::train does when training fails.
FitResult fit(Backend& backend, const HostCsr& data, const FitOptions& options);
// The same with the caller's own split: trains on train_rows, measures and selects on
// validation_rows (raw counts, the same width; options.train.val_fraction unused).
FitResult fit(Backend& backend, const HostCsr& train_rows, const HostCsr& validation_rows,
              const FitOptions& options);

// What fit on a Trainer the caller built takes and gives besides FitOptions and FitResult.
struct FitSteps {
  // The trainer was restored from a checkpoint (Trainer::restore): it is not anchored at PCA
  // again, and the best epoch it kept may be from before this fit (FitResult::kept_epoch -1).
  bool resumed = false;
  // Called with the PCA a linear_skip model starts at, before its first step.
  std::function<void(const PcaModel&)> on_anchor;
  // When not null: the hurdle threshold curve (choose_hurdle_threshold's scores), and the chosen
  // decode's per-column and per-row detail on the validation rows.
  std::vector<ThresholdScore>* threshold_scores = nullptr;
  ReconstructionDetail* decode_detail = nullptr;
  // Set when the trainer holds one rank's share of the rows (data-parallel training): sums each
  // measurement's counts over the ranks (a collective every rank calls in the same order), so
  // that every rank chooses and reports what one process would on all the rows. No detail then.
  std::function<void(std::vector<double>&)> sum_over_ranks;
};
// fit's steps on a trainer the caller built from run.model and run.train (rows read dense, a run
// resumed from its checkpoint, one rank's rows: sae train), with run checked as the caller
// checked it (options.model, options.train and options.data_source are unused). run is completed
// in place: its scale and reference library size before the first step (so that the checkpoints
// options.observer saves of it decode right), its hurdle threshold and decode after training.
FitResult fit(Backend& backend, Trainer& trainer, RunConfig& run, const FitOptions& options,
              const FitSteps& steps = {});

}  // namespace sparseae
