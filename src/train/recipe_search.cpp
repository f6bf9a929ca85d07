#include "sparseae/recipe_search.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "core/number_text.hpp"
#include "sparseae/compare.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/metrics.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae {

std::string Recipe::describe() const {
  char delta[32] = "";
  if (loss == LossKind::huber && huber_delta > 0.0f)
    std::snprintf(delta, sizeof delta, "(%g)", static_cast<double>(huber_delta));
  return std::string(loss_name(loss)) + delta + "/" + decode_mode_name(decode) +
         (pca_anchor ? std::string(", pca anchor")
                     : std::string(", latent ") + activation_name(latent_activation)) +
         ", lr " + detail::number_text(learning_rate);
}

std::vector<Recipe> default_recipes() {
  // The decodes that reproduced the most counts exactly for each loss on the real-data sets
  // (bench/real-data/README.md): the hurdles by their mode, poisson by its mean.
  const std::pair<LossKind, DecodeMode> heads[] = {{LossKind::mse, DecodeMode::round},
                                                   {LossKind::poisson, DecodeMode::mean},
                                                   {LossKind::hurdle, DecodeMode::mode},
                                                   {LossKind::hurdle_nb, DecodeMode::mode}};
  std::vector<Recipe> recipes;
  // Started at PCA, the losses that ranked first on some real set from there (mse on prose,
  // huber(0.5) and mae on code tokens, the negative-binomial hurdle on DNA k-mers).
  const std::pair<LossKind, DecodeMode> anchored[] = {{LossKind::mse, DecodeMode::round},
                                                      {LossKind::huber, DecodeMode::round},
                                                      {LossKind::mae, DecodeMode::round},
                                                      {LossKind::hurdle_nb, DecodeMode::mode}};
  for (const auto& [loss, decode] : anchored) {
    Recipe recipe{loss, decode, Activation::identity, 1e-3f};
    recipe.pca_anchor = true;
    recipe.huber_delta = loss == LossKind::huber ? 0.5f : 0.0f;
    recipes.push_back(recipe);
  }
  for (const auto& [loss, decode] : heads)
    for (const Activation latent : {Activation::relu, Activation::identity})
      recipes.push_back({loss, decode, latent, 1e-3f});
  return recipes;
}

