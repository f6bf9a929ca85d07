#include "sparseae/recipe_search.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "core/number_text.hpp"
#include "math/op_math.hpp"
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

constexpr const char* kStopped = "recipe search: stopped as asked (stop_requested)";

// Whether the search ends with a refinement trial when candidate is its best: steps to try,
// validation rows to try them on, and codes that can be refined.
bool tries_refinement(const RecipeSearchConfig& config, const Candidate& candidate) {
  return config.refinement.steps > 0 && candidate.validation_rows > 0 &&
         can_refine_latent_codes(candidate.run.model);
}

// Predicted seconds of the refinement trial on candidate's model after the search, over
// validation_rows rows: a refined pass over a row takes steps decoder passes forward and back,
// each about half a training step's work on it (no encoder, no optimizer step), and the trial
// makes one pass for the F1 and, for a support head, one before it for the threshold. The
// candidate trained on training_rows rows an epoch.
double predicted_refinement_seconds(const RecipeSearchConfig& config, const Candidate& candidate,
                                    std::int64_t training_rows, std::int64_t validation_rows) {
  if (!tries_refinement(config, candidate) || training_rows <= 0) return 0;
  const int passes = has_support_head(candidate.run.train.loss) ? 2 : 1;
  return passes * 0.5 * static_cast<double>(config.refinement.steps) * candidate.seconds_per_epoch *
         static_cast<double>(validation_rows) / static_cast<double>(training_rows);
}

// The first count of ids in a seeded shuffle, in sorted order.
std::vector<std::int64_t> draw(const std::vector<std::int64_t>& ids, std::int64_t count,
                               std::uint64_t seed) {
  std::vector<std::pair<std::uint64_t, std::int64_t>> keyed;
  keyed.reserve(ids.size());
  for (const std::int64_t id : ids)
    keyed.emplace_back(math::permutation_key(seed, static_cast<std::uint64_t>(id)), id);
  std::sort(keyed.begin(), keyed.end());
  std::vector<std::int64_t> drawn;
  for (std::int64_t k = 0; k < count; ++k)
    drawn.push_back(keyed[static_cast<std::size_t>(k)].second);
  std::sort(drawn.begin(), drawn.end());
  return drawn;
}

