#pragma once
// A search for the training recipe that reproduces held-out counts most exactly: every candidate
// (loss and decode, latent activation, learning rate, started at PCA or not) trains a few epochs
// on the same split, the better half by validation exact-entry F1 trains on to twice the epochs,
// and so on (successive halving); the last one left goes on doubling its epochs alone. It stops
// when the epochs run out or when the next round, timed from its recipes' last epochs, would not
// end within the time budget. On data of more rows than it ranks recipes on, the rounds run on a
// random sample of them and the best recipe then trains on every row. `sae train --auto`.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "sparseae/model.hpp"
#include "sparseae/ops.hpp"
#include "sparseae/train_config.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae {

struct Recipe {
  LossKind loss = LossKind::mse;
  DecodeMode decode = DecodeMode::round;
  Activation latent_activation = Activation::relu;
  float learning_rate = 1e-3f;
  // Started at PCA of the raw counts (ModelConfig::linear_skip, RecipeSearchConfig::anchor):
  // latent identity and no input transform whatever the search's, so that its start is the PCA
  // baseline itself and, kept by validation F1 from the start on, it never ends below it.
  bool pca_anchor = false;
  // huber's delta; 0: the search's (TrainConfig::loss_params).
  float huber_delta = 0.0f;

  // "hurdle/mode, latent identity, lr 0.003", "huber(0.5)/round, pca anchor, lr 0.001".
  std::string describe() const;
};

// The candidates `sae train --auto` tries. Started at PCA: mse, huber with delta 0.5 (quadratic
// within the half-count window where round decodes exactly, linear beyond: large errors that no
// code fixes stop dominating) and mae by round, and the negative-binomial hurdle by its mode.
// From scratch: mse by round, poisson by its mean, the hurdle and the negative-binomial hurdle by
// their mode, each with a relu or an identity latent. All at a learning rate of 0.001
// (12 recipes).
std::vector<Recipe> default_recipes();

// The refinement steps the search tries on its best model (RecipeSearchConfig::refinement).
constexpr std::int64_t kAutoRefineSteps = 40;

// The rows the search ranks recipes on by default (RecipeSearchConfig::search_rows): every row of
// the five real sets but the largest (bench/real-data/README.md), and a first round of a few
// minutes on 2 cores.
constexpr std::int64_t kAutoSearchRows = 65536;

// Whether a search over rows rows ranks its recipes on a sample (RecipeSearchConfig::search_rows
// = max_rows): max_rows > 0 and fewer than rows.
inline bool samples_rows(std::int64_t rows, std::int64_t max_rows) {
  return max_rows > 0 && rows > max_rows;
}
// The rows that rank the recipes when samples_rows: from each part of split_rows(rows,
// val_fraction, seed), seeded random rows in sorted order, max_rows in all, the validation part's
// share of them that of the split (at least one row of each part that has any). The sample's
// validation rows are validation rows of the whole data, so no row the search trains on is ever
// measured as held out. Otherwise, the split itself.
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> search_sample(
    std::int64_t rows, double val_fraction, std::uint64_t seed, std::int64_t max_rows);

