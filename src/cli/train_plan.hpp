#pragma once
// What sae train's flags ask of a fresh run, read by the one function sae train's own options go
// through, so that the Python package, which passes its estimator's parameters as these flags,
// fits the model sae train would train from them.
#include <cstdint>
#include <optional>

#include "cli/commands.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/ops.hpp"
#include "sparseae/recipe_search.hpp"

namespace sparseae::cli {

struct TrainPlan {
  RunConfig run;                     // the model and training configuration, input width set
  std::optional<DecodeMode> decode;  // --decode, checked against the loss
  bool select_by_f1 = true;          // --select: keep the best validation exact F1 (else loss)
  BackendChoice backend = BackendChoice::automatic;  // --backend
};

// Reads sae train's model, loss, training and decode flags for data of input_dim columns, with
// sae train's defaults for those not given; throws UsageError for a flag sae train does not take
// and Error for values that do not fit each other, with sae train's messages. Flags about files
// and reports (--data, -o, ...) are read but play no part in the plan.
TrainPlan plan_training(const Args& args, std::int64_t input_dim);

struct SearchPlan {
  RecipeSearchConfig search;                         // the recipe search sae train --auto runs
  BackendChoice backend = BackendChoice::automatic;  // --backend
};

// Reads sae train's flags, --auto among them, as sae train --auto reads them for data of
// input_dim columns; throws as plan_training does, and Error for a flag the search
// chooses itself or refuses, with sae train --auto's messages.
SearchPlan plan_recipe_search(const Args& args, std::int64_t input_dim);

}  // namespace sparseae::cli
