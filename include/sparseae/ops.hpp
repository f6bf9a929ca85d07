#pragma once
// Parameters of the ops every backend implements (see backend.hpp).
#include <cstdint>
#include <string>

namespace sparseae {

enum class Activation : std::int32_t { identity, relu, leaky_relu, sigmoid, tanh, softplus };

// Parses "identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus"; throws Error otherwise.
Activation parse_activation(const std::string& name);
const char* activation_name(Activation activation);

// Reconstruction losses: mean squared error, mean absolute error, binary cross-entropy on
// targets scaled to [0, 1] (the output is a logit), mse plus a weighted cosine loss per row; and
// for counts: the Poisson negative log-likelihood (the output is a log-rate), mse with zero
// targets down-weighted, and Huber; and count likelihoods with several outputs per entry: the
// negative binomial with a per-entry dispersion (nb), its zero-inflated form (zinb) and the
// Poisson hurdle (hurdle). See kernels/loss_math.hpp.
enum class LossKind : std::int32_t {
  mse, mae, bce, mse_cosine, poisson, weighted_mse, huber, nb, zinb, hurdle
};

// How many model outputs each entry of the data takes under a loss (its heads): 1 for every loss
// but nb (log-mean, log-dispersion), zinb (log-mean, log-dispersion, dropout logit) and hurdle
// (support logit, zero-truncated Poisson log-rate). A model trained with it has an output layer
// of K*D units for D columns, laid out head-major within a row: [head 0 of columns 0..D-1 |
// head 1 of columns 0..D-1 | ...].
constexpr int output_heads(LossKind kind) {
  return kind == LossKind::zinb ? 3 : (kind == LossKind::nb || kind == LossKind::hurdle ? 2 : 1);
}

// The parameters some losses take.
struct LossParams {
  float cosine_weight = 0.1f;  // mse_cosine: weight of the per-row cosine term
  float zero_weight = 0.1f;    // weighted_mse: weight of the entries whose target is zero
  float huber_delta = 1.0f;    // huber: where the quadratic turns linear
};

// How a model output becomes a count: round the mean (mse-like losses); or, for count
// likelihoods, the mode of the predicted distribution (exact argmax of the pmf) or the rounded
// mean.
enum class DecodeMode : std::int32_t { round, mode, mean };

// The hurdle loss's mode decode predicts a non-zero where the support probability sigmoid(s) is
// at least a threshold: this one unless the model's checkpoint holds another, chosen on the
// validation rows at the end of training (choose_hurdle_threshold, RunConfig::hurdle_threshold).
constexpr double kDefaultHurdleThreshold = 0.5;

DecodeMode parse_decode_mode(const std::string& name);
const char* decode_mode_name(DecodeMode mode);

LossKind parse_loss(const std::string& name);
const char* loss_name(LossKind kind);

enum class Transpose : std::int32_t { no, yes };

enum class OptimizerKind : std::int32_t { adam, adamw, sgd };

OptimizerKind parse_optimizer(const std::string& name);
const char* optimizer_name(OptimizerKind kind);

// Adam and AdamW share beta1/beta2/epsilon; SGD uses momentum (0 disables it). weight_decay is
// an L2 term added to the gradient for adam and sgd, and decoupled (applied to the weights) for
// adamw, as in Loshchilov & Hutter.
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adam;
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  float weight_decay = 0.0f;
  float momentum = 0.9f;
  // Gradients are scaled by min(1, max_grad_norm / ||g||) before the update (0 turns it off).
  float max_grad_norm = 0.0f;
};

}  // namespace sparseae