struct RecipeSearchConfig {
  // The widths (and hidden activation) every recipe trains; input_dim comes from the data, the
  // latent activation from each recipe.
  ModelConfig model;
  // Batch, validation fraction, seed, input transform, ...; loss and learning rate come from each
  // recipe; epochs is the most any recipe trains.
  TrainConfig train;
  std::vector<Recipe> recipes = default_recipes();
  int first_epochs = 2;  // every recipe's first round; each later round doubles it
  // Starts a pca_anchor recipe's model before its first step (sae train --auto: anchor_at_pca,
  // which lives above the trainer). Required when a recipe is anchored.
  std::function<void(Backend&, Trainer&)> anchor;
  // No round starts that would end after this much time, by its recipes' seconds per epoch in
  // their last round, with the refinement trial below (predicted from the same) after it. The
  // first round always runs, and the trial too unless the rounds were on a sample (below).
  double time_budget_seconds = 600;
  // After the search, the best model's validation exact F1 is measured again (where its codes
  // can be refined: can_refine_latent_codes) with its codes refined so
  // (RunConfig::latent_refinement), and the refinement is stored with it when that F1 is higher. 0
  // steps: not tried. 40 steps gained 0.2 to 16 % F1 on four real sets (bench/real-data/README.md),
  // for about 40 decoder passes a row wherever the model is used.
  LatentRefinement refinement{kAutoRefineSteps, kDefaultRefineRate};
  // At most this many rows rank the recipes (search_sample); 0: every row. When the data has
  // more, the rounds are held to half the time budget, and the best recipe then trains on every
  // row from where the rounds left it, for as many whole epochs as fit what is left of the budget
  // and at most as many as it trained in the rounds, kept by validation exact F1 from that start
  // on. The refinement trial, over every validation row, runs only where its predicted time fits
  // what is left after one such epoch (or none, where none fits). Refused with ScaleMode::max,
  // whose scale is the largest count of the rows trained on; size factors' reference library size
  // becomes the whole training rows' median row total, which a sample's lies close to.
  std::int64_t search_rows = kAutoSearchRows;
  // Asked after every training step (TrainObserver::stop_requested): true ends the search there,
  // with RecipeSearchStopped. Python's Ctrl-C.
  std::function<bool()> stop_requested;
};

// What search_recipes throws when RecipeSearchConfig::stop_requested ended it: no model.
class RecipeSearchStopped : public Error {
 public:
  using Error::Error;
};

struct RecipeOutcome {
  Recipe recipe;
  int epochs = 0;        // trained, in its last good round
  double exact_f1 = -1;  // on the validation rows after those epochs; -1 when none was good
  double seconds = 0;    // training and evaluation, all rounds
  // Why a round's training stopped ("training diverged: ..."), or empty. A recipe whose later
  // round failed keeps its last good round (epochs, F1, state), trains no further and may still
  // be the best.
  std::string failure;
  bool eliminated = false;  // left out of a later round
};

struct RecipeSearchResult {
  std::vector<RecipeOutcome> outcomes;  // in the order of config.recipes
  std::size_t best = 0;                 // the outcome of the best exact F1 in the last round
  // The best recipe's configuration, its decode and its chosen hurdle threshold included.
  RunConfig best_run;
  TrainingState best_state;  // and its parameters, as a checkpoint holds them
  std::int64_t validation_rows = 0;  // of the whole data's split
  // The rows the rounds ranked the recipes on (their F1s are of its validation rows): every row,
  // unless the data has more than RecipeSearchConfig::search_rows.
  std::int64_t search_rows = 0;
  std::int64_t search_validation_rows = 0;
  // After rounds on a sample: the epochs the best recipe then trained on every row, its
  // validation exact F1 after them on all the validation rows (-1 when the rounds had every row),
  // the seconds that took, and why its training stopped (the model left as the rounds left it),
  // or empty.
  int all_rows_epochs = 0;
  double all_rows_exact_f1 = -1;
  double all_rows_seconds = 0;
  std::string all_rows_failure;
  // The best model's validation exact F1 with refined codes (RecipeSearchConfig::refinement), by
  // its decode, on all the validation rows; -1 when not tried. best_run holds the refinement when
  // this beat its F1 without (after rounds on a sample: all_rows_exact_f1).
  double refined_exact_f1 = -1;
  double refined_seconds = 0;  // that measurement's time: the threshold chosen again, then the F1
  // Why the trial was left out after rounds on a sample (its predicted time did not fit), or empty.
  std::string refinement_skipped;
};

// Throws Error when no recipe trains at all (each one's failure named), or the configuration is
// unusable (no recipes, first_epochs < 1, scale max on a sample), and RecipeSearchStopped when
// config.stop_requested ends it. on_outcome is called after every recipe's round.
RecipeSearchResult search_recipes(Backend& backend, const HostCsr& data,
                                  const RecipeSearchConfig& config,
                                  const std::function<void(const RecipeOutcome&)>& on_outcome = {});

}  // namespace sparseae
