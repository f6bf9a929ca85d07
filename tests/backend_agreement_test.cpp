// The cuda backend trains the same model as the cpu backend from the same seed: same split, same
// permutations, same initialisation, so only floating-point summation order differs, and the two
// runs must end close together. Skips, saying why, where no CUDA device answers.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sparseae/generator.hpp"
#include "sparseae/trainer.hpp"
#include "training_outcome.hpp"

namespace sparseae {
namespace {

// After 48 Adam steps the runs differ only by accumulated float32 rounding: about 1e-6 per
// step, amplified where Adam divides by small second moments. Losses agree to 2e-3 relative,
// parameters to 1e-2 in relative norm; a wrong kernel misses both by orders of magnitude.
constexpr double kLossTolerance = 2e-3;
constexpr double kParameterTolerance = 1e-2;

struct TrainingRun {
  std::vector<EpochReport> reports;
  std::vector<float> parameters;
};

TrainingRun train_on(BackendChoice choice, LossKind loss) {
  TopicDataConfig data_config;
  data_config.rows = 1600;
  const HostCsr data = generate_topic_counts(data_config);
  ModelConfig model;
  model.input_dim = data.cols;
  model.hidden = {64};
  model.latent = 16;
  TrainConfig config;
  config.loss = loss;
  config.scale = loss == LossKind::bce ? ScaleMode::max : ScaleMode::none;
  config.epochs = 3;
  config.batch_size = 90;
  const auto backend = make_backend(choice);
  Trainer trainer(*backend, model, config, data);
  TrainingRun run;
  run.reports = trainer.train();
  run.parameters = trainer.state().parameters;
  return run;
}

class CudaTrainingAgreement : public ::testing::TestWithParam<LossKind> {
 protected:
  void SetUp() override {
    std::string reason;
    if (!cuda_device_available(&reason))
      GTEST_SKIP() << "cuda backend: no device answers (" << reason << ")";
  }
};

TEST_P(CudaTrainingAgreement, EndsCloseToTheCpuRunFromTheSameSeed) {
  const TrainingRun cpu = train_on(BackendChoice::cpu, GetParam());
  const TrainingRun cuda = train_on(BackendChoice::cuda, GetParam());
  ASSERT_EQ(cpu.reports.size(), cuda.reports.size());
  for (std::size_t e = 0; e < cpu.reports.size(); ++e) {
    EXPECT_NEAR(cuda.reports[e].train_loss, cpu.reports[e].train_loss,
                kLossTolerance * std::abs(cpu.reports[e].train_loss))
        << "epoch " << e + 1;
    EXPECT_NEAR(cuda.reports[e].val_loss, cpu.reports[e].val_loss,
                kLossTolerance * std::abs(cpu.reports[e].val_loss))
        << "epoch " << e + 1;
  }
  ASSERT_EQ(cpu.parameters.size(), cuda.parameters.size());
  EXPECT_LT(test::relative_norm_difference(cuda.parameters, cpu.parameters), kParameterTolerance);
}

INSTANTIATE_TEST_SUITE_P(Losses, CudaTrainingAgreement,
                         ::testing::Values(LossKind::mse, LossKind::bce, LossKind::mse_cosine,
                                           LossKind::poisson, LossKind::weighted_mse,
                                           LossKind::huber),
                         [](const ::testing::TestParamInfo<LossKind>& info) {
                           return std::string(loss_name(info.param));
                         });

}  // namespace
}  // namespace sparseae
