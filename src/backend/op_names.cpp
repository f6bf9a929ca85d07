#include <string>

#include "sparseae/error.hpp"
#include "sparseae/ops.hpp"

namespace sparseae {

namespace {

template <typename Enum>
struct Named {
  Enum value;
  const char* name;
};

constexpr Named<Activation> kActivations[] = {
    {Activation::identity, "identity"}, {Activation::relu, "relu"},
    {Activation::leaky_relu, "leaky_relu"}, {Activation::sigmoid, "sigmoid"},
    {Activation::tanh, "tanh"}, {Activation::softplus, "softplus"}};
constexpr Named<LossKind> kLosses[] = {
    {LossKind::mse, "mse"},         {LossKind::mae, "mae"},
    {LossKind::bce, "bce"},         {LossKind::mse_cosine, "mse_cosine"},
    {LossKind::poisson, "poisson"}, {LossKind::weighted_mse, "weighted_mse"},
    {LossKind::huber, "huber"},     {LossKind::nb, "nb"},
    {LossKind::zinb, "zinb"},       {LossKind::hurdle, "hurdle"}};
constexpr Named<DecodeMode> kDecodeModes[] = {
    {DecodeMode::round, "round"}, {DecodeMode::mode, "mode"}, {DecodeMode::mean, "mean"}};
constexpr Named<OptimizerKind> kOptimizers[] = {
    {OptimizerKind::adam, "adam"}, {OptimizerKind::adamw, "adamw"}, {OptimizerKind::sgd, "sgd"}};

// "unknown <what> 'name': expected a, b or c".
template <typename Enum, std::size_t N>
Enum parse_named(const Named<Enum> (&table)[N], const char* what, const std::string& name) {
  std::string expected;
  for (std::size_t i = 0; i < N; ++i) {
    if (name == table[i].name) return table[i].value;
    expected += (i == 0 ? "" : (i + 1 == N ? " or " : ", ")) + std::string(table[i].name);
  }
  throw Error(std::string("unknown ") + what + " '" + name + "': expected " + expected);
}

template <typename Enum, std::size_t N>
const char* name_of(const Named<Enum> (&table)[N], Enum value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return "unknown";
}

}  // namespace

Activation parse_activation(const std::string& name) {
  return parse_named(kActivations, "activation", name);
}
const char* activation_name(Activation activation) { return name_of(kActivations, activation); }

LossKind parse_loss(const std::string& name) { return parse_named(kLosses, "loss", name); }
const char* loss_name(LossKind kind) { return name_of(kLosses, kind); }

DecodeMode parse_decode_mode(const std::string& name) {
  return parse_named(kDecodeModes, "decode mode", name);
}
const char* decode_mode_name(DecodeMode mode) { return name_of(kDecodeModes, mode); }

OptimizerKind parse_optimizer(const std::string& name) {
  return parse_named(kOptimizers, "optimizer", name);
}
const char* optimizer_name(OptimizerKind kind) { return name_of(kOptimizers, kind); }

}  // namespace sparseae
