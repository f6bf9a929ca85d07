// AuxK (TrainConfig::aux_k): latents that a bad start leaves dead under TopK stay dead without it
// and revive with it, on every backend; its settings round-trip through the checkpoint's
// configuration, its dead-step counters through the checkpoint (a resumed run equals one never
// interrupted), and a configuration without a selection is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/network.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"

namespace sparseae {
namespace {

constexpr std::int64_t kLatent = 16;
constexpr std::int64_t kKilled = 8;  // latents the start kills: the last kKilled

RunConfig topk_run(std::int64_t cols, std::int64_t aux_k) {
  RunConfig run;
  run.model.input_dim = cols;
  run.model.hidden = {32};
  run.model.latent = kLatent;
  run.model.latent_sparsity = LatentSparsity::topk;
  run.model.latent_k = 4;
  run.train.loss = LossKind::poisson;
  run.train.epochs = 12;
  run.train.batch_size = 32;
  run.train.optimizer.learning_rate = 1e-2f;
  run.train.aux_k = aux_k;
  run.train.aux_dead_steps = 5;
  run.train.aux_weight = 0.5f;
  run.model = with_loss_heads(run.model, run.train.loss, run.train.loss_params);
  return run;
}

// The trainer's initial state with its last kKilled latents given no weights and a negative
// bias: their pre-activation is below 0 on every row, so the relu outputs 0 there, TopK never
// keeps them above 0, and the relu's derivative sends them no gradient.
TrainingState killed_start(const Trainer& trainer, const ModelConfig& model) {
  TrainingState start = trainer.state();
  const ModelLayout layout(model);
  const LayerShape& latent = layout.layers()[layout.encoder_layers() - 1];
  for (std::int64_t j = kLatent - kKilled; j < kLatent; ++j) {
    for (std::int64_t i = 0; i < latent.in; ++i)
      start
          .parameters[static_cast<std::size_t>(latent.weight_offset + i * latent.weight_cols + j)] =
          0.0f;
    start.parameters[static_cast<std::size_t>(latent.bias_offset + j)] = -0.1f;
  }
  return start;
}

// Trains from killed_start and returns the validation codes' dead-latent fraction after training.
double dead_fraction_after_training(Backend& backend, std::int64_t aux_k) {
  const HostCsr data = test::small_topic_counts(400, 5);
  const HostCsr unseen = test::small_topic_counts(200, 6);
  RunConfig run = topk_run(data.cols, aux_k);
  Trainer trainer(backend, run.model, run.train, data);
  const TrainingState start = killed_start(trainer, run.model);
  trainer.restore(start);
  TrainedModel started(backend, run, start.parameters);
  EXPECT_GE(started.evaluate(unseen).dead_latent_fraction,
            static_cast<double>(kKilled) / static_cast<double>(kLatent));
  trainer.train();
  run.scale = trainer.scale();
  TrainedModel trained(backend, run, trainer.state().parameters);
  return trained.evaluate(unseen).dead_latent_fraction;
}

class AuxKTraining : public test::BackendTest {};

TEST_P(AuxKTraining, RevivesLatentsThatDieWithoutIt) {
  const double without = dead_fraction_after_training(backend(), 0);
  const double with = dead_fraction_after_training(backend(), 4);
  // Without AuxK nothing reaches the killed latents: all stay dead.
  EXPECT_GE(without, static_cast<double>(kKilled) / static_cast<double>(kLatent));
  // With it, most come back.
  EXPECT_LE(with, without / 2.0) << "dead fraction without AuxK " << without;
  std::printf("dead latents: %.4f without AuxK, %.4f with\n", without, with);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(AuxKTraining);

// AuxK ranks a row's dead latents by their pre-activations. Latents 2 and 3 never fire (no
// weights, biases -0.5 and -0.1: the relu leaves both at 0 in every row) while TopK keeps 0 and 1
// (bias 1), so with aux_k = 1 latent 3 is the auxiliary one, the less negative; ranked by the
// relu's outputs instead, the two would tie at 0 and the lower column, 2, would take it. With and
// without a hidden layer (the latent's forward is then the first layer's), on both layer forwards.
class AuxKNetwork : public test::BackendTest {};

TEST_P(AuxKNetwork, RanksDeadLatentsByTheirPreActivations) {
  constexpr std::int64_t kRows = 3;
  for (const std::vector<std::int64_t>& hidden :
       {std::vector<std::int64_t>{}, std::vector<std::int64_t>{8}}) {
    for (const LayerForward forward : {LayerForward::separate, LayerForward::fused}) {
      SCOPED_TRACE("hidden layers " + std::to_string(hidden.size()) + ", forward " +
                   std::to_string(static_cast<int>(forward)));
      ModelConfig model;
      model.input_dim = 6;
      model.hidden = hidden;
      model.latent = 4;
      model.latent_sparsity = LatentSparsity::topk;
      model.latent_k = 2;
      const ModelLayout layout(model);
      Network net(backend(), layout, kRows);
      net.set_layer_forward(forward);
      std::mt19937_64 rng(31);
      std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
      std::vector<float> parameters(net.parameters().size());
      for (float& p : parameters) p = uniform(rng);
      const LayerShape& latent = layout.layers()[layout.encoder_layers() - 1];
      for (std::int64_t w = 0; w < latent.in * latent.out; ++w)
        parameters[static_cast<std::size_t>(latent.weight_offset + w)] = 0.0f;
      const float biases[] = {1.0f, 1.0f, -0.5f, -0.1f};
      for (std::int64_t j = 0; j < 4; ++j)
        parameters[static_cast<std::size_t>(latent.bias_offset + j)] = biases[j];
      net.parameters().upload(parameters);
      net.set_latent_training(true);
      net.enable_auxk(1, 1.0f, 0);
      net.dead_steps().upload({0, 0, 1, 1});
      std::vector<float> rows(kRows * 6);
      for (float& x : rows) x = uniform(rng) + 1.0f;
      Buffer<float> batch(backend(), rows);
      const ConstDenseView input = batch.matrix(kRows, 6);
      net.forward(input);
      const DenseView dy = net.output_gradient();
      ASSERT_EQ(dy.ld, dy.cols);
      const std::vector<float> ones(static_cast<std::size_t>(dy.rows * dy.cols), 1.0f);
      backend().upload_bytes(dy.data, ones.data(), ones.size() * sizeof(float));
      net.backward(input);
      const std::vector<float> gradients = net.gradients().download();
      const auto bias_gradient = [&](std::int64_t j) {
        return gradients[static_cast<std::size_t>(latent.bias_offset + j)];
      };
      EXPECT_EQ(bias_gradient(2), 0.0f);
      EXPECT_NE(bias_gradient(3), 0.0f);
      EXPECT_NE(bias_gradient(0), 0.0f);
    }
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(AuxKNetwork);

// AuxK's dead-step counters travel in the checkpoint: 4 epochs in one go from killed_start
// against 2 epochs, a checkpoint, a new Trainer restored from it, and 2 more give the same state
// bit for bit. Counting from 0 again after the resume would hold the auxiliary gradient back for
// aux_dead_steps batches, and the parameters would differ.
class AuxKResume : public test::BackendTest {};

TEST_P(AuxKResume, ContinuesCountingDeadStepsAcrossACheckpoint) {
  const HostCsr data = test::small_topic_counts(400, 5);
  RunConfig run = topk_run(data.cols, 4);
  run.train.epochs = 4;
  Trainer straight(backend(), run.model, run.train, data);
  const TrainingState start = killed_start(straight, run.model);
  straight.restore(start);
  straight.train();

  run.train.epochs = 2;
  Trainer first(backend(), run.model, run.train, data);
  first.restore(start);
  first.train();
  run.scale = first.scale();
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparseae-auxk-resume-" + std::to_string(::getpid()) + ".ckpt"))
                               .string();
  save_checkpoint(path, {run, first.state()});
  Checkpoint checkpoint = load_checkpoint(path);
  std::filesystem::remove(path);
  ASSERT_EQ(checkpoint.state.latent_dead_steps, first.state().latent_dead_steps);
  std::int32_t longest_dead = 0;
  for (const std::int32_t counter : checkpoint.state.latent_dead_steps)
    longest_dead = std::max(longest_dead, counter);
  EXPECT_GT(longest_dead, run.train.aux_dead_steps) << "no latent is dead at the checkpoint";
  checkpoint.config.train.epochs = 4;  // what sae train --resume --epochs 4 does
  Trainer second(backend(), checkpoint.config.model, checkpoint.config.train, data);
  second.restore(checkpoint.state);
  second.train();
  const TrainingState resumed = second.state();
  const TrainingState expected = straight.state();
  EXPECT_TRUE(resumed.parameters == expected.parameters);
  EXPECT_EQ(resumed.latent_dead_steps, expected.latent_dead_steps);

  // A checkpoint without the counters (one written before they were stored) resumes from 0, and
  // the run then differs: the test above would notice them lost.
  TrainingState without_counters = checkpoint.state;
  without_counters.latent_dead_steps.clear();
  Trainer recounting(backend(), checkpoint.config.model, checkpoint.config.train, data);
  recounting.restore(without_counters);
  recounting.train();
  EXPECT_FALSE(recounting.state().parameters == expected.parameters);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(AuxKResume);

TEST(AuxK, SettingsRoundTripThroughTheCheckpointConfiguration) {
  RunConfig run = topk_run(64, 6);
  run.train.aux_weight = 0.125f;
  run.train.aux_dead_steps = 77;
  const RunConfig back = run_config_from_json(run_config_to_json(run), "test");
  EXPECT_EQ(back.train.aux_k, 6);
  EXPECT_EQ(back.train.aux_weight, 0.125f);
  EXPECT_EQ(back.train.aux_dead_steps, 77);
  // Checkpoints written before AuxK existed have none of its keys: off.
  std::string json = run_config_to_json(run);
  for (const std::string key :
       {", \"aux_k\": 6", ", \"aux_weight\": 0.125", ", \"aux_dead_steps\": 77"}) {
    const std::size_t at = json.find(key);
    ASSERT_NE(at, std::string::npos) << key << " in " << json;
    json.erase(at, key.size());
  }
  EXPECT_EQ(run_config_from_json(json, "test").train.aux_k, 0);
}

TEST(AuxK, RefusesALatentWithoutSelection) {
  const HostCsr data = test::small_topic_counts(50, 5);
  RunConfig run = topk_run(data.cols, 4);
  run.model.latent_sparsity = LatentSparsity::none;
  run.model.latent_k = 0;
  auto backend = make_backend(BackendChoice::cpu);
  EXPECT_NE(test::error_message([&] {
              Trainer(*backend, run.model, run.train, data);
            }).find("AuxK (--aux-k) revives the dead latents of a TopK or BatchTopK code"),
            std::string::npos);
  run.model.latent_sparsity = LatentSparsity::topk;
  run.model.latent_k = 4;
  run.train.aux_k = kLatent + 1;
  EXPECT_NE(test::error_message([&] {
              Trainer(*backend, run.model, run.train, data);
            }).find("AuxK (--aux-k) takes 0 to 16 latents"),
            std::string::npos);
}

}  // namespace
}  // namespace sparseae
