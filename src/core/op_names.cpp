// The names of the ops' enums (ops.hpp), as the CLI, checkpoints and messages spell them.
#include <string>

#include "core/named_enum.hpp"
#include "sparseae/ops.hpp"

namespace sparseae {

namespace {

using detail::name_of;
using detail::Named;
using detail::parse_named;

constexpr Named<Activation> kActivations[] = {
    {Activation::identity, "identity"}, {Activation::relu, "relu"},
    {Activation::leaky_relu, "leaky_relu"}, {Activation::sigmoid, "sigmoid"},
    {Activation::tanh, "tanh"}, {Activation::softplus, "softplus"}};
constexpr Named<LossKind> kLosses[] = {
    {LossKind::mse, "mse"},         {LossKind::mae, "mae"},
    {LossKind::bce, "bce"},         {LossKind::mse_cosine, "mse_cosine"},
    {LossKind::poisson, "poisson"}, {LossKind::weighted_mse, "weighted_mse"},
    {LossKind::huber, "huber"},     {LossKind::nb, "nb"},
    {LossKind::zinb, "zinb"},       {LossKind::hurdle, "hurdle"},
    {LossKind::hurdle_nb, "hurdle_nb"}};
constexpr Named<Dispersion> kDispersions[] = {{Dispersion::entry, "entry"},
                                              {Dispersion::feature, "feature"}};
constexpr Named<InputTransform> kInputTransforms[] = {{InputTransform::none, "none"},
                                                      {InputTransform::log1p, "log1p"}};
constexpr Named<DecodeMode> kDecodeModes[] = {
    {DecodeMode::round, "round"}, {DecodeMode::mode, "mode"}, {DecodeMode::mean, "mean"}};
constexpr Named<OptimizerKind> kOptimizers[] = {
    {OptimizerKind::adam, "adam"}, {OptimizerKind::adamw, "adamw"}, {OptimizerKind::sgd, "sgd"}};
constexpr Named<MatmulPrecision> kMatmulPrecisions[] = {{MatmulPrecision::fp32, "fp32"},
                                                        {MatmulPrecision::tf32, "tf32"},
                                                        {MatmulPrecision::bf16, "bf16"}};
constexpr Named<LayerForward> kLayerForwards[] = {{LayerForward::separate, "separate"},
                                                  {LayerForward::fused, "fused"}};

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

Dispersion parse_dispersion(const std::string& name) {
  return parse_named(kDispersions, "dispersion", name);
}
const char* dispersion_name(Dispersion dispersion) { return name_of(kDispersions, dispersion); }

InputTransform parse_input_transform(const std::string& name) {
  return parse_named(kInputTransforms, "input transform", name);
}
const char* input_transform_name(InputTransform transform) {
  return name_of(kInputTransforms, transform);
}

OptimizerKind parse_optimizer(const std::string& name) {
  return parse_named(kOptimizers, "optimizer", name);
}
const char* optimizer_name(OptimizerKind kind) { return name_of(kOptimizers, kind); }

LayerForward parse_layer_forward(const std::string& name) {
  return parse_named(kLayerForwards, "layer forward", name);
}
const char* layer_forward_name(LayerForward mode) { return name_of(kLayerForwards, mode); }

MatmulPrecision parse_matmul_precision(const std::string& name) {
  return parse_named(kMatmulPrecisions, "precision", name);
}
const char* matmul_precision_name(MatmulPrecision precision) {
  return name_of(kMatmulPrecisions, precision);
}

}  // namespace sparseae
