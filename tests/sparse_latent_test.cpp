// Sparse latents (ModelConfig::latent_sparsity): the configuration they need, training with each
// on every backend (the validation loss falls, TopK's codes keep at most K latents a row),
// BatchTopK's threshold (estimated in training, kept in the checkpoint, what encode selects by)
// and the checkpoint's keys.
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"
#include "trained_run.hpp"

namespace sparseae {
namespace {

using test::error_message;
using test::train_run;
using test::TrainedRun;

RunConfig sparse_run(LatentSparsity sparsity, std::int64_t k, std::int64_t cols) {
  RunConfig run;
  run.model.input_dim = cols;
  run.model.hidden = {32};
  run.model.latent = 16;
  run.model.latent_sparsity = sparsity;
  run.model.latent_k = k;
  run.train.loss = LossKind::poisson;
  run.train.epochs = 8;
  run.train.batch_size = 32;
  run.train.optimizer.learning_rate = 5e-3f;
  run.model = with_loss_heads(run.model, run.train.loss, run.train.loss_params);
  return run;
}

TEST(SparseLatent, RefusesAConfigurationItCannotSelectIn) {
  RunConfig run = sparse_run(LatentSparsity::topk, 0, 64);
  EXPECT_EQ(error_message([&] { ModelLayout layout(run.model); }),
            "model: a topk latent keeps K of the 16 latents, K from 1 to 16, not 0");
  run.model.latent_k = 17;
  EXPECT_EQ(error_message([&] { ModelLayout layout(run.model); }),
            "model: a topk latent keeps K of the 16 latents, K from 1 to 16, not 17");
  run = sparse_run(LatentSparsity::batchtopk, 4, 64);
  run.model.latent_activation = Activation::identity;
  EXPECT_EQ(error_message([&] { ModelLayout layout(run.model); }),
            "model: a batchtopk latent selects before a relu (--latent-act batchtopk:K); this "
            "latent is identity");
  EXPECT_EQ(error_message([] { parse_latent_sparsity("top"); }),
            "unknown latent sparsity 'top': expected none, topk or batchtopk");
}

// BatchTopK's threshold sits after every trained parameter, outside the optimizer's range, and
// starts unset; TopK adds nothing to the parameters.
TEST(SparseLatent, LayoutHoldsTheThresholdAfterTheTrainedParameters) {
  const ModelLayout batch(sparse_run(LatentSparsity::batchtopk, 4, 64).model);
  const ModelLayout topk(sparse_run(LatentSparsity::topk, 4, 64).model);
  const ModelLayout plain(sparse_run(LatentSparsity::none, 0, 64).model);
  EXPECT_EQ(plain.threshold_offset(), -1);
  EXPECT_EQ(topk.parameter_count(), plain.parameter_count());
  EXPECT_EQ(topk.trained_parameter_count(), topk.parameter_count());
  EXPECT_EQ(batch.trained_parameter_count(), plain.parameter_count());
  EXPECT_EQ(batch.threshold_offset(), plain.parameter_count());
  EXPECT_GT(batch.parameter_count(), batch.threshold_offset());
  EXPECT_EQ(batch.initial_parameters()[static_cast<std::size_t>(batch.threshold_offset())], -1.0f);
  EXPECT_NE(batch.describe().find("latent batchtopk:4"), std::string::npos) << batch.describe();
  EXPECT_NE(topk.describe().find("latent topk:4"), std::string::npos) << topk.describe();
}

std::vector<std::int64_t> nonzeros_per_row(const HostDense& codes) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(codes.rows), 0);
  for (std::int64_t r = 0; r < codes.rows; ++r)
    for (std::int64_t c = 0; c < codes.cols; ++c)
      counts[static_cast<std::size_t>(r)] +=
          codes.values[static_cast<std::size_t>(r * codes.cols + c)] != 0.0f;
  return counts;
}

class SparseLatentTraining : public test::BackendTest {};

