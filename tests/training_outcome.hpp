#pragma once
// What a training run ends with (its losses and optimizer state), and the comparison of two runs
// that should train alike: the tests of data placement, the captured step and the layer forward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "sparseae/model.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::test {

struct Outcome {
  Trainer::State state;
  std::vector<double> train_losses;
  std::vector<double> val_losses;
};

template <typename Matrix>
Outcome train_outcome(Backend& backend, const ModelConfig& model, const Matrix& data,
                      const TrainConfig& config) {
  Trainer trainer(backend, model, config, data);
  Outcome outcome;
  for (const EpochReport& report : trainer.train()) {
    outcome.train_losses.push_back(report.train_loss);
    outcome.val_losses.push_back(report.val_loss);
  }
  outcome.state = trainer.state();
  return outcome;
}

// bitwise: the two runs issue the same ops on the same bytes (the cpu backend). Otherwise the
// sparse products may sum in another order from run to run (cuSPARSE's a·b and aᵀ·b, the captured
// step's atomics): losses within 1e-4 relative, parameters within 1e-4 of the largest.
inline void expect_same_training(const Outcome& got, const Outcome& want, bool bitwise) {
  ASSERT_EQ(got.train_losses.size(), want.train_losses.size());
  ASSERT_EQ(got.state.parameters.size(), want.state.parameters.size());
  if (bitwise) {
    EXPECT_EQ(got.train_losses, want.train_losses);
    EXPECT_EQ(got.val_losses, want.val_losses);
    EXPECT_TRUE(got.state.parameters == want.state.parameters) << "parameters differ";
    EXPECT_TRUE(got.state.second_moment == want.state.second_moment) << "moments differ";
    return;
  }
  constexpr double kTolerance = 1e-4;
  for (std::size_t e = 0; e < want.train_losses.size(); ++e) {
    EXPECT_NEAR(got.train_losses[e], want.train_losses[e], kTolerance * want.train_losses[e]);
    EXPECT_NEAR(got.val_losses[e], want.val_losses[e], kTolerance * want.val_losses[e]);
  }
  float largest = 0.0f;
  for (const float v : want.state.parameters) largest = std::max(largest, std::fabs(v));
  for (std::size_t i = 0; i < want.state.parameters.size(); ++i)
    ASSERT_NEAR(got.state.parameters[i], want.state.parameters[i], kTolerance * largest)
        << "parameter " << i;
}

}  // namespace sparseae::test
