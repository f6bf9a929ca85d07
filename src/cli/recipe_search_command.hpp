#pragma once
// sae train --auto: the recipe search (recipe_search.hpp) from the command line.
#include "cli/options.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/recipe_search.hpp"

namespace sparseae::cli {

// The search sae train's --auto flags in o ask for, over base (sae train's configuration from the
// same flags); throws Error, with sae train's message, for a flag --auto chooses itself or refuses
// and for a budget or a row count out of range.
RecipeSearchConfig recipe_search_config(const Options& o, const RunConfig& base);

// base: sae train's configuration from o (widths, batch, seed, validation fraction, input
// transform, ...); the search sets the loss, decode, latent activation and learning rate.
int run_recipe_search(const Options& o, const RunConfig& base);

}  // namespace sparseae::cli
