// A dense layer's forward as one op (TrainConfig::layer_forward, Network::set_layer_forward):
// training with the fused forward equals training with the GEMM and the bias + activation kernel
// apart: to the bit on cpu (where the fused op is those two ops), to rounding on cuda (cublasLt's
// epilogue adds the bias inside the GEMM); layers with per-row offsets run separate either way.
#include <gtest/gtest.h>

#include "backend_fixture.hpp"
#include "sparseae/model.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"
#include "training_outcome.hpp"

namespace sparseae::test {
namespace {

TEST(LayerForward, NamesParseAndPrint) {
  for (const LayerForward mode : {LayerForward::separate, LayerForward::fused})
    EXPECT_EQ(parse_layer_forward(layer_forward_name(mode)), mode);
  EXPECT_EQ(error_message([] { parse_layer_forward("merged"); }),
            "unknown layer forward 'merged': expected separate or fused");
}

class LayerForwardTraining : public BackendTest {
 protected:
  template <typename Matrix>
  void expect_fused_trains_as_separate(const Matrix& data, const ModelConfig& model,
                                       TrainConfig config) {
    config.layer_forward = LayerForward::separate;
    const Outcome separate = train_outcome(backend(), model, data, config);
    config.layer_forward = LayerForward::fused;
    const Outcome fused = train_outcome(backend(), model, data, config);
    expect_same_training(fused, separate, is_cpu());
  }

  static HostCsr counts() { return narrow_topic_counts(600, 9); }

  static ModelConfig model() {
    ModelConfig model;
    model.input_dim = 128;
    model.hidden = {64, 32};
    model.latent = 8;
    return model;
  }

  static TrainConfig config() {
    TrainConfig config;
    config.epochs = 2;
    config.batch_size = 64;
    return config;
  }
};

TEST_P(LayerForwardTraining, ReluLayersAndIdentityOutput) {
  expect_fused_trains_as_separate(counts(), model(), config());
}

TEST_P(LayerForwardTraining, DenseRowsFuseTheFirstLayerToo) {
  expect_fused_trains_as_separate(to_dense(counts()), model(), config());
}

TEST_P(LayerForwardTraining, TiedWeightsTransposeTheFusedProduct) {
  ModelConfig tied = model();
  tied.tied_weights = true;
  expect_fused_trains_as_separate(counts(), tied, config());
}

TEST_P(LayerForwardTraining, SigmoidLayersAndAnOffsetOutputInACapturedStep) {
  ModelConfig sigmoid = model();
  sigmoid.hidden_activation = Activation::sigmoid;
  TrainConfig offsets = config();
  offsets.loss = LossKind::poisson;
  offsets.loss_params.size_factors = true;
  offsets.capture_step = true;
  expect_fused_trains_as_separate(counts(), sigmoid, offsets);
}

TEST_P(LayerForwardTraining, AnOutputWithBiasOnlyColumnsRunsSeparate) {
  // nb with one dispersion per feature: the output layer's dispersion columns are its bias alone.
  TrainConfig nb = config();
  nb.loss = LossKind::nb;
  nb.loss_params.dispersion = Dispersion::feature;
  expect_fused_trains_as_separate(counts(), model(), nb);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LayerForwardTraining);

}  // namespace
}  // namespace sparseae::test