namespace {

// One recipe through the rounds: its configuration, and its state after the last round it ran.
struct Candidate {
  RunConfig run;
  std::optional<TrainingState> state;
  std::int64_t validation_rows = 0;  // of its Trainer's split, the same for every candidate
  int epochs = 0;                    // trained so far
  double seconds_per_epoch = 0;      // in its last round, evaluation included
};

using Clock = std::chrono::steady_clock;

// Whether the search ends with a refinement trial when candidate is its best: steps to try,
// validation rows to try them on, and codes that can be refined.
bool tries_refinement(const RecipeSearchConfig& config, const Candidate& candidate) {
  return config.refinement.steps > 0 && candidate.validation_rows > 0 &&
         can_refine_latent_codes(candidate.run.model);
}

// Predicted seconds of the refinement trial on candidate's model after the search: a refined pass
// over the validation rows takes steps decoder passes forward and back a row, each about half a
// training step's work on it (no encoder, no optimizer step), and the trial makes one pass for
// the F1 and, for a support head, one before it for the threshold.
double predicted_refinement_seconds(const RecipeSearchConfig& config, const Candidate& candidate,
                                    std::int64_t data_rows) {
  const std::int64_t training_rows = data_rows - candidate.validation_rows;
  if (!tries_refinement(config, candidate) || training_rows <= 0) return 0;
  const int passes = has_support_head(candidate.run.train.loss) ? 2 : 1;
  return passes * 0.5 * static_cast<double>(config.refinement.steps) * candidate.seconds_per_epoch *
         static_cast<double>(candidate.validation_rows) / static_cast<double>(training_rows);
}

// Trains the candidate on to epochs (from its state, if it has one), keeping its epoch with the
// best validation exact F1 of its recipe's decode, and measures that F1, the hurdle threshold
// chosen first as sae train chooses it.
void run_round(Backend& backend, const HostCsr& data, const RecipeSearchConfig& config,
               Candidate& candidate, int epochs, RecipeOutcome& outcome) {
  const auto start = Clock::now();
  const int trained_before = candidate.epochs;
  candidate.run.train.epochs = epochs;
  try {
    Trainer trainer(backend, candidate.run.model, candidate.run.train, data);
    if (candidate.state)
      trainer.restore(*candidate.state);
    else if (outcome.recipe.pca_anchor)
      config.anchor(backend, trainer);
    // Each round ends on the candidate's best epoch by the F1 it is ranked by, and the next
    // round trains on from there.
    TrainObserver observer;
    observer.validation_score =
        validation_exact_f1_score(backend, trainer, candidate.run, outcome.recipe.decode);
    trainer.train(observer);
    candidate.state = trainer.state();
    candidate.validation_rows = trainer.validation_rows();
    TrainedModel model = finished_model(backend, trainer, candidate.run);
    outcome.exact_f1 = model.evaluate(trainer.validation_counts(), outcome.recipe.decode).exact_f1;
    outcome.epochs = epochs;
  } catch (const OutOfDeviceMemory&) {
    throw;  // the next recipe would not fit either
  } catch (const Error& error) {
    // A round that fails leaves the candidate as its last good round left it (its state, F1 and
    // epochs), still ranked but trained no further; one that never trained has no F1.
    outcome.failure = error.what();
    if (!candidate.state) {
      outcome.exact_f1 = -1;
      outcome.epochs = epochs;
    }
    epochs = candidate.epochs;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  outcome.seconds += seconds;
  candidate.epochs = epochs;
  candidate.seconds_per_epoch = seconds / std::max(1, epochs - trained_before);
}

}  // namespace

RecipeSearchResult search_recipes(Backend& backend, const HostCsr& data,
                                  const RecipeSearchConfig& config,
                                  const std::function<void(const RecipeOutcome&)>& on_outcome) {
  require(!config.recipes.empty(), "recipe search: no recipes to try");
  require(config.first_epochs >= 1, "recipe search: the first round needs at least one epoch");
  require(config.train.epochs >= 1, "recipe search: epochs must be at least 1");
  const auto start = Clock::now();
  RecipeSearchResult result;
  std::vector<Candidate> candidates;
  for (const Recipe& recipe : config.recipes) {
    Candidate candidate;
    candidate.run.model = config.model;
    candidate.run.model.input_dim = data.cols;
    candidate.run.model.latent_activation = recipe.latent_activation;
    candidate.run.model.output_activation = Activation::identity;
    candidate.run.train = config.train;
    candidate.run.train.loss = recipe.loss;
    candidate.run.train.optimizer.learning_rate = recipe.learning_rate;
    if (recipe.huber_delta > 0.0f) candidate.run.train.loss_params.huber_delta = recipe.huber_delta;
    if (recipe.pca_anchor) {
      require(static_cast<bool>(config.anchor),
              "recipe search: " + recipe.describe() + " starts at PCA, and no anchor was given");
      candidate.run.model.linear_skip = true;
      candidate.run.model.latent_activation = Activation::identity;
      candidate.run.train.input_transform = InputTransform::none;
    }
    check_decode(recipe.loss, recipe.decode);
    // The decode the candidate is ranked by: the winner's checkpoint decodes as it was measured.
    candidate.run.decode = recipe.decode;
    candidates.push_back(std::move(candidate));
    RecipeOutcome outcome;
    outcome.recipe = recipe;
    result.outcomes.push_back(outcome);
  }
  std::vector<std::size_t> alive(candidates.size());
  for (std::size_t i = 0; i < alive.size(); ++i) alive[i] = i;
  int epochs = std::min(config.first_epochs, config.train.epochs);
  std::vector<std::size_t> stopped;  // a later round failed: kept as its last good round left it
  for (;;) {
    for (const std::size_t i : alive) {
      run_round(backend, data, config, candidates[i], epochs, result.outcomes[i]);
      if (on_outcome) on_outcome(result.outcomes[i]);
    }
    std::vector<std::size_t> ranked;
    for (const std::size_t i : alive)
      if (candidates[i].state) ranked.push_back(i);
    if (ranked.empty()) {
      std::string failures;
      for (const std::size_t i : alive)
        failures += "; " + result.outcomes[i].recipe.describe() + ": " + result.outcomes[i].failure;
      throw Error("recipe search: no recipe trained" + failures);
    }
    // Best first; a tie goes to the recipe listed first.
    std::stable_sort(ranked.begin(), ranked.end(), [&](std::size_t a, std::size_t b) {
      return result.outcomes[a].exact_f1 > result.outcomes[b].exact_f1;
    });
    // The better half goes on to twice the epochs; a last one left goes on alone, while the
    // epochs allow and the round, timed from each one's last epochs, would end within the budget.
    // A recipe whose round failed trains no further.
    // It stays a finalist with its last good round: the best is chosen among the last round's
    // recipes and those.
    std::vector<std::size_t> trainable;
    for (const std::size_t i : ranked)
      (result.outcomes[i].failure.empty() ? trainable : stopped).push_back(i);
    const std::size_t keep = (trainable.size() + 1) / 2;
    const int next_epochs = std::min(2 * epochs, config.train.epochs);
    // The refinement trial after the last round, predicted from the most costly finalist, is
    // kept within the budget too.
    double predicted = 0, trial = 0;
    for (std::size_t k = 0; k < keep; ++k) {
      predicted += candidates[trainable[k]].seconds_per_epoch * (next_epochs - epochs);
      trial = std::max(trial,
                       predicted_refinement_seconds(config, candidates[trainable[k]], data.rows));
    }
    predicted += trial;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (keep == 0 || next_epochs == epochs || elapsed + predicted > config.time_budget_seconds) {
      result.best = ranked.front();
      for (const std::size_t i : stopped)
        if (result.outcomes[i].exact_f1 > result.outcomes[result.best].exact_f1) result.best = i;
      break;
    }
    for (const std::size_t i : trainable)
      result.outcomes[i].eliminated =
          std::find(trainable.begin(), trainable.begin() + keep, i) == trainable.begin() + keep;
    alive.assign(trainable.begin(), trainable.begin() + keep);
    epochs = next_epochs;
  }
  result.best_run = candidates[result.best].run;
  result.best_state = *candidates[result.best].state;
  result.validation_rows = candidates[result.best].validation_rows;
  if (tries_refinement(config, candidates[result.best])) {
    const auto trial_start = Clock::now();
    RunConfig refined = result.best_run;
    refined.latent_refinement = config.refinement;
    TrainedModel model(backend, refined, result.best_state.parameters);
    const auto split = split_rows(data.rows, config.train.val_fraction, config.train.seed);
    const HostCsr validation = select_rows(data, split.second);
    // The support threshold chosen again for the refined codes, as finished_model chooses it.
    if (has_support_head(refined.train.loss)) {
      refined.hurdle_threshold = choose_hurdle_threshold(model, validation);
      model.set_hurdle_threshold(refined.hurdle_threshold);
    }
    result.refined_exact_f1 = model.evaluate(validation, *refined.decode).exact_f1;
    result.refined_seconds = std::chrono::duration<double>(Clock::now() - trial_start).count();
    if (result.refined_exact_f1 > result.outcomes[result.best].exact_f1) result.best_run = refined;
  }
  return result;
}

}  // namespace sparseae
