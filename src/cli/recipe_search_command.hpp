#pragma once
// sae train --auto: the recipe search (recipe_search.hpp) from the command line.
#include "cli/options.hpp"
#include "sparseae/checkpoint.hpp"

namespace sparseae::cli {

// base: sae train's configuration from o (widths, batch, seed, validation fraction, input
// transform, ...); the search sets the loss, decode, latent activation and learning rate.
int run_recipe_search(const Options& o, const RunConfig& base);

}  // namespace sparseae::cli
