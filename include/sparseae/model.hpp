#pragma once
// The autoencoder: an encoder of dense layers from the input width down to the latent code, and a
// decoder back up, every layer y = activation(x·W + b). All parameters live in one flat buffer
// (one optimizer launch covers them all); a layer is a pair of offsets into it.
#include <cstdint>
#include <string>
#include <vector>

#include "sparseae/buffer.hpp"
#include "sparseae/matrix.hpp"
#include "sparseae/ops.hpp"

namespace sparseae {

// How the latent layer chooses its code's support (ModelConfig::latent_sparsity): not at all;
// TopK (each row keeps its latent_k largest pre-activations, Gao et al. 2024, "Scaling and
// evaluating sparse autoencoders"); or BatchTopK (the batch keeps its latent_k * rows largest, so
// that rows may use more or fewer; at inference the entries above a threshold estimated while
// training, Bussmann et al. 2024). Names: "none", "topk", "batchtopk".
enum class LatentSparsity : std::int32_t { none, topk, batchtopk };
LatentSparsity parse_latent_sparsity(const std::string& name);
const char* latent_sparsity_name(LatentSparsity sparsity);

struct ModelConfig {
  std::int64_t input_dim = 0;
  std::vector<std::int64_t> hidden{256, 128};  // encoder widths between input and latent
  std::int64_t latent = 32;
  // Decoder widths between latent and output; empty mirrors the encoder (128, 256).
  std::vector<std::int64_t> decoder_hidden;
  bool mirror_decoder = true;
  // Decoder layer i uses the transpose of the mirrored encoder layer's weights.
  bool tied_weights = false;
  Activation hidden_activation = Activation::relu;
  Activation latent_activation = Activation::relu;
  Activation output_activation = Activation::identity;
  std::uint64_t seed = 1;
  // Outputs per input column (output_heads of the loss): the output layer has
  // output_heads * input_dim units, head-major within a row. Set from the loss by the Trainer
  // and TrainedModel, not stored in checkpoints. Tied weights need 1.
  std::int64_t output_heads = 1;
  // An output head whose value is one per column, shared by every row (a per-feature dispersion,
  // Dispersion::feature): the output layer computes it from its bias alone, with no weights.
  // -1: none. Set from the loss like output_heads.
  std::int64_t feature_head = -1;
  // The output head whose pre-activation takes a per-row offset (the log size factor,
  // LossParams::size_factors) when forward() is given one; -1: none. Set from the loss.
  std::int64_t offset_head = -1;
  // Linear paths around the nonlinear branches: the input adds x·S_e to the latent layer's
  // pre-activation, and the latent code adds z·S_d to the output layer's. The model then contains
  // the linear autoencoder (PCA) exactly: with the branches' last layers zero, and S_e, S_d and
  // the biases PCA's (anchor_at_pca, pca.hpp), its step-0 outputs are PCA's, and training moves
  // it from there. Needs hidden layers on both sides and untied weights.
  bool linear_skip = false;
  // A factorised prior over the latent code (rate-aware training, TrainConfig::rate_lambda): the
  // latent layer's outputs are rounded to integers (math::latent_code) wherever the model is used,
  // and the prior's per-dimension location and log-scale (ModelLayout::prior_offset) give each
  // integer its probability, what lossless mode codes it with. Needs an identity latent.
  bool latent_prior = false;
  // The latent code's selection, applied to the latent layer's relu outputs, which keeps the same
  // entries as selecting among the pre-activations and then applying the relu (the relu is
  // monotone): z = relu(TopK(pre-activation)), Gao et al.'s form, so codes are non-negative and
  // the relu's derivative, 0 where an entry was dropped, sends the gradient through the kept
  // entries only. Kept as a mode beside the activation rather than as an Activation of its own
  // because it needs a k and (BatchTopK) a state, which no element-wise activation has. Needs a
  // relu latent and 1 <= latent_k <= latent; BatchTopK's threshold lives in the flat parameters
  // (ModelLayout::threshold_offset), outside what the optimizer updates.
  LatentSparsity latent_sparsity = LatentSparsity::none;
  std::int64_t latent_k = 0;
};

struct LayerShape {
  std::int64_t in = 0;
  std::int64_t out = 0;
  Activation activation = Activation::identity;
  std::int64_t weight_offset = 0;  // in x out (or out x in when transposed) floats
  std::int64_t bias_offset = 0;    // out floats
  bool transposed_weight = false;  // tied: uses another layer's in x out weights as out x in
  // The output columns [bias_only_begin, bias_only_end) are activation(bias) whatever the input
  // (ModelConfig::feature_head): the weight matrix has no columns for them, so it is in x
  // weight_cols with weight_cols = out - (bias_only_end - bias_only_begin); output column j
  // reads weight column j before the range and j - (bias_only_end - bias_only_begin) after it.
  std::int64_t bias_only_begin = 0;
  std::int64_t bias_only_end = 0;
  std::int64_t weight_cols = 0;
  // ModelConfig::linear_skip: the layer's pre-activation also adds source·S, with S a skip_in x
  // weight_cols matrix at skip_weight_offset read through the same column blocks as the weights.
  // The source is the output of layer skip_source, or the network's input for kSkipFromInput.
  bool has_skip = false;
  std::int64_t skip_source = kSkipFromInput;
  std::int64_t skip_in = 0;
  std::int64_t skip_weight_offset = 0;
  static constexpr std::int64_t kSkipFromInput = -1;
};

// The model with its output layer shaped for a loss: output_heads(loss) heads, and the
// dispersion head per feature when params.dispersion asks for it (and the loss has one).
ModelConfig with_loss_heads(ModelConfig model, LossKind loss, const LossParams& params);

// The shapes of a model and where each parameter lives in the flat buffer.
class ModelLayout {
 public:
  // Throws Error for an impossible configuration (zero widths, tied weights on an asymmetric
  // decoder).
  explicit ModelLayout(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  const std::vector<LayerShape>& layers() const { return layers_; }
  std::size_t encoder_layers() const { return encoder_layers_; }
  std::int64_t parameter_count() const { return parameter_count_; }
  // ModelConfig::latent_prior: where its 2 * latent floats start (the locations, then the
  // log-scales, math::latent_rate_term); -1 without one.
  std::int64_t prior_offset() const { return prior_offset_; }
  // LatentSparsity::batchtopk: where its inference threshold (one float) lives, after every
  // trained parameter; -1 without one.
  std::int64_t threshold_offset() const { return threshold_offset_; }
  // The parameters [0, trained_parameter_count()) that gradients train (what the optimizer
  // updates); the rest of parameter_count() is state that training sets otherwise (the threshold).
  std::int64_t trained_parameter_count() const { return trained_parameter_count_; }
  std::int64_t widest_layer() const;
  // "512-256-128-32-128-256-512 (relu, latent relu, output identity), 329 504 parameters".
  std::string describe() const;

  // Seeded initial parameters: He-normal weights for relu and leaky_relu layers, Xavier-uniform
  // otherwise, zero biases. Depends only on the configuration, not on the backend.
  std::vector<float> initial_parameters() const;

 private:
  ModelConfig config_;
  std::vector<LayerShape> layers_;
  std::size_t encoder_layers_ = 0;
  std::int64_t parameter_count_ = 0;
  std::int64_t prior_offset_ = -1;
  std::int64_t threshold_offset_ = -1;
  std::int64_t trained_parameter_count_ = 0;
};

}  // namespace sparseae
