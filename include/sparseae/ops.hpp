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
// negative binomial with a learned dispersion (nb), its zero-inflated form (zinb), and the
// hurdles (two-part models: a support logit, and a zero-truncated Poisson (hurdle) or negative
// binomial (hurdle_nb) for the value where it is non-zero). See src/math/loss_math.hpp.
enum class LossKind : std::int32_t {
  mse, mae, bce, mse_cosine, poisson, weighted_mse, huber, nb, zinb, hurdle, hurdle_nb
};

// How many model outputs each entry of the data takes under a loss (its heads): 1 for every loss
// but nb (log-mean, log-dispersion), zinb (log-mean, log-dispersion, dropout logit), hurdle
// (support logit, zero-truncated Poisson log-rate) and hurdle_nb (support logit, log-mean,
// log-dispersion). A model trained with it has an output layer of K*D units for D columns, laid
// out head-major within a row: [head 0 of columns 0..D-1 | head 1 of columns 0..D-1 | ...].
constexpr int output_heads(LossKind kind) {
  switch (kind) {
    case LossKind::nb:
    case LossKind::hurdle:
      return 2;
    case LossKind::zinb:
    case LossKind::hurdle_nb:
      return 3;
    default:
      return 1;
  }
}

// The head holding the log-mean (poisson, nb, zinb: the mean; the hurdles: the rate or mean of
// the value part), which a per-row size factor offsets; -1 for losses without one.
constexpr int log_mean_head(LossKind kind) {
  switch (kind) {
    case LossKind::poisson:
    case LossKind::nb:
    case LossKind::zinb:
      return 0;
    case LossKind::hurdle:
    case LossKind::hurdle_nb:
      return 1;
    default:
      return -1;
  }
}

// The head holding the log-dispersion of a negative binomial; -1 for losses without one.
constexpr int dispersion_head(LossKind kind) {
  switch (kind) {
    case LossKind::nb:
    case LossKind::zinb:
      return 1;
    case LossKind::hurdle_nb:
      return 2;
    default:
      return -1;
  }
}

// True for the two-part losses whose first head is a support logit (decoded by a threshold).
constexpr bool has_support_head(LossKind kind) {
  return kind == LossKind::hurdle || kind == LossKind::hurdle_nb;
}

// A negative binomial's dispersion: one per entry, an output head of the network like the mean
// (entry), or one per column shared by every row, learned as that head's bias alone (feature).
enum class Dispersion : std::int32_t { entry, feature };

Dispersion parse_dispersion(const std::string& name);
const char* dispersion_name(Dispersion dispersion);

// What the first layer reads: the counts as they are (none), or log(1 + x) (log1p), the
// single-cell convention that keeps a few large counts from dominating the input. The loss
// always compares against the counts themselves.
enum class InputTransform : std::int32_t { none, log1p };

InputTransform parse_input_transform(const std::string& name);
const char* input_transform_name(InputTransform transform);

// The parameters some losses take.
struct LossParams {
  float cosine_weight = 0.1f;  // mse_cosine: weight of the per-row cosine term
  float zero_weight = 0.1f;    // weighted_mse: weight of the entries whose target is zero
  float huber_delta = 1.0f;    // huber: where the quadratic turns linear
  Dispersion dispersion = Dispersion::entry;  // nb, zinb, hurdle_nb
  // Losses with a log-mean (log_mean_head): each row's log size factor (its total count against
  // the training rows' median total) is added to that head's pre-activation, so the model
  // predicts proportions and the row's library size scales them (the single-cell convention).
  bool size_factors = false;
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

// How dense matrix products round their operands: fp32 throughout; tf32 (operands rounded to
// TensorFloat-32's 10-bit mantissa, products accumulated in fp32); or bf16 (operands rounded to
// bfloat16's 7-bit mantissa, accumulated in fp32). cuda runs tf32 and bf16 on tensor cores; the
// cpu backend emulates them (math::round_operand, then fp32 products), slower than its fp32, so
// that a machine without a GPU predicts what the rounding costs a model. Parameters, optimizer
// state and the activations in memory stay fp32 in every mode. Names: "fp32", "tf32", "bf16".
enum class MatmulPrecision : std::int32_t { fp32, tf32, bf16 };
MatmulPrecision parse_matmul_precision(const std::string& name);
const char* matmul_precision_name(MatmulPrecision precision);

// How a dense layer's forward runs: its GEMM, then the bias + activation kernel (separate), or
// both as one op (fused: on cuda the bias and relu ride in cublasLt's GEMM epilogue).
// Names: "separate", "fused".
enum class LayerForward : std::int32_t { separate, fused };
LayerForward parse_layer_forward(const std::string& name);
const char* layer_forward_name(LayerForward mode);

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
  // A step whose gradient norm is not finite (NaN or Inf anywhere) changes nothing: parameters
  // and moments keep their values (TrainConfig::on_nonfinite = skip).
  bool skip_nonfinite = false;
};

// The optimizer's values that change from step to step: the learning rate (its schedule) and
// Adam's bias corrections 1 - beta1^t and 1 - beta2^t. A captured step reads them from backend
// memory (Backend::optimizer_step), written before each replay.
struct StepScalars {
  float learning_rate = 0.0f;
  float bias_correction1 = 1.0f;
  float bias_correction2 = 1.0f;
};

// One layer of a trained network as the deterministic decoder of lossless mode reads it
// (Backend::deterministic_layer, src/math/deterministic_decode.hpp). Pointers are in the
// backend's memory. Weights are in x weight_cols row-major (output column j reads weight column
// j before the bias-only range and j - (bias_only_end - bias_only_begin) after it), or out x in
// when transposed (a tied layer). The output columns [offset_begin, offset_end) take the row's
// offset on their pre-activation (the log size factor of the log-mean head).
struct DeterministicLayer {
  const float* weights = nullptr;
  const float* bias = nullptr;
  std::int64_t in = 0;
  std::int64_t out = 0;
  std::int64_t weight_cols = 0;
  bool transposed_weight = false;
  std::int64_t bias_only_begin = 0;
  std::int64_t bias_only_end = 0;
  std::int64_t offset_begin = 0;
  std::int64_t offset_end = 0;
  Activation activation = Activation::identity;
};

}  // namespace sparseae
