#include "sparseae/error.hpp"
#include "sparseae/ops.hpp"

namespace sparseae {

namespace {
struct ActivationName {
  Activation activation;
  const char* name;
};
constexpr ActivationName kActivations[] = {
    {Activation::identity, "identity"}, {Activation::relu, "relu"},
    {Activation::leaky_relu, "leaky_relu"}, {Activation::sigmoid, "sigmoid"},
    {Activation::tanh, "tanh"}, {Activation::softplus, "softplus"}};

struct OptimizerName {
  OptimizerKind kind;
  const char* name;
};
constexpr OptimizerName kOptimizers[] = {
    {OptimizerKind::adam, "adam"}, {OptimizerKind::adamw, "adamw"}, {OptimizerKind::sgd, "sgd"}};
}  // namespace

Activation parse_activation(const std::string& name) {
  for (const auto& entry : kActivations)
    if (name == entry.name) return entry.activation;
  throw Error("unknown activation '" + name +
              "': expected identity, relu, leaky_relu, sigmoid, tanh or softplus");
}

const char* activation_name(Activation activation) {
  for (const auto& entry : kActivations)
    if (entry.activation == activation) return entry.name;
  return "unknown";
}

OptimizerKind parse_optimizer(const std::string& name) {
  for (const auto& entry : kOptimizers)
    if (name == entry.name) return entry.kind;
  throw Error("unknown optimizer '" + name + "': expected adam, adamw or sgd");
}

const char* optimizer_name(OptimizerKind kind) {
  for (const auto& entry : kOptimizers)
    if (entry.kind == kind) return entry.name;
  return "unknown";
}

}  // namespace sparseae
