#pragma once
// Parameters of the ops every backend implements (see backend.hpp).
#include <cstdint>
#include <string>

namespace sparseae {

enum class Activation : std::int32_t { identity, relu, leaky_relu, sigmoid, tanh, softplus };

// Parses "identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus"; throws Error otherwise.
Activation parse_activation(const std::string& name);
const char* activation_name(Activation activation);

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
};

// The optimizer state for one flat parameter buffer: first and second moments for adam/adamw,
// the velocity (in first_moment) for sgd. step is 1 for the first update.
struct OptimizerStep {
  std::int64_t step = 1;
};

}  // namespace sparseae
