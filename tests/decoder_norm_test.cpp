// Decoder column normalisation (TrainConfig::decoder_norm): every latent's dictionary vector, its
// weights into the first decoder layer, has unit norm from the start and after training, on every
// backend, with a hidden decoder layer or straight into the output, plain or captured steps; a
// run without it does not; the setting round-trips through the checkpoint's configuration, and
// tied weights and the PCA anchor's linear skip are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"

namespace sparseae {
namespace {

constexpr std::int64_t kLatent = 16;

// Each entry is rounded once to float after the rescaling (half an ulp, relative), so a row's
// norm lies within about half a float epsilon of 1; the test's own double sum adds nothing
// measurable. 4 epsilons leave room for the flush of tiny entries to zero.
constexpr double kNormTolerance = 4.0 * std::numeric_limits<float>::epsilon();

RunConfig small_run(std::int64_t cols, const std::vector<std::int64_t>& hidden, bool decoder_norm) {
  RunConfig run;
  run.model.input_dim = cols;
  run.model.hidden = hidden;
  run.model.latent = kLatent;
  run.model.latent_sparsity = LatentSparsity::topk;
  run.model.latent_k = 4;
  run.train.loss = LossKind::poisson;
  run.train.epochs = 3;
  run.train.batch_size = 32;
  run.train.optimizer.learning_rate = 1e-2f;
  run.train.decoder_norm = decoder_norm;
  run.model = with_loss_heads(run.model, run.train.loss, run.train.loss_params);
  return run;
}

// The L2 norm of each latent's weights into the first decoder layer (row j of its in x out
// weights, in the flat parameters).
std::vector<double> decoder_column_norms(const ModelConfig& model,
                                         const std::vector<float>& parameters) {
  const ModelLayout layout(model);
  const LayerShape& decoder = layout.layers()[layout.encoder_layers()];
  std::vector<double> norms;
  for (std::int64_t j = 0; j < decoder.in; ++j) {
    double sum_squares = 0.0;
    for (std::int64_t c = 0; c < decoder.weight_cols; ++c) {
      const double w =
          parameters[static_cast<std::size_t>(decoder.weight_offset + j * decoder.weight_cols + c)];
      sum_squares += w * w;
    }
    norms.push_back(std::sqrt(sum_squares));
  }
  return norms;
}

// How many norms lie further than kNormTolerance from 1.
std::int64_t off_unit(const std::vector<double>& norms) {
  std::int64_t off = 0;
  for (const double norm : norms) off += !(std::fabs(norm - 1.0) <= kNormTolerance);
  return off;
}

class DecoderNormTraining : public test::BackendTest {};

TEST_P(DecoderNormTraining, KeepsEveryDecoderColumnAtUnitNorm) {
  const HostCsr data = test::small_topic_counts(300, 7);
  for (const std::vector<std::int64_t>& hidden :
       {std::vector<std::int64_t>{32}, std::vector<std::int64_t>{}}) {
    for (const bool captured : {false, true}) {
      SCOPED_TRACE("hidden layers " + std::to_string(hidden.size()) +
                   (captured ? ", captured step" : ", plain step"));
      RunConfig run = small_run(data.cols, hidden, true);
      run.train.capture_step = captured;
      Trainer trainer(backend(), run.model, run.train, data);
      const std::vector<double> at_start =
          decoder_column_norms(run.model, trainer.state().parameters);
      ASSERT_EQ(at_start.size(), static_cast<std::size_t>(kLatent));
      EXPECT_EQ(off_unit(at_start), 0) << "the initialisation is normalised before step 0";
      const TrainingState start = trainer.state();
      trainer.train();
      const TrainingState trained = trainer.state();
      ASSERT_GT(trained.step, 0);
      EXPECT_FALSE(trained.parameters == start.parameters) << "training moved nothing";
      EXPECT_EQ(off_unit(decoder_column_norms(run.model, trained.parameters)), 0);
      EXPECT_EQ(off_unit(decoder_column_norms(run.model, trained.best_parameters)), 0);

      const RunConfig plain = small_run(data.cols, hidden, false);
      Trainer without(backend(), plain.model, plain.train, data);
      EXPECT_GT(off_unit(decoder_column_norms(plain.model, without.state().parameters)), 0)
          << "the initialisation alone has unit columns: the test shows nothing";
      without.train();
      EXPECT_GT(off_unit(decoder_column_norms(plain.model, without.state().parameters)), 0);
    }
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(DecoderNormTraining);

TEST(DecoderNorm, SettingRoundTripsThroughTheCheckpointConfiguration) {
  const RunConfig run = small_run(64, {32}, true);
  EXPECT_TRUE(run_config_from_json(run_config_to_json(run), "test").train.decoder_norm);
  // Checkpoints written before decoder normalisation existed have no key: off.
  std::string json = run_config_to_json(run);
  const std::string key = ", \"decoder_norm\": true";
  const std::size_t at = json.find(key);
  ASSERT_NE(at, std::string::npos) << json;
  json.erase(at, key.size());
  EXPECT_FALSE(run_config_from_json(json, "test").train.decoder_norm);
}

TEST(DecoderNorm, RefusesTiedWeightsAndTheLinearSkip) {
  const HostCsr data = test::small_topic_counts(50, 5);
  auto backend = make_backend(BackendChoice::cpu);
  RunConfig tied = small_run(data.cols, {32}, true);
  tied.model.tied_weights = true;
  EXPECT_NE(test::error_message([&] {
              Trainer(*backend, tied.model, tied.train, data);
            }).find("decoder normalisation (--decoder-norm) rescales the decoder's own weights"),
            std::string::npos);
  RunConfig skip = small_run(data.cols, {32, 16}, true);
  skip.model.latent_sparsity = LatentSparsity::none;
  skip.model.latent_k = 0;
  skip.model.latent_activation = Activation::identity;
  skip.model.linear_skip = true;
  EXPECT_NE(test::error_message([&] {
              Trainer(*backend, skip.model, skip.train, data);
            }).find("the PCA anchor's linear skip (--pca-anchor) carries the latents"),
            std::string::npos);
}

}  // namespace
}  // namespace sparseae
