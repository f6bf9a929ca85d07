// The recipe search (sae train --auto): successive halving by validation exact-entry F1, the best
// recipe's checkpoint reproducing the F1 it was chosen by, a failing recipe recorded rather than
// ending the search, the time budget ending it after the first round, recipes started at PCA
// never ending below it, and no refinement trial for codes that cannot be refined.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/pca.hpp"
#include "sparseae/recipe_search.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"

namespace sparseae::test {
namespace {

RecipeSearchConfig small_search() {
  RecipeSearchConfig config;
  config.model.hidden = {16};
  config.model.latent = 4;
  config.train.epochs = 4;
  config.train.batch_size = 32;
  config.train.val_fraction = 0.2;
  config.first_epochs = 1;
  config.recipes = {{LossKind::mse, DecodeMode::round, Activation::relu, 1e-3f},
                    {LossKind::mse, DecodeMode::round, Activation::identity, 3e-3f},
                    {LossKind::hurdle, DecodeMode::mode, Activation::relu, 3e-3f},
                    {LossKind::poisson, DecodeMode::mean, Activation::identity, 3e-3f}};
  return config;
}

// The F1 the search's model has on its validation rows: with refined codes where the search
// kept them (they beat the best round's F1, refined_exact_f1), else the best round's own.
double chosen_f1(const RecipeSearchResult& result, double best_f1) {
  EXPECT_GE(result.refined_exact_f1, 0.0) << "the default search tries refined codes";
  const bool kept = result.best_run.latent_refinement.steps > 0;
  EXPECT_EQ(kept, result.refined_exact_f1 > best_f1);
  return kept ? result.refined_exact_f1 : best_f1;
}

// A search that made no refinement trial: no refined F1, and a model stored without refinement.
void expect_no_refinement_trial(const RecipeSearchResult& result) {
  EXPECT_EQ(result.refined_exact_f1, -1.0);
  EXPECT_EQ(result.best_run.latent_refinement.steps, 0);
}

// Four recipes: all train 1 epoch, the better two 2 epochs, the better of those 4; the best is
// the best of the last round, and its checkpoint, evaluated afresh, gives the F1 it won by.
TEST(RecipeSearch, HalvesByExactF1AndKeepsTheBestModel) {
  const HostCsr data = narrow_topic_counts(600, 3);
  const auto backend = make_backend(BackendChoice::cpu);
  const RecipeSearchConfig config = small_search();
  std::vector<int> rounds;
  const RecipeSearchResult result =
      search_recipes(*backend, data, config,
                     [&](const RecipeOutcome& outcome) { rounds.push_back(outcome.epochs); });
  EXPECT_EQ(rounds, (std::vector<int>{1, 1, 1, 1, 2, 2, 4}));
  ASSERT_EQ(result.outcomes.size(), 4u);
  const RecipeOutcome& best = result.outcomes[result.best];
  EXPECT_EQ(best.epochs, 4);
  EXPECT_FALSE(best.eliminated);
  std::vector<int> epochs;
  for (const RecipeOutcome& outcome : result.outcomes) {
    EXPECT_TRUE(outcome.failure.empty()) << outcome.failure;
    EXPECT_GE(outcome.exact_f1, 0.0);
    epochs.push_back(outcome.epochs);
    // A recipe left out after a round lost to one that went on from that round.
    if (outcome.epochs < 4) {
      EXPECT_TRUE(outcome.eliminated) << outcome.recipe.describe();
    }
  }
  std::sort(epochs.begin(), epochs.end());
  EXPECT_EQ(epochs, (std::vector<int>{1, 1, 2, 4}));
  EXPECT_EQ(result.validation_rows, 120);

  // The best recipe's configuration and parameters are a model with the F1 it was chosen by.
  EXPECT_EQ(result.best_run.train.loss, best.recipe.loss);
  EXPECT_EQ(result.best_run.model.latent_activation, best.recipe.latent_activation);
  EXPECT_EQ(result.best_run.train.optimizer.learning_rate, best.recipe.learning_rate);
  EXPECT_EQ(result.best_state.epoch, 4);
  TrainedModel model(*backend, result.best_run, result.best_state.parameters);
  const auto split = split_rows(data.rows, config.train.val_fraction, config.train.seed);
  EXPECT_DOUBLE_EQ(model.evaluate(select_rows(data, split.second), best.recipe.decode).exact_f1,
                   chosen_f1(result, best.exact_f1));
  // 0 refinement steps: none tried, the model as trained.
  RecipeSearchConfig unrefined = config;
  unrefined.refinement.steps = 0;
  expect_no_refinement_trial(search_recipes(*backend, data, unrefined));
}

// TopK codes cannot be refined (can_refine_latent_codes): the search leaves the trial out rather
// than failing after its rounds.
TEST(RecipeSearch, CodesThatCannotBeRefinedSkipTheTrial) {
  const HostCsr data = narrow_topic_counts(300, 5);
  const auto backend = make_backend(BackendChoice::cpu);
  RecipeSearchConfig config = small_search();
  config.model.latent_sparsity = LatentSparsity::topk;
  config.model.latent_k = 2;
  config.train.epochs = 1;
  config.recipes = {{LossKind::mse, DecodeMode::round, Activation::relu, 1e-3f}};
  ASSERT_FALSE(can_refine_latent_codes(config.model));
  ASSERT_GT(config.refinement.steps, 0);
  const RecipeSearchResult result = search_recipes(*backend, data, config);
  EXPECT_TRUE(result.outcomes[0].failure.empty()) << result.outcomes[0].failure;
  expect_no_refinement_trial(result);
}

// The refinement trial's predicted time counts in the budget. Under a budget of 30 epochs' time
// (timed from the same search without a trial), a search without a trial goes on to its last
// round, and one whose 2000-step trial is predicted at about 250 epochs' time (half a training
// step a refinement step, over a fifth of the rows) stops after its first: margins of about 8x
// either way, so machine speed does not decide it.
TEST(RecipeSearch, TheRefinementTrialsPredictedTimeCountsInTheBudget) {
  const HostCsr data = narrow_topic_counts(300, 7);
  const auto backend = make_backend(BackendChoice::cpu);
  RecipeSearchConfig config = small_search();
  config.recipes.resize(1);
  config.refinement.steps = 0;
  const RecipeOutcome timed = search_recipes(*backend, data, config).outcomes[0];
  ASSERT_EQ(timed.epochs, 4);
  config.time_budget_seconds = 30 * timed.seconds / timed.epochs;
  EXPECT_EQ(search_recipes(*backend, data, config).outcomes[0].epochs, 4)
      << "without a trial the budget allows every round";
  config.refinement.steps = 2000;
  const RecipeSearchResult tried = search_recipes(*backend, data, config);
  EXPECT_EQ(tried.outcomes[0].epochs, 1) << "the trial's predicted time leaves no second round";
  EXPECT_GE(tried.refined_exact_f1, 0.0) << "the trial itself runs";
  EXPECT_GT(tried.refined_seconds, 0.0);
}

// The sample that ranks recipes on more rows than search_rows: a seeded share of each part of
// the whole data's split, so that no row it trains on is held out by the whole split.
TEST(RecipeSearch, TheSampleDrawsFromEachPartOfTheSplit) {
  const auto split = split_rows(1000, 0.2, 7);
  const auto sample = search_sample(1000, 0.2, 7, 300);
  EXPECT_EQ(sample.first.size(), 240u);
  EXPECT_EQ(sample.second.size(), 60u);
  for (const auto& [part, whole] :
       {std::pair{&sample.first, &split.first}, std::pair{&sample.second, &split.second}}) {
    EXPECT_TRUE(std::is_sorted(part->begin(), part->end()));
    EXPECT_TRUE(std::includes(whole->begin(), whole->end(), part->begin(), part->end()));
  }
  EXPECT_EQ(search_sample(1000, 0.2, 7, 300), sample) << "seeded: drawn alike every time";
  EXPECT_NE(search_sample(1000, 0.2, 8, 300).first, sample.first);
  EXPECT_EQ(search_sample(1000, 0.2, 7, 0), split) << "0: every row";
  EXPECT_EQ(search_sample(1000, 0.2, 7, 1000), split);
  // max_rows in all, the validation part's share as the split's: 5 of 1000 at 10 %.
  const auto few = search_sample(1000, 0.1, 7, 5);
  EXPECT_EQ(few.first.size() + few.second.size(), 5u);
  EXPECT_EQ(few.second.size(), 1u);
  // A part with rows keeps at least one.
  EXPECT_EQ(search_sample(1000, 0.001, 7, 10).second.size(), 1u);
  EXPECT_EQ(search_sample(1000, 0.0, 7, 10).second.size(), 0u);
  EXPECT_NE(error_message([] { search_sample(1000, 0.2, 7, -1); }).find("search_rows"),
            std::string::npos);
}

// On more rows than search_rows, the rounds rank the recipes on a sample (their F1 measured on
// its validation rows), and the best then trains on every row: its state counts the epochs and
// steps of the whole split's training rows, and its checkpoint, evaluated on all the validation
// rows, gives the F1 the search reports.
TEST(RecipeSearch, RanksOnASampleAndTrainsTheBestOnEveryRow) {
  const HostCsr data = narrow_topic_counts(600, 3);
  const auto backend = make_backend(BackendChoice::cpu);
  RecipeSearchConfig config = small_search();
  config.refinement.steps = 0;
  config.search_rows = 200;
  const RecipeSearchResult result = search_recipes(*backend, data, config);
  EXPECT_EQ(result.search_rows, 200);
  EXPECT_EQ(result.search_validation_rows, 40);
  EXPECT_EQ(result.validation_rows, 120);
  const RecipeOutcome& best = result.outcomes[result.best];
  EXPECT_EQ(best.epochs, 4);
  EXPECT_EQ(result.all_rows_epochs, 4) << "the budget allows as many epochs as the rounds trained";
  EXPECT_TRUE(result.all_rows_failure.empty()) << result.all_rows_failure;
  EXPECT_EQ(result.best_state.epoch, 4);
  EXPECT_EQ(result.best_state.step, 4 * 15) << "15 batches of 32 of the 480 training rows";
  const auto split = split_rows(data.rows, config.train.val_fraction, config.train.seed);
  const HostCsr validation = select_rows(data, split.second);
  TrainedModel model(*backend, result.best_run, result.best_state.parameters);
  EXPECT_DOUBLE_EQ(model.evaluate(validation, best.recipe.decode).exact_f1,
                   result.all_rows_exact_f1);
  EXPECT_GT(result.all_rows_seconds, 0.0);

  // No time left for an epoch of every row: the model as the rounds left it, measured on all the
  // validation rows, in a state that starts every row's first epoch (resumable on the data).
  config.time_budget_seconds = 1e-9;
  const RecipeSearchResult hurried = search_recipes(*backend, data, config);
  EXPECT_EQ(hurried.all_rows_epochs, 0);
  EXPECT_EQ(hurried.best_state.epoch, 0);
  EXPECT_EQ(hurried.best_state.step, 0);
  TrainedModel sampled(*backend, hurried.best_run, hurried.best_state.parameters);
  EXPECT_DOUBLE_EQ(
      sampled.evaluate(validation, hurried.outcomes[hurried.best].recipe.decode).exact_f1,
      hurried.all_rows_exact_f1);

  // A refinement trial predicted past what the rounds left is not run: the time goes to the
  // epochs on every row. The budget is 8 times this search's own time without a trial (about 24
  // recipe-epochs of the sample's), and a 10 000-step trial is predicted at about 3 750 epochs:
  // a margin of about 20x.
  config.time_budget_seconds = 600;
  const auto timed_start = std::chrono::steady_clock::now();
  search_recipes(*backend, data, config);
  config.time_budget_seconds =
      8 * std::chrono::duration<double>(std::chrono::steady_clock::now() - timed_start).count();
  config.refinement.steps = 10000;
  const RecipeSearchResult untried = search_recipes(*backend, data, config);
  EXPECT_EQ(untried.refined_exact_f1, -1.0);
  EXPECT_NE(untried.refinement_skipped.find("did not fit"), std::string::npos)
      << untried.refinement_skipped;
  EXPECT_EQ(untried.all_rows_epochs, 4);
  EXPECT_EQ(untried.best_run.latent_refinement.steps, 0);
  config.refinement.steps = 0;

  // scale max divides by the largest count of the rows trained on: refused on a sample.
  RecipeSearchConfig scaled = config;
  scaled.train.scale = ScaleMode::max;
  EXPECT_NE(error_message([&] {
              search_recipes(*backend, data, scaled);
            }).find("recipe search: scale max divides by the largest count"),
            std::string::npos);

  // As many rows as the data has or more: no sample, and nothing after the rounds.
  config.search_rows = 600;
  const RecipeSearchResult whole = search_recipes(*backend, data, config);
  EXPECT_EQ(whole.search_rows, 600);
  EXPECT_EQ(whole.all_rows_exact_f1, -1.0);
  EXPECT_EQ(whole.all_rows_epochs, 0);
}

// A recipe whose training fails (a learning rate that blows it up) is recorded with its reason
// and left out; the others go on. A budget already spent ends the search after the first round.
TEST(RecipeSearch, AFailingRecipeIsRecordedAndTheBudgetEndsTheSearch) {
  const HostCsr data = narrow_topic_counts(600, 4);
  const auto backend = make_backend(BackendChoice::cpu);
  RecipeSearchConfig config = small_search();
  config.recipes.push_back({LossKind::poisson, DecodeMode::mean, Activation::identity, 1e6f});
  config.time_budget_seconds = 1e-9;
  const RecipeSearchResult result = search_recipes(*backend, data, config);
  ASSERT_EQ(result.outcomes.size(), 5u);
  const RecipeOutcome& blown = result.outcomes.back();
  EXPECT_EQ(blown.exact_f1, -1.0);
  EXPECT_NE(blown.failure.find("training diverged"), std::string::npos) << blown.failure;
  for (const RecipeOutcome& outcome : result.outcomes) EXPECT_EQ(outcome.epochs, 1);
  EXPECT_TRUE(result.outcomes[result.best].failure.empty());

  config.recipes = {config.recipes.back()};
  const std::string message = error_message([&] { search_recipes(*backend, data, config); });
  EXPECT_NE(message.find("recipe search: no recipe trained; poisson/mean, latent identity, lr "
                         "1e+06: training diverged"),
            std::string::npos)
      << message;
}

// The last recipe left goes on doubling its epochs alone, up to the epochs allowed.
TEST(RecipeSearch, TheLastRecipeLeftTrainsOnToTheEpochsAllowed) {
  const HostCsr data = narrow_topic_counts(300, 6);
  const auto backend = make_backend(BackendChoice::cpu);
  RecipeSearchConfig config = small_search();
  config.recipes.resize(1);
  config.train.epochs = 6;
  std::vector<int> rounds;
  const RecipeSearchResult result =
      search_recipes(*backend, data, config,
                     [&](const RecipeOutcome& outcome) { rounds.push_back(outcome.epochs); });
  EXPECT_EQ(rounds, (std::vector<int>{1, 2, 4, 6}));
  EXPECT_EQ(result.best_state.epoch, 6);
}

// A recipe whose later round fails (here a learning rate that the first epoch survives and the
// second blows up) is not lost: it stays as its last good round left it, and can still win.
TEST(RecipeSearch, ARecipeWhoseLaterRoundFailsKeepsItsLastGoodRound) {
  const HostCsr data = narrow_topic_counts(600, 3);
  const auto backend = make_backend(BackendChoice::cpu);
  RecipeSearchConfig config = small_search();
  config.recipes = {{LossKind::poisson, DecodeMode::mean, Activation::identity, 3.0f}};
  std::vector<int> rounds;
  const RecipeSearchResult result =
      search_recipes(*backend, data, config,
                     [&](const RecipeOutcome& outcome) { rounds.push_back(outcome.epochs); });
  EXPECT_EQ(rounds, (std::vector<int>{1, 1}));
  const RecipeOutcome& outcome = result.outcomes.front();
  EXPECT_NE(outcome.failure.find("training diverged"), std::string::npos) << outcome.failure;
  EXPECT_EQ(outcome.epochs, 1);
  EXPECT_GE(outcome.exact_f1, 0.0);
  EXPECT_EQ(result.best, 0u);
  EXPECT_EQ(result.best_state.epoch, 1);
  TrainedModel model(*backend, result.best_run, result.best_state.parameters);
  const auto split = split_rows(data.rows, config.train.val_fraction, config.train.seed);
  EXPECT_DOUBLE_EQ(model.evaluate(select_rows(data, split.second), DecodeMode::mean).exact_f1,
                   chosen_f1(result, outcome.exact_f1));
}

// Recipes started at PCA: each one's first round starts from the PCA baseline itself and keeps
// its best validation F1 from the start on, so the search never ends below the baseline (on the
// validation rows both are measured on). The anchor is required.
TEST(RecipeSearch, RecipesStartedAtPcaNeverEndBelowTheBaseline) {
  const HostCsr data = narrow_topic_counts(600, 5);
  const auto backend = make_backend(BackendChoice::cpu);
  RecipeSearchConfig config = small_search();
  config.recipes.clear();
  for (const LossKind loss : {LossKind::mse, LossKind::huber}) {
    Recipe recipe{loss, DecodeMode::round, Activation::relu, 3e-2f};
    recipe.pca_anchor = true;
    recipe.huber_delta = loss == LossKind::huber ? 0.5f : 0.0f;
    config.recipes.push_back(recipe);
  }
  config.train.input_transform = InputTransform::log1p;  // anchored recipes read raw counts
  EXPECT_NE(error_message([&] {
              search_recipes(*backend, data, config);
            }).find("starts at PCA, and no anchor was given"),
            std::string::npos);

  int anchored = 0;
  config.anchor = [&](Backend& on, Trainer& trainer) {
    ++anchored;
    anchor_at_pca(on, trainer);
  };
  const RecipeSearchResult result = search_recipes(*backend, data, config);
  EXPECT_EQ(anchored, 2);  // once each, before its first round only
  const ComparisonRow pca = pca_baseline(*backend, data, config.model.latent,
                                         config.train.val_fraction, config.train.seed);
  const RecipeOutcome& best = result.outcomes[result.best];
  EXPECT_EQ(best.recipe.describe().find("pca anchor") != std::string::npos, true);
  // Float rounding of the same PCA may move an entry sitting on a half by one count.
  EXPECT_GE(best.exact_f1, pca.metrics.exact_f1 - 2e-3) << best.recipe.describe();
  EXPECT_TRUE(result.best_run.model.linear_skip);
  EXPECT_EQ(result.best_run.model.latent_activation, Activation::identity);
  EXPECT_EQ(result.best_run.train.input_transform, InputTransform::none);
  EXPECT_EQ(result.outcomes[1].recipe.describe(), "huber(0.5)/round, pca anchor, lr 0.03");
  if (result.best == 1) {
    EXPECT_EQ(result.best_run.train.loss_params.huber_delta, 0.5f);
  }
}

}  // namespace
}  // namespace sparseae::test
