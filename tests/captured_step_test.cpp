// The captured training step (TrainConfig::capture_step, Backend::capture): a recording replays
// the ops with the memory as it is at replay, refuses what a CUDA graph cannot hold, and a
// training run whose full batches replay one captured step trains as the plain step does: to the
// bit on cpu, where the recording replays the very calls (so any argument the step still changes
// from batch to batch would replay stale and show here), to rounding on cuda.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/model.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"
#include "training_outcome.hpp"

namespace sparseae::test {
namespace {

class CapturedOps : public BackendTest {};

TEST_P(CapturedOps, ReplayReadsTheMemoryAsItIsAtReplay) {
  Buffer<float> source(backend(), std::vector<float>{1.0f, 2.0f, 3.0f});
  Buffer<float> copy(backend(), std::vector<float>{0.0f, 0.0f, 0.0f});
  Buffer<float> sum(backend(), std::vector<float>{-1.0f});
  // Once outside the capture: the reduction sizes its scratch memory.
  backend().sum_of_squares(copy.data(), 3, sum.data());
  sum.upload(std::vector<float>{-1.0f});
  const auto ops = backend().capture([&] {
    backend().copy_bytes(copy.data(), source.data(), 3 * sizeof(float));
    backend().sum_of_squares(copy.data(), 3, sum.data());
  });
  EXPECT_EQ(sum.download(), std::vector<float>{-1.0f}) << "capturing ran the ops";
  backend().replay(*ops);
  EXPECT_EQ(sum.download(), std::vector<float>{14.0f});
  source.upload(std::vector<float>{0.0f, 4.0f, 0.5f});
  backend().replay(*ops);
  EXPECT_EQ(copy.download(), (std::vector<float>{0.0f, 4.0f, 0.5f}));
  EXPECT_EQ(sum.download(), std::vector<float>{16.25f});
}

TEST_P(CapturedOps, RefusesWhatAGraphCannotHold) {
  Buffer<float> values(backend(), std::vector<float>{1.0f, 2.0f});
  std::vector<float> host(2);
  const auto refused = [&](const std::string& op, const std::function<void()>& call) {
    const std::string message = error_message([&] { backend().capture(call); });
    EXPECT_NE(message.find(op + " inside a captured step"), std::string::npos) << message;
  };
  refused("download_bytes",
          [&] { backend().download_bytes(host.data(), values.data(), sizeof(float)); });
  refused("upload_bytes",
          [&] { backend().upload_bytes(values.data(), host.data(), sizeof(float)); });
  refused("synchronize", [&] { backend().synchronize(); });
  refused("allocate_bytes", [&] { Buffer<float> scratch(backend(), 4); });
  refused("capture", [&] { backend().capture([] {}); });
  const HostCsr rows = narrow_topic_counts(8, 3);
  const BackendCsr rows_on(backend(), rows);
  Buffer<std::int64_t> ids(backend(), std::vector<std::int64_t>{0, 1});
  std::int64_t nnz = 0;
  refused("batch_nonzeros",
          [&] { backend().batch_nonzeros(rows_on.view(), ids.data(), 2, 2, &nnz); });
  if (!is_cpu()) {
    // Growing the cuda backend's scratch memory would leave the graph its old address: a small
    // reduction sizes it first, then a permutation of a million ids needs far more (its sort).
    Buffer<float> sum(backend(), 1);
    backend().sum_of_squares(values.data(), 2, sum.data());
    Buffer<std::int64_t> permutation(backend(), std::size_t{1} << 20);
    const std::string message = error_message([&] {
      backend().capture([&] {
        backend().random_permutation(7, static_cast<std::int64_t>(permutation.size()),
                                     permutation.data());
      });
    });
    EXPECT_NE(message.find("scratch memory would grow"), std::string::npos) << message;
  }
  // A refused capture leaves the backend issuing ops as before.
  values.upload(std::vector<float>{3.0f, 4.0f});
  Buffer<float> sum(backend(), 1);
  backend().sum_of_squares(values.data(), 2, sum.data());
  EXPECT_EQ(sum.download(), std::vector<float>{25.0f});
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(CapturedOps);

// 700 rows of 256 columns, about 5 non-zeros each (2 %: the sparse first layer on every backend):
// 630 training rows in 10 batches of 64, the last of 54.
HostCsr sparse_counts() {
  TopicDataConfig data;
  data.rows = 700;
  data.cols = 256;
  data.topics = 8;
  data.columns_per_topic = 16;
  data.mean_nonzeros = 5;
  data.seed = 11;
  return generate_topic_counts(data);
}

ModelConfig model_for(std::int64_t cols, Activation latent) {
  ModelConfig model;
  model.input_dim = cols;
  model.hidden = {32};
  model.latent = 8;
  model.latent_activation = latent;
  return model;
}

// Everything that varies from step to step: a warmed-up cosine schedule (the learning rate), Adam's
// bias corrections, the clipping norm, and a penalty's loss slot.
TrainConfig varying_config(bool capture) {
  TrainConfig config;
  config.epochs = 3;
  config.batch_size = 64;
  config.schedule = LrSchedule::cosine;
  config.warmup_steps = 5;
  config.optimizer.max_grad_norm = 1.0f;
  config.penalty.l1_weight = 1e-3f;
  config.capture_step = capture;
  return config;
}

class CapturedStepTraining : public BackendTest {
 protected:
  template <typename Matrix>
  void expect_captured_trains_as_plain(const Matrix& data, const ModelConfig& model,
                                       TrainConfig config) {
    config.capture_step = false;
    const Outcome plain = train_outcome(backend(), model, data, config);
    config.capture_step = true;
    const Outcome captured = train_outcome(backend(), model, data, config);
    expect_same_training(captured, plain, is_cpu());
  }
};

TEST_P(CapturedStepTraining, SparseRowsTrainAsThePlainStep) {
  const HostCsr data = sparse_counts();
  expect_captured_trains_as_plain(data, model_for(data.cols, Activation::identity),
                                  varying_config(true));
}

TEST_P(CapturedStepTraining, CountLossWithSizeFactorsAndKlPenalty) {
  // Denser rows (19 %, above the cpu backend's crossover: its first layer densifies), log1p
  // input, per-row offsets and the KL penalty's slot.
  const HostCsr data = narrow_topic_counts(600, 5, 24);
  if (is_cpu()) {
    ASSERT_GE(static_cast<double>(data.nnz()) / static_cast<double>(data.rows * data.cols),
              backend().dense_first_layer_density());
  }
  TrainConfig config = varying_config(true);
  config.loss = LossKind::nb;
  config.input_transform = InputTransform::log1p;
  config.loss_params.size_factors = true;
  config.penalty.l1_weight = 0.0f;
  config.penalty.kl_beta = 1e-2f;
  expect_captured_trains_as_plain(data, model_for(data.cols, Activation::sigmoid), config);
}

// Rate-aware training: each replay reads its step's noise seed and writes the rate's slot and the
// prior's gradients.
TEST_P(CapturedStepTraining, RateAwareTrainingDrawsEachStepsNoise) {
  const HostCsr data = sparse_counts();
  ModelConfig model = model_for(data.cols, Activation::identity);
  model.latent_prior = true;
  TrainConfig config = varying_config(true);
  config.loss = LossKind::poisson;
  config.rate_lambda = 1.0f;
  config.penalty.l1_weight = 0.0f;
  expect_captured_trains_as_plain(data, model, config);
}

// With bf16 products (on cpu, the emulation rounding its copies inside the recorded ops) too.
TEST_P(CapturedStepTraining, Bf16ProductsTrainAsThePlainStep) {
  const HostCsr data = sparse_counts();
  TrainConfig config = varying_config(true);
  config.precision = MatmulPrecision::bf16;
  expect_captured_trains_as_plain(data, model_for(data.cols, Activation::identity), config);
}

TEST_P(CapturedStepTraining, DenseRowsTrainAsThePlainStep) {
  const HostCsr data = sparse_counts();
  expect_captured_trains_as_plain(to_dense(data), model_for(data.cols, Activation::identity),
                                  varying_config(true));
}

TEST_P(CapturedStepTraining, SaysWhichStepRunsAndStreamedRowsRunPlain) {
  const HostCsr data = sparse_counts();
  const ModelConfig model = model_for(data.cols, Activation::identity);
  TrainConfig config = varying_config(true);
  config.placement = DataPlacement::resident;
  EXPECT_EQ(Trainer(backend(), model, config, data).step_execution().rfind("captured: ", 0), 0u);
  config.capture_step = false;
  EXPECT_EQ(Trainer(backend(), model, config, data).step_execution().rfind("plain: ", 0), 0u);
  config.capture_step = true;
  config.placement = DataPlacement::streamed;
  const Trainer streamed(backend(), model, config, data);
  EXPECT_NE(streamed.step_execution().find("plain: streamed rows"), std::string::npos)
      << streamed.step_execution();
  config.capture_step = false;
  const Outcome plain = train_outcome(backend(), model, data, config);
  config.capture_step = true;
  expect_same_training(train_outcome(backend(), model, data, config), plain, is_cpu());
}

TEST_P(CapturedStepTraining, StoppedMidEpochResumesAsTheStraightRun) {
  const HostCsr data = sparse_counts();
  const ModelConfig model = model_for(data.cols, Activation::identity);
  const TrainConfig config = varying_config(true);
  const Outcome straight = train_outcome(backend(), model, data, config);
  Trainer first(backend(), model, config, data);
  int steps = 0;
  TrainObserver stop_after_thirteen;
  stop_after_thirteen.stop_requested = [&] { return ++steps == 13; };
  first.train(stop_after_thirteen);
  ASSERT_TRUE(first.interrupted());
  Trainer second(backend(), model, config, data);
  second.restore(first.state());
  second.train();
  Outcome resumed;
  resumed.state = second.state();
  Outcome want;
  want.state = straight.state;
  expect_same_training(resumed, want, is_cpu());
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(CapturedStepTraining);

}  // namespace
}  // namespace sparseae::test