// Trains the candidate on to epochs (from its state, if it has one), keeping its epoch with the
// best validation exact F1 of its recipe's decode, and measures that F1, the hurdle threshold
// chosen first as sae train chooses it.
void run_round(Backend& backend, const HostCsr& train_rows, const HostCsr& validation_rows,
               const RecipeSearchConfig& config, Candidate& candidate, int epochs,
               RecipeOutcome& outcome) {
  const auto start = Clock::now();
  const int trained_before = candidate.epochs;
  candidate.run.train.epochs = epochs;
  try {
    Trainer trainer(backend, candidate.run.model, candidate.run.train, train_rows, validation_rows);
    if (candidate.state)
      trainer.restore(*candidate.state);
    else if (outcome.recipe.pca_anchor)
      config.anchor(backend, trainer);
    // Each round ends on the candidate's best epoch by the F1 it is ranked by, and the next
    // round trains on from there.
    TrainObserver observer;
    observer.validation_score =
        validation_exact_f1_score(backend, trainer, candidate.run, outcome.recipe.decode);
    observer.stop_requested = config.stop_requested;
    trainer.train(observer);
    if (trainer.interrupted()) throw RecipeSearchStopped(kStopped);
    candidate.state = trainer.state();
    candidate.validation_rows = trainer.validation_rows();
    TrainedModel model = finished_model(backend, trainer, candidate.run);
    outcome.exact_f1 = model.evaluate(trainer.validation_counts(), outcome.recipe.decode).exact_f1;
    outcome.epochs = epochs;
  } catch (const OutOfDeviceMemory&) {
    throw;  // the next recipe would not fit either
  } catch (const RecipeSearchStopped&) {
    throw;
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

// The best recipe, ranked on a sample, trained on from where the rounds left it on every row
// (training, validation: the whole data's split) for epochs epochs; the result's best_run,
// best_state and all_rows_* say what came of it. The optimizer starts afresh: the rounds'
// moments and step count belong to the sample's epochs. Training that fails leaves the model as
// the rounds left it, in a state that starts the first epoch on every row.
void train_on_every_row(Backend& backend, const HostCsr& training, const HostCsr& validation,
                        const RecipeSearchConfig& config, const Candidate& best, int epochs,
                        RecipeSearchResult& result) {
  const auto start = Clock::now();
  RunConfig run = best.run;
  run.train.epochs = epochs;
  Trainer trainer(backend, run.model, run.train, training, validation);
  TrainingState restart = trainer.state();
  restart.parameters = best.state->parameters;
  restart.best_parameters = best.state->parameters;
  trainer.restore(restart);
  if (epochs > 0) {
    try {
      TrainObserver observer;
      observer.validation_score = validation_exact_f1_score(backend, trainer, run, run.decode);
      observer.stop_requested = config.stop_requested;
      trainer.train(observer);
      if (trainer.interrupted()) throw RecipeSearchStopped(kStopped);
      result.all_rows_epochs = epochs;
    } catch (const RecipeSearchStopped&) {
      throw;
    } catch (const Error& error) {  // out of device memory too: the ranked model stays
      result.all_rows_failure = error.what();
      trainer.restore(restart);
      run.train.epochs = 0;
    }
  }
  TrainedModel model = finished_model(backend, trainer, run);
  result.all_rows_exact_f1 = model.evaluate(validation, *run.decode).exact_f1;
  result.best_run = run;
  result.best_state = trainer.state();
  result.all_rows_seconds = std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> search_sample(
    std::int64_t rows, double val_fraction, std::uint64_t seed, std::int64_t max_rows) {
  require(max_rows >= 0, "recipe search: search_rows must be 0 (every row) or positive");
  auto split = split_rows(rows, val_fraction, seed);
  if (!samples_rows(rows, max_rows)) return split;
  const auto& [training, validation] = split;
  const auto validation_count = std::clamp<std::int64_t>(
      std::llround(static_cast<double>(max_rows) * static_cast<double>(validation.size()) /
                   static_cast<double>(rows)),
      validation.empty() ? 0 : 1, static_cast<std::int64_t>(validation.size()));
  const auto training_count = std::clamp<std::int64_t>(max_rows - validation_count, 1,
                                                       static_cast<std::int64_t>(training.size()));
  return {draw(training, training_count, seed ^ 0x5A3B1E5EA5C4ull),
          draw(validation, validation_count, seed ^ 0x5A3B1E5EA5C5ull)};
}

RecipeSearchResult search_recipes(Backend& backend, const HostCsr& data,
                                  const RecipeSearchConfig& config,
                                  const std::function<void(const RecipeOutcome&)>& on_outcome) {
  require(!config.recipes.empty(), "recipe search: no recipes to try");
  require(config.first_epochs >= 1, "recipe search: the first round needs at least one epoch");
  require(config.train.epochs >= 1, "recipe search: epochs must be at least 1");
  data.validate();
  require(data.rows >= 2,
          "training needs at least 2 rows, the data has " + std::to_string(data.rows));
  const auto start = Clock::now();
  RecipeSearchResult result;
  const auto split = split_rows(data.rows, config.train.val_fraction, config.train.seed);
  const auto sample =
      search_sample(data.rows, config.train.val_fraction, config.train.seed, config.search_rows);
  const HostCsr search_training = select_rows(data, sample.first);
  const HostCsr search_validation = select_rows(data, sample.second);
  const bool sampled = samples_rows(data.rows, config.search_rows);
  require(!sampled || config.train.scale != ScaleMode::max,
          "recipe search: scale max divides by the largest count of the rows trained on, which "
          "a sample of them need not hold: search with scale none, or rank on every row "
          "(search_rows 0)");
  // Every validation row, where the refinement trial measures the model written.
  const HostCsr all_validation = sampled ? select_rows(data, split.second) : HostCsr{};
  const HostCsr& validation = sampled ? all_validation : search_validation;
  result.search_rows = search_training.rows + search_validation.rows;
  result.search_validation_rows = search_validation.rows;
  result.validation_rows = validation.rows;
  // On a sample, half the budget ranks the recipes and the other half trains the best on every
  // row, then tries refined codes on all the validation rows.
  const double rounds_budget =
      sampled ? config.time_budget_seconds / 2 : config.time_budget_seconds;
  const auto trial_seconds = [&](const Candidate& candidate) {
    return predicted_refinement_seconds(config, candidate, search_training.rows, validation.rows);
  };
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
      run_round(backend, search_training, search_validation, config, candidates[i], epochs,
                result.outcomes[i]);
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
    // kept within the budget too (on a sample, within the half after the rounds).
    double predicted = 0, trial = 0;
    for (std::size_t k = 0; k < keep; ++k) {
      predicted += candidates[trainable[k]].seconds_per_epoch * (next_epochs - epochs);
      trial = std::max(trial, trial_seconds(candidates[trainable[k]]));
    }
    if (!sampled) predicted += trial;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (keep == 0 || next_epochs == epochs || elapsed + predicted > rounds_budget) {
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
  const Candidate& best = candidates[result.best];
  double best_f1 = result.outcomes[result.best].exact_f1;
  bool trial_fits = true;
  if (sampled) {
    // What is left of the budget goes to epochs on every row and the refinement trial, one
    // epoch first where one fits: the trial's refined passes over every validation row may
    // cost more than the epochs (many rows), and then it is left out.
    const double left =
        config.time_budget_seconds - std::chrono::duration<double>(Clock::now() - start).count();
    const double epoch_seconds = best.seconds_per_epoch * static_cast<double>(split.first.size()) /
                                 static_cast<double>(search_training.rows);
    const double trial = trial_seconds(best);
    trial_fits = trial <= left - (epoch_seconds <= left ? epoch_seconds : 0.0);
    const double for_epochs = left - (trial_fits ? trial : 0.0);
    const int rounds_epochs = result.outcomes[result.best].epochs;
    const double fits = epoch_seconds > 0 ? std::floor(for_epochs / epoch_seconds) : rounds_epochs;
    const int epochs = static_cast<int>(std::clamp<double>(fits, 0, rounds_epochs));
    try {
      train_on_every_row(backend, select_rows(data, split.first), all_validation, config, best,
                         epochs, result);
    } catch (const RecipeSearchStopped&) {
      throw;
    } catch (const Error& error) {
      throw Error("recipe search: " + result.outcomes[result.best].recipe.describe() +
                  ", ranked best on a sample, on every row: " + error.what());
    }
    best_f1 = result.all_rows_exact_f1;
    if (!trial_fits && tries_refinement(config, best))
      result.refinement_skipped = "its predicted " + std::to_string(std::lround(trial)) +
                                  " s did not fit the " +
                                  std::to_string(std::lround(std::max(0.0, left))) +
                                  " s the rounds left, with an epoch on every row";
  } else {
    result.best_run = best.run;
    result.best_state = *best.state;
  }
  if (trial_fits && tries_refinement(config, best)) {
    const auto trial_start = Clock::now();
    RunConfig refined = result.best_run;
    refined.latent_refinement = config.refinement;
    TrainedModel model(backend, refined, result.best_state.parameters);
    // The support threshold chosen again for the refined codes, as finished_model chooses it.
    if (has_support_head(refined.train.loss)) {
      refined.hurdle_threshold = choose_hurdle_threshold(model, validation);
      model.set_hurdle_threshold(refined.hurdle_threshold);
    }
    result.refined_exact_f1 = model.evaluate(validation, *refined.decode).exact_f1;
    result.refined_seconds = std::chrono::duration<double>(Clock::now() - trial_start).count();
    if (result.refined_exact_f1 > best_f1) result.best_run = refined;
  }
  return result;
}

}  // namespace sparseae
