// Rate-aware training (TrainConfig::rate_lambda, ModelConfig::latent_prior): the configuration
// it needs, integer codes wherever the model is used, a rate that the weight trades against the
// counts' likelihood (fewer code bits in the lossless file at a higher weight), a validation loss
// that counts the codes, a resume that draws the same noise, and the checkpoint's keys.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "sparseae/checkpoint.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/lossless.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"
#include "trained_run.hpp"
#include "training_outcome.hpp"

namespace sparseae {
namespace {

using test::error_message;
using test::train_run;
using test::TrainedRun;

RunConfig rate_run(float lambda, std::int64_t cols) {
  RunConfig run;
  run.model.input_dim = cols;
  run.model.hidden = {32};
  run.model.latent = 6;
  run.model.latent_activation = Activation::identity;
  run.model.latent_prior = true;
  run.train.loss = LossKind::poisson;
  run.train.rate_lambda = lambda;
  run.train.epochs = 12;
  run.train.batch_size = 32;
  run.train.optimizer.learning_rate = 5e-3f;
  run.model = with_loss_heads(run.model, run.train.loss, run.train.loss_params);
  return run;
}

TEST(RateAware, RefusesAConfigurationWithoutItsParts) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = test::small_topic_counts(40, 1);
  RunConfig run = rate_run(1.0f, data.cols);
  run.model.latent_prior = false;
  EXPECT_EQ(error_message([&] { Trainer(*cpu, run.model, run.train, data); }),
            "rate-aware training (--rate-lambda) needs a model with a latent prior");
  run = rate_run(1.0f, data.cols);
  run.train.rate_lambda = 0.0f;
  EXPECT_EQ(error_message([&] { Trainer(*cpu, run.model, run.train, data); }),
            "a model with a latent prior trains with a positive --rate-lambda");
  for (const float bad :
       {-1.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    run = rate_run(bad, data.cols);
    EXPECT_EQ(error_message([&] { Trainer(*cpu, run.model, run.train, data); }),
              "rate lambda (--rate-lambda) must be finite and non-negative")
        << bad;
  }
  run = rate_run(1.0f, data.cols);
  run.model.latent_activation = Activation::relu;
  EXPECT_EQ(error_message([&] { ModelLayout layout(run.model); }),
            "model: a latent prior (rate-aware training) needs an identity latent (--latent-act "
            "identity); this one is relu");
}

// The prior's 2 x latent floats sit after every layer, start at zero (the unit logistic at 0),
// and the description says the model has one.
TEST(RateAware, LayoutHoldsThePriorAfterTheLayers) {
  const RunConfig run = rate_run(1.0f, 64);
  const ModelLayout layout(run.model);
  ModelConfig plain = run.model;
  plain.latent_prior = false;
  const ModelLayout without(plain);
  EXPECT_EQ(without.prior_offset(), -1);
  EXPECT_EQ(layout.prior_offset(), without.parameter_count());
  EXPECT_GE(layout.parameter_count(), layout.prior_offset() + 2 * run.model.latent);
  const std::vector<float> initial = layout.initial_parameters();
  for (std::int64_t i = 0; i < 2 * run.model.latent; ++i)
    EXPECT_EQ(initial[static_cast<std::size_t>(layout.prior_offset() + i)], 0.0f) << i;
  EXPECT_NE(layout.describe().find("latent prior"), std::string::npos) << layout.describe();
}

TrainedRun train_rate(Backend& backend, float lambda, const HostCsr& data) {
  return train_run(backend, rate_run(lambda, data.cols), data);
}

// Trained at a weight 100 times higher, the codes take a quarter fewer bits at least in the
// lossless file and the counts given them more; both models' codes are integers wherever they are
// used, training lowers the validation description length (the reconstruction's NLL plus the
// codes' rate), and the code bits per row that evaluate() reports are what the file's latent
// streams take.
TEST(RateAware, TheWeightTradesCodeBitsForCountBits) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = test::small_topic_counts(600, 2);
  const HostCsr unseen = test::small_topic_counts(200, 3);
  LosslessSizes sizes[2];
  int k = 0;
  for (const float lambda : {0.05f, 5.0f}) {
    const TrainedRun model = train_rate(*cpu, lambda, data);
    EXPECT_LT(model.reports.back().val_loss, model.reports.front().val_loss) << lambda;
    TrainedModel trained(*cpu, model.run, model.parameters);
    const HostDense codes = trained.encode(unseen);
    for (const float v : codes.values) ASSERT_EQ(v, std::nearbyint(v)) << "a code " << v;
    LosslessOptions options;
    options.latent_bits = kPriorLatentBits;
    options.order0_fallback = false;
    CsrRowSource source(unseen);
    sizes[k] = compress_lossless(*cpu, model.run, model.parameters, source, "", options);
    // The metric is the ideal length of the file's latent streams: their coder's cost within
    // the pmfs' quantisation and each block's end.
    const ReconstructionMetrics metrics = trained.evaluate(unseen);
    const double code_bytes = metrics.code_bits_per_row * static_cast<double>(unseen.rows) / 8.0;
    EXPECT_NEAR(static_cast<double>(sizes[k].latent_bytes), code_bytes, 0.05 * code_bytes + 16.0)
        << lambda;
    EXPECT_DOUBLE_EQ(metrics.description_bits_per_row,
                     metrics.code_bits_per_row + metrics.nll_bits_per_row);
    ++k;
  }
  EXPECT_LT(4 * sizes[1].latent_bytes, 3 * sizes[0].latent_bytes)
      << "codes of lambda 5: " << sizes[1].latent_bytes
      << " bytes, of 0.05: " << sizes[0].latent_bytes;
  EXPECT_GT(sizes[1].residual_bytes, sizes[0].residual_bytes);
}

// The noise of each step comes from its global step: stopped after 2 epochs and resumed from a
// checkpoint, the run ends bit for bit where the straight one does.
TEST(RateAware, ResumeDrawsTheSameNoise) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = test::small_topic_counts(300, 4);
  RunConfig run = rate_run(1.0f, data.cols);
  run.train.epochs = 4;
  Trainer straight(*cpu, run.model, run.train, data);
  const std::vector<EpochReport> straight_reports = straight.train();
  run.train.epochs = 2;
  Trainer first(*cpu, run.model, run.train, data);
  first.train();
  run.scale = first.scale();
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparseae-rate-" + std::to_string(::getpid()) + ".ckpt"))
                               .string();
  save_checkpoint(path, {run, first.state()});
  Checkpoint checkpoint = load_checkpoint(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(checkpoint.config.model.latent_prior);
  EXPECT_EQ(checkpoint.config.train.rate_lambda, 1.0f);
  checkpoint.config.train.epochs = 4;
  Trainer second(*cpu, checkpoint.config.model, checkpoint.config.train, data);
  second.restore(checkpoint.state);
  const std::vector<EpochReport> second_reports = second.train();
  EXPECT_EQ(second.state().parameters, straight.state().parameters);
  EXPECT_EQ(second_reports.back().val_loss, straight_reports.back().val_loss);
}

// Checkpoints written before rate-aware training had neither key: no prior, rate 0.
TEST(RateAware, CheckpointKeysAreOptional) {
  const RunConfig run = rate_run(0.25f, 64);
  const RunConfig back = run_config_from_json(run_config_to_json(run), "test");
  EXPECT_TRUE(back.model.latent_prior);
  EXPECT_EQ(back.train.rate_lambda, 0.25f);
  std::string json = run_config_to_json(run);
  for (const std::string key : {", \"latent_prior\": true", ", \"rate_lambda\": 0.25"}) {
    const std::size_t at = json.find(key);
    ASSERT_NE(at, std::string::npos) << key << " in " << json;
    json.erase(at, key.size());
  }
  const RunConfig old = run_config_from_json(json, "test");
  EXPECT_FALSE(old.model.latent_prior);
  EXPECT_EQ(old.train.rate_lambda, 0.0f);
}

}  // namespace
}  // namespace sparseae
