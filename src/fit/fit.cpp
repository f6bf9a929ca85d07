// fit: training in one call (fit.hpp).
#include "sparseae/fit.hpp"

#include <string>
#include <utility>

#include "sparseae/compare.hpp"
#include "sparseae/error.hpp"

namespace sparseae {

namespace {

// The run's configuration before training: the options with the data's width.
RunConfig planned_run(std::int64_t data_cols, const FitOptions& options) {
  RunConfig run;
  run.model = options.model;
  require(run.model.input_dim == 0 || run.model.input_dim == data_cols,
          "fit: the model's input_dim is " + std::to_string(run.model.input_dim) +
              ", the data has " + std::to_string(data_cols) + " columns (0 takes the data's)");
  run.model.input_dim = data_cols;
  run.train = options.train;
  run.latent_refinement = options.latent_refinement;
  validate_latent_refinement(run.latent_refinement, "fit: latent_refinement");
  check_latent_refinement(run.model, run.latent_refinement);
  // sae train's checks of the loss against the rest: each would train without an error and
  // decode wrong counts.
  const LossKind loss = run.train.loss;
  const std::string named = std::string("fit: the loss ") + loss_name(loss);
  require(loss != LossKind::bce || run.train.scale == ScaleMode::max,
          named + " needs targets in [0, 1]: set train.scale to ScaleMode::max");
  require(!has_count_likelihood(loss) || run.train.scale == ScaleMode::none,
          named +
              " models the counts themselves, which must stay integers: set train.scale to "
              "ScaleMode::none");
  require((loss != LossKind::bce && !has_count_likelihood(loss)) ||
              run.model.output_activation == Activation::identity,
          named + " reads logits or log-rates: its output activation must be identity");
  if (options.decode) check_decode(run.train.loss, *options.decode);
  run.decode = options.decode;
  run.data_source = options.data_source;
  return run;
}

// The epoch whose parameters training left: the last that became the best, else the start (0,
// or -1 for a resumed trainer, whose best came before); without validation rows (nothing
// selected) the last.
int kept_epoch(const std::vector<EpochReport>& epochs, bool selected, bool resumed) {
  if (!selected) return epochs.empty() ? 0 : epochs.back().epoch;
  for (auto e = epochs.rbegin(); e != epochs.rend(); ++e)
    if (e->best) return e->epoch;
  return resumed ? -1 : 0;
}

}  // namespace

FitResult fit(Backend& backend, const HostCsr& data, const FitOptions& options) {
  data.validate();
  RunConfig run = planned_run(data.cols, options);
  Trainer trainer(backend, run.model, run.train, data);
  return fit(backend, trainer, run, options);
}

FitResult fit(Backend& backend, const HostCsr& train_rows, const HostCsr& validation_rows,
              const FitOptions& options) {
  RunConfig run = planned_run(train_rows.cols, options);
  Trainer trainer(backend, run.model, run.train, train_rows, validation_rows);
  return fit(backend, trainer, run, options);
}

FitResult fit(Backend& backend, Trainer& trainer, RunConfig& run, const FitOptions& options,
              const FitSteps& steps) {
  FitResult result;
  // Before the first step, for the checkpoints the observer saves of run while training.
  run.scale = trainer.scale();
  run.reference_library_size = trainer.reference_library_size();
  if (run.model.linear_skip && !steps.resumed) {
    result.anchor = anchor_at_pca(backend, trainer);
    if (steps.on_anchor) steps.on_anchor(*result.anchor);
  }
  TrainObserver observer = options.observer;
  if (options.select_by_f1)
    observer.validation_score = validation_exact_f1_score(backend, trainer, run, options.decode);
  result.epochs = trainer.train(observer);
  result.interrupted = trainer.interrupted();
  if (result.interrupted) {
    result.state = trainer.state();
    result.run = run;
    return result;
  }
  // train() leaves the best parameters when it selects by score; by loss, they are asked for.
  const bool selected = trainer.validation_rows() > 0;
  if (selected && !options.select_by_f1) trainer.keep_best_parameters();
  result.state = trainer.state();
  result.kept_epoch = kept_epoch(result.epochs, selected, steps.resumed);
  result.validation_loss = trainer.validation_loss();

  TrainedModel model =
      finished_model(backend, trainer, run, steps.threshold_scores, steps.sum_over_ranks);
  // As sae train decides: the asked decode, else the better of the default and its alternative.
  DecodeMeasurement measured = measure_decodes(model, trainer.validation_counts(), options.decode,
                                               steps.decode_detail, steps.sum_over_ranks);
  run.decode = measured.decode;
  result.validation = std::move(measured.metrics);
  if (measured.other) {
    result.other_decode = measured.other;
    result.other_decode_f1 = measured.other_f1;
  }
  result.run = run;
  return result;
}

}  // namespace sparseae
