#include "sparseae/compare.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>

#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"

namespace sparseae {

ScaleMode comparison_scale(LossKind loss) {
  return loss == LossKind::bce ? ScaleMode::max : ScaleMode::none;
}

void validate_compare_config(const CompareConfig& config) {
  require(!config.losses.empty(), "compare: no losses to compare");
  for (std::size_t i = 0; i < config.losses.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j)
      require(config.losses[i] != config.losses[j],
              std::string("compare: the loss ") + loss_name(config.losses[i]) + " is listed twice");
    if (config.decode) check_decode(config.losses[i], *config.decode);
  }
  require(config.sample_rows >= 0, "compare: sample_rows must not be negative");
  validate_loss_params(config.train.loss_params);
  // The input width comes from the data; before it is read, any width checks the rest.
  ModelConfig model = config.model;
  if (model.input_dim <= 0) model.input_dim = 1;
  validate_penalty(model, config.train.penalty);
}

HostCsr comparison_validation_rows(const HostCsr& data, const CompareConfig& config) {
  return select_rows(data,
                     split_rows(data.rows, config.train.val_fraction, config.train.seed).second);
}

namespace {

// RunConfig::training_count_histogram of rows, summed over the ranks when sum_over_ranks is set;
// empty when a value (on any rank) is not a non-negative integer count.
std::vector<std::uint64_t> training_count_histogram(
    const HostCsr& rows, const std::function<void(std::vector<double>&)>& sum_over_ranks) {
  constexpr std::int64_t bins = kTrainingHistogramBins;
  // Doubles, as the ranks sum them (exact below 2^53 rows); the last: values that are no count.
  std::vector<double> histogram(static_cast<std::size_t>(rows.cols * bins + 1), 0.0);
  for (std::int64_t c = 0; c < rows.cols; ++c)
    histogram[static_cast<std::size_t>(c * bins)] = static_cast<double>(rows.rows);
  for (std::int64_t i = 0; i < rows.nnz(); ++i) {
    const float value = rows.values[static_cast<std::size_t>(i)];
    if (!(value >= 0.0f && value == std::floor(value))) {
      histogram.back() = 1.0;
      continue;
    }
    const std::int64_t c = rows.col_indices[static_cast<std::size_t>(i)];
    const auto bin = static_cast<std::int64_t>(std::min(value, static_cast<float>(bins - 1)));
    histogram[static_cast<std::size_t>(c * bins)] -= 1.0;
    histogram[static_cast<std::size_t>(c * bins + bin)] += 1.0;
  }
  if (sum_over_ranks) sum_over_ranks(histogram);
  if (histogram.back() != 0.0) return {};
  histogram.pop_back();
  return std::vector<std::uint64_t>(histogram.begin(), histogram.end());
}

}  // namespace

TrainedModel finished_model(Backend& backend, Trainer& trainer, RunConfig& run,
                            std::vector<ThresholdScore>* scores,
                            const std::function<void(std::vector<double>&)>& sum_over_ranks) {
  run.scale = trainer.scale();
  run.reference_library_size = trainer.reference_library_size();
  run.training_count_histogram =
      training_count_histogram(trainer.training_counts(), sum_over_ranks);
  // Counts only: values that are not bound no decode.
  run.largest_training_count =
      run.training_count_histogram.empty() ? 0.0 : trainer.largest_training_value();
  if (run.largest_training_count < 1.0) run.largest_training_count = 0.0;  // no count to bound by
  TrainedModel model(backend, run, trainer.network().parameters().download());
  if (has_support_head(run.train.loss)) {
    run.hurdle_threshold =
        choose_hurdle_threshold(model, trainer.validation_counts(), scores, sum_over_ranks);
    model.set_hurdle_threshold(run.hurdle_threshold);
  }
  return model;
}

std::function<double()> validation_exact_f1_score(Backend& backend, Trainer& trainer,
                                                  const RunConfig& run,
                                                  std::optional<DecodeMode> decode) {
  if (trainer.validation_rows() == 0) return {};
  // Each epoch is scored with the encoder's codes: refining them would cost every epoch as much
  // as the final measurement.
  RunConfig unrefined = run;
  unrefined.latent_refinement = LatentRefinement{};
  return [&backend, &trainer, scored = unrefined, decode]() mutable {
    TrainedModel model = finished_model(backend, trainer, scored);
    const HostCsr& validation = trainer.validation_counts();
    if (decode) return model.evaluate(validation, *decode).exact_f1;
    // The decode is chosen after training as the better of the two: so is the epoch.
    return measure_decodes(model, validation, std::nullopt).metrics.exact_f1;
  };
}

std::vector<ComparisonRow> compare_losses(Backend& backend, const HostCsr& data,
                                          const CompareConfig& config,
                                          const CompareObserver& observer) {
  validate_compare_config(config);
  std::vector<ComparisonRow> rows;
  for (std::size_t index = 0; index < config.losses.size(); ++index) {
    const LossKind loss = config.losses[index];
    if (observer.on_loss_start) observer.on_loss_start(loss, index, config.losses.size());
    RunConfig run;
    run.model = config.model;
    run.model.input_dim = data.cols;
    run.model.output_activation = Activation::identity;
    run.train = config.train;
    run.train.loss = loss;
    run.train.scale = comparison_scale(loss);
    // A dispersion per feature and size factors apply to the losses that have a dispersion and
    // a log-mean; the others train without them.
    if (dispersion_head(loss) < 0) run.train.loss_params.dispersion = Dispersion::entry;
    if (log_mean_head(loss) < 0) run.train.loss_params.size_factors = false;

    ComparisonRow row;
    row.loss = loss;
    row.scale = run.train.scale;
    row.decode = config.decode ? *config.decode : default_decode(loss);
    try {
      Trainer trainer(backend, run.model, run.train, data);
      TrainObserver train_observer = observer.train;
      if (config.select_by_f1)
        train_observer.validation_score =
            validation_exact_f1_score(backend, trainer, run, row.decode);
      const auto start = std::chrono::steady_clock::now();
      row.epochs = trainer.train(train_observer);
      row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::vector<double> rates;
      for (const EpochReport& r : row.epochs) rates.push_back(r.samples_per_second);
      std::sort(rates.begin(), rates.end());
      row.samples_per_second = rates.empty() ? 0.0 : rates[rates.size() / 2];
      row.validation_loss = trainer.validation_loss();

      TrainedModel model = finished_model(backend, trainer, run, &row.threshold_scores);
      row.hurdle_threshold = run.hurdle_threshold;
      const HostCsr& validation = trainer.validation_counts();
      row.metrics = model.evaluate(validation, row.decode, &row.detail);
      const std::int64_t samples = std::min(config.sample_rows, validation.rows);
      if (samples > 0) {
        std::vector<std::int64_t> first(static_cast<std::size_t>(samples));
        for (std::int64_t r = 0; r < samples; ++r) first[static_cast<std::size_t>(r)] = r;
        row.sample_counts =
            model.counts_from_outputs(model.outputs(select_rows(validation, first)), row.decode);
      }
    } catch (const OutOfDeviceMemory&) {
      throw;  // the next loss would not fit either
    } catch (const Error& error) {
      row.failure = error.what();
    }
    if (observer.on_loss_done) observer.on_loss_done(row);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace sparseae
