#include <string>

#include "sparseae/error.hpp"
#include "sparseae/ops.hpp"
#include "sparseae/trainer.hpp"

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
constexpr Named<NonFinitePolicy> kNonFinitePolicies[] = {{NonFinitePolicy::stop, "stop"},
                                                         {NonFinitePolicy::skip, "skip"}};
constexpr Named<MatmulPrecision> kMatmulPrecisions[] = {{MatmulPrecision::fp32, "fp32"},
                                                        {MatmulPrecision::tf32, "tf32"},
                                                        {MatmulPrecision::bf16, "bf16"}};
constexpr Named<LayerForward> kLayerForwards[] = {{LayerForward::separate, "separate"},
                                                  {LayerForward::fused, "fused"}};
constexpr Named<DataPlacement> kDataPlacements[] = {{DataPlacement::automatic, "auto"},
                                                    {DataPlacement::resident, "resident"},
                                                    {DataPlacement::streamed, "stream"}};
constexpr Named<ScaleMode> kScaleModes[] = {{ScaleMode::none, "none"}, {ScaleMode::max, "max"}};
constexpr Named<LrSchedule> kLrSchedules[] = {{LrSchedule::constant, "constant"},
                                              {LrSchedule::cosine, "cosine"}};

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

ScaleMode parse_scale_mode(const std::string& name) {
  return parse_named(kScaleModes, "scale", name);
}
const char* scale_mode_name(ScaleMode mode) { return name_of(kScaleModes, mode); }

NonFinitePolicy parse_nonfinite_policy(const std::string& name) {
  return parse_named(kNonFinitePolicies, "non-finite policy", name);
}
const char* nonfinite_policy_name(NonFinitePolicy policy) {
  return name_of(kNonFinitePolicies, policy);
}

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

DataPlacement parse_data_placement(const std::string& name) {
  return parse_named(kDataPlacements, "data placement", name);
}
const char* data_placement_name(DataPlacement placement) {
  return name_of(kDataPlacements, placement);
}

LrSchedule parse_lr_schedule(const std::string& name) {
  return parse_named(kLrSchedules, "learning-rate schedule", name);
}
const char* lr_schedule_name(LrSchedule schedule) { return name_of(kLrSchedules, schedule); }

}  // namespace sparseae