// Both selections train (the validation loss falls); TopK's codes hold at most K non-zeros a
// row, all positive; BatchTopK ends with a positive threshold, and its codes lie above it.
TEST_P(SparseLatentTraining, EachSelectionTrains) {
  const HostCsr data = test::small_topic_counts(400, 5);
  const HostCsr unseen = test::small_topic_counts(100, 6);
  for (const LatentSparsity sparsity : {LatentSparsity::topk, LatentSparsity::batchtopk}) {
    SCOPED_TRACE(latent_sparsity_name(sparsity));
    const TrainedRun model = train_run(backend(), sparse_run(sparsity, 4, data.cols), data);
    EXPECT_LT(model.reports.back().val_loss, model.reports.front().val_loss);
    TrainedModel trained(backend(), model.run, model.parameters);
    const HostDense codes = trained.encode(unseen);
    for (const float v : codes.values) ASSERT_GE(v, 0.0f);
    // evaluate() reports the code's L0 and its dead and dense latents from the same codes.
    const std::vector<std::int64_t> counts = nonzeros_per_row(codes);
    std::vector<std::int64_t> firing(static_cast<std::size_t>(codes.cols), 0);
    for (std::int64_t r = 0; r < codes.rows; ++r)
      for (std::int64_t c = 0; c < codes.cols; ++c)
        firing[static_cast<std::size_t>(c)] +=
            codes.values[static_cast<std::size_t>(r * codes.cols + c)] != 0.0f;
    const ReconstructionMetrics metrics = trained.evaluate(unseen);
    EXPECT_DOUBLE_EQ(metrics.latent_l0, static_cast<double>(std::accumulate(
                                            counts.begin(), counts.end(), std::int64_t{0})) /
                                            static_cast<double>(codes.rows));
    EXPECT_DOUBLE_EQ(
        metrics.dead_latent_fraction,
        static_cast<double>(std::count(firing.begin(), firing.end(), std::int64_t{0})) / 16.0);
    EXPECT_DOUBLE_EQ(
        metrics.dense_latent_fraction,
        static_cast<double>(std::count_if(firing.begin(), firing.end(),
                                          [&](std::int64_t f) { return 2 * f > codes.rows; })) /
            16.0);
    if (sparsity == LatentSparsity::topk) {
      for (const std::int64_t count : counts) EXPECT_LE(count, 4);
      EXPECT_LE(metrics.latent_l0, 4.0);
      continue;
    }
    const ModelLayout layout(model.run.model);
    const float threshold = model.parameters[static_cast<std::size_t>(layout.threshold_offset())];
    EXPECT_GT(threshold, 0.0f);
    for (const float v : codes.values) EXPECT_TRUE(v == 0.0f || v > threshold) << v;
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(SparseLatentTraining);

// The threshold survives a checkpoint bit for bit, and encode keeps exactly the relu codes above
// it: those of the same parameters without the selection, thresholded here.
TEST(SparseLatent, BatchTopKThresholdRoundTripsAndEncodeUsesIt) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = test::small_topic_counts(300, 7);
  const HostCsr unseen = test::small_topic_counts(80, 8);
  const TrainedRun model =
      train_run(*cpu, sparse_run(LatentSparsity::batchtopk, 3, data.cols), data);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparseae-batchtopk-" + std::to_string(::getpid()) + ".ckpt"))
                               .string();
  save_checkpoint(path, {model.run, model.state});
  const Checkpoint checkpoint = load_checkpoint(path);
  std::filesystem::remove(path);
  EXPECT_EQ(checkpoint.config.model.latent_sparsity, LatentSparsity::batchtopk);
  EXPECT_EQ(checkpoint.config.model.latent_k, 3);
  const ModelLayout layout(model.run.model);
  const auto at = static_cast<std::size_t>(layout.threshold_offset());
  const float threshold = checkpoint.state.parameters[at];
  EXPECT_EQ(threshold, model.parameters[at]);
  EXPECT_GT(threshold, 0.0f);

  TrainedModel sparse(*cpu, checkpoint.config, checkpoint.state.parameters);
  RunConfig plain_run = checkpoint.config;
  plain_run.model.latent_sparsity = LatentSparsity::none;
  plain_run.model.latent_k = 0;
  const std::vector<float> plain_parameters(
      checkpoint.state.parameters.begin(),
      checkpoint.state.parameters.begin() + layout.trained_parameter_count());
  TrainedModel plain(*cpu, plain_run, plain_parameters);
  const HostDense codes = sparse.encode(unseen);
  HostDense expected = plain.encode(unseen);
  for (float& v : expected.values) v = v > threshold ? v : 0.0f;
  EXPECT_EQ(codes.values, expected.values);
  // Rows keep unequal counts: the threshold, not K, decides.
  const std::vector<std::int64_t> counts = nonzeros_per_row(codes);
  EXPECT_NE(*std::min_element(counts.begin(), counts.end()),
            *std::max_element(counts.begin(), counts.end()));
}

// Checkpoints written before sparse latents had neither key: no selection.
TEST(SparseLatent, CheckpointKeysAreOptional) {
  const RunConfig run = sparse_run(LatentSparsity::topk, 5, 64);
  const RunConfig back = run_config_from_json(run_config_to_json(run), "test");
  EXPECT_EQ(back.model.latent_sparsity, LatentSparsity::topk);
  EXPECT_EQ(back.model.latent_k, 5);
  std::string json = run_config_to_json(run);
  for (const std::string key : {", \"latent_sparsity\": \"topk\"", ", \"latent_k\": 5"}) {
    const std::size_t at = json.find(key);
    ASSERT_NE(at, std::string::npos) << key << " in " << json;
    json.erase(at, key.size());
  }
  const RunConfig old = run_config_from_json(json, "test");
  EXPECT_EQ(old.model.latent_sparsity, LatentSparsity::none);
  EXPECT_EQ(old.model.latent_k, 0);
}

}  // namespace
}  // namespace sparseae
