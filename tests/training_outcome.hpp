#pragma once
// What a training run ends with (its losses and optimizer state), and the comparison of two runs
// that should train alike: the tests of data placement, the captured step and the layer forward.
#include <gtest/gtest.h>

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

// ||got - want|| / ||want|| over two parameter vectors of one size, in double.
inline double relative_norm_difference(const std::vector<float>& got,
                                       const std::vector<float>& want) {
  double difference = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    difference += d * d;
    norm += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(difference / norm);
}

// bitwise: the two runs issue the same ops on the same bytes (the cpu backend). Otherwise the
// products may sum in another order from run to run (cuSPARSE's a·b and aᵀ·b, the captured
// step's atomics, cublasLt against cuBLAS): losses within 1e-4 relative, parameters within 1e-3
// in relative norm. Not each parameter against the largest: Adam divides by the second moments,
// so where those are small a reordered sum moves single parameters far more than the whole
// (tests/backend_agreement_test.cpp measures cpu against cuda the same way, to 1e-2). A wrong
// kernel misses by orders of magnitude.
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
  constexpr double kLossTolerance = 1e-4;
  for (std::size_t e = 0; e < want.train_losses.size(); ++e) {
    EXPECT_NEAR(got.train_losses[e], want.train_losses[e], kLossTolerance * want.train_losses[e]);
    EXPECT_NEAR(got.val_losses[e], want.val_losses[e], kLossTolerance * want.val_losses[e]);
  }
  constexpr double kParameterTolerance = 1e-3;
  EXPECT_LT(relative_norm_difference(got.state.parameters, want.state.parameters),
            kParameterTolerance);
}

}  // namespace sparseae::test
