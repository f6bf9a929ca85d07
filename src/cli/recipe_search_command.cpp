#include "cli/recipe_search_command.hpp"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/data_source.hpp"
#include "cli/report.hpp"
#include "core/json.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/pca.hpp"
#include "sparseae/recipe_search.hpp"

namespace sparseae::cli {

namespace {

// What --auto chooses itself, and what it cannot be combined with.
constexpr const char* kChosenByAuto[] = {"loss", "decode", "latent-act", "lr", "resume"};

Json outcome_json(const RecipeOutcome& outcome) {
  Json json = Json::object();
  json.set("loss", Json::string(loss_name(outcome.recipe.loss)))
      .set("decode", Json::string(decode_mode_name(outcome.recipe.decode)))
      .set("latent_activation", Json::string(activation_name(outcome.recipe.latent_activation)))
      .set("learning_rate", Json::number_significant(outcome.recipe.learning_rate, 6))
      .set("pca_anchor", Json::boolean(outcome.recipe.pca_anchor))
      .set("epochs", Json::integer(outcome.epochs))
      .set("exact_f1", outcome.exact_f1 >= 0 ? Json::number_fixed(outcome.exact_f1, 6) : Json())
      .set("seconds", Json::number_significant(outcome.seconds, 6))
      .set("eliminated", Json::boolean(outcome.eliminated));
  if (outcome.recipe.huber_delta > 0.0f)
    json.set("huber_delta", Json::number_significant(outcome.recipe.huber_delta, 6));
  if (!outcome.failure.empty()) json.set("failure", Json::string(outcome.failure));
  return json;
}

}  // namespace

RecipeSearchConfig recipe_search_config(const Options& o, const RunConfig& base) {
  for (const char* name : kChosenByAuto)
    require(!o.given(name),
            std::string("sae train: --auto chooses --") + name +
                (std::string(name) == "resume" ? " (a search starts afresh)" : "; drop it"));
  // Refinement asked for by name must apply; the default trial is left out where it cannot.
  if (o.given("refine-steps")) check_latent_refinement(base.model, base.latent_refinement);
  const double budget = o.real("auto-budget");
  require(budget > 0.0, "sae train: --auto-budget must be a positive number of seconds");
  const std::int64_t search_rows = o.integer("auto-rows");
  require(search_rows >= 0, "sae train: --auto-rows must be 0 (every row) or a number of rows");

  RecipeSearchConfig config;
  config.model = base.model;
  config.train = base.train;
  // The budget, not a count of epochs, ends a search unless --epochs says otherwise: the last
  // recipe left trains on while its next round fits the budget.
  constexpr int kAutoEpochs = 128;
  if (!o.given("epochs")) config.train.epochs = kAutoEpochs;
  config.time_budget_seconds = budget;
  config.anchor = [](Backend& on, Trainer& trainer) { anchor_at_pca(on, trainer); };
  // --refine-steps and --refine-rate say what the best model tries; 0 steps: nothing.
  config.refinement = base.latent_refinement;
  config.search_rows = search_rows;
  return config;
}

int run_recipe_search(const Options& o, const RunConfig& base) {
  const RecipeSearchConfig config = recipe_search_config(o, base);
  const bool quiet = o.flag_set("quiet");
  const auto backend = open_backend(o);
  const Counts counts = load_counts(o);
  if (!quiet) std::cerr << describe(counts) << "\n";
  require_trainable_rows(counts);

  const std::int64_t search_rows = config.search_rows;
  if (!quiet && samples_rows(counts.matrix.rows, search_rows))
    std::cerr << "auto: the recipes are ranked on a random " << search_rows << " of the "
              << counts.matrix.rows << " rows (--auto-rows) within half the budget; the best then "
              << "trains on every row\n";
  RecipeSearchResult search =
      search_recipes(*backend, counts.matrix, config, [&](const RecipeOutcome& outcome) {
        if (quiet) return;
        std::cerr << "auto: " << outcome.recipe.describe() << ", " << outcome.epochs << " epochs: ";
        if (outcome.failure.empty())
          std::fprintf(stderr, "exact-entry F1 %.2f %%\n", 100.0 * outcome.exact_f1);
        else
          std::cerr << outcome.failure << "\n";
      });
  const bool sampled = search.all_rows_exact_f1 >= 0;
  if (!quiet && !search.all_rows_failure.empty())
    std::cerr << "auto: training the best on every row stopped, the model kept as the sample "
                 "left it: "
              << search.all_rows_failure << "\n";
  const std::string checkpoint_path = o.text("out");
  search.best_run.data_source = counts.recorded_source;
  search.best_run.data_source_relative_to_checkpoint =
      source_relative_to_checkpoint(counts, checkpoint_path);
  if (!checkpoint_path.empty())
    save_checkpoint(checkpoint_path, {search.best_run, search.best_state});

  ComparisonRow pca;
  const std::int64_t components = base.model.latent;
  if (!o.flag_set("no-pca") && search.validation_rows > 0 && components <= counts.matrix.cols)
    pca =
        pca_baseline(*backend, counts.matrix, components, base.train.val_fraction, base.train.seed);
  const RecipeOutcome& best = search.outcomes[search.best];
  if (o.flag_set("json")) {
    std::vector<Json> recipes;
    for (const RecipeOutcome& outcome : search.outcomes) recipes.push_back(outcome_json(outcome));
    Json json = Json::object();
    json.set("recipes", Json::array(std::move(recipes)))
        .set("best", Json::integer(static_cast<std::int64_t>(search.best)))
        .set("validation_rows", Json::integer(search.validation_rows))
        .set("search_rows", Json::integer(search.search_rows))
        .set("search_validation_rows", Json::integer(search.search_validation_rows));
    if (sampled) {
      Json all_rows = Json::object();
      all_rows.set("epochs", Json::integer(search.all_rows_epochs))
          .set("exact_f1", Json::number_fixed(search.all_rows_exact_f1, 6))
          .set("seconds", Json::number_significant(search.all_rows_seconds, 6));
      if (!search.all_rows_failure.empty())
        all_rows.set("failure", Json::string(search.all_rows_failure));
      json.set("all_rows", all_rows);
    }
    if (!checkpoint_path.empty()) json.set("checkpoint", Json::string(checkpoint_path));
    if (search.refined_exact_f1 >= 0)
      json.set("refinement",
               Json::object()
                   .set("steps", Json::integer(config.refinement.steps))
                   .set("rate", Json::number_significant(config.refinement.rate, 6))
                   .set("exact_f1", Json::number_fixed(search.refined_exact_f1, 6))
                   .set("seconds", Json::number_significant(search.refined_seconds, 6))
                   .set("kept", Json::boolean(search.best_run.latent_refinement.steps > 0)));
    if (!search.refinement_skipped.empty())
      json.set("refinement", Json::object()
                                 .set("steps", Json::integer(config.refinement.steps))
                                 .set("rate", Json::number_significant(config.refinement.rate, 6))
                                 .set("skipped", Json::string(search.refinement_skipped)));
    if (pca.pca) json.set("pca", pca_json(pca, components));
    std::printf("%s\n", json.dump().c_str());
    return 0;
  }
  if (sampled)
    std::printf(
        "recipes, by their exact-entry F1 on the validation rows of a sample of %lld "
        "rows (%lld):\n",
        static_cast<long long>(search.search_rows),
        static_cast<long long>(search.search_validation_rows));
  else
    std::printf("recipes, by their exact-entry F1 on the validation rows (%lld):\n",
                static_cast<long long>(search.validation_rows));
  std::printf("  %-40s %7s %10s %9s\n", "recipe", "epochs", "exact F1", "seconds");
  for (const RecipeOutcome& outcome : search.outcomes) {
    char f1[32] = "failed";
    if (outcome.exact_f1 >= 0) std::snprintf(f1, sizeof f1, "%.2f %%", 100.0 * outcome.exact_f1);
    std::printf("  %-40s %7d %10s %9.1f%s\n", outcome.recipe.describe().c_str(), outcome.epochs, f1,
                outcome.seconds,
                &outcome == &best ? "  <- best" : (outcome.eliminated ? "  (left out)" : ""));
  }
  if (sampled)
    std::printf(
        "best, trained on every row for %d more epochs: exact-entry F1 %.2f %% on the "
        "validation rows (%lld) in %.1f s\n",
        search.all_rows_epochs, 100.0 * search.all_rows_exact_f1,
        static_cast<long long>(search.validation_rows), search.all_rows_seconds);
  if (!search.refinement_skipped.empty())
    std::printf("best, codes refined by %lld steps: not tried: %s\n",
                static_cast<long long>(config.refinement.steps), search.refinement_skipped.c_str());
  if (search.refined_exact_f1 >= 0)
    std::printf("best, codes refined by %lld steps: exact-entry F1 %.2f %% in %.1f s (%s)\n",
                static_cast<long long>(config.refinement.steps), 100.0 * search.refined_exact_f1,
                search.refined_seconds,
                search.best_run.latent_refinement.steps > 0 ? "kept: stored in the checkpoint"
                                                            : "not kept");
  if (pca.pca)
    std::printf("pca-%lld (round): exact-entry F1 %.2f %% on %s\n",
                static_cast<long long>(components), 100.0 * pca.metrics.exact_f1,
                sampled ? "every validation row" : "the same rows");
  if (!checkpoint_path.empty())
    std::printf(
        "checkpoint  %s (%s, %d epochs%s)\n", checkpoint_path.c_str(),
        best.recipe.describe().c_str(), best.epochs,
        sampled ? (" on the sample, " + std::to_string(search.all_rows_epochs) + " on every row")
                      .c_str()
                : "");
  return 0;
}

}  // namespace sparseae::cli
