// The names of the training configuration's enums, and the checks of its penalties and loss
// parameters (train_config.hpp).
#include "sparseae/train_config.hpp"

#include <cmath>
#include <string>

#include "core/named_enum.hpp"
#include "sparseae/error.hpp"

namespace sparseae {

namespace {

using detail::name_of;
using detail::Named;
using detail::parse_named;

constexpr Named<NonFinitePolicy> kNonFinitePolicies[] = {{NonFinitePolicy::stop, "stop"},
                                                         {NonFinitePolicy::skip, "skip"}};
constexpr Named<DataPlacement> kDataPlacements[] = {{DataPlacement::automatic, "auto"},
                                                    {DataPlacement::resident, "resident"},
                                                    {DataPlacement::streamed, "stream"}};
constexpr Named<ScaleMode> kScaleModes[] = {{ScaleMode::none, "none"}, {ScaleMode::max, "max"}};
constexpr Named<LrSchedule> kLrSchedules[] = {{LrSchedule::constant, "constant"},
                                              {LrSchedule::cosine, "cosine"}};
}  // namespace

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

std::size_t penalised_layer(const ModelLayout& layout, const PenaltyConfig& penalty) {
  return penalty.layer < 0 ? layout.encoder_layers() - 1 : static_cast<std::size_t>(penalty.layer);
}

void validate_penalty(const ModelConfig& model, const PenaltyConfig& penalty) {
  const ModelLayout layout(model);
  const auto layers = static_cast<int>(layout.layers().size());
  require(penalty.layer >= -1 && penalty.layer < layers,
          "penalty layer " + std::to_string(penalty.layer) +
              " does not exist (--penalty-layer): expected -1 for the latent or a layer index "
              "below " +
              std::to_string(layers));
  require(penalty.kl_rho > 0.0f && penalty.kl_rho < 1.0f,
          "KL sparsity target rho (--kl-rho) must lie in (0, 1)");
  if (penalty.kl_beta > 0.0f) {
    const std::size_t layer = penalised_layer(layout, penalty);
    const Activation activation = layout.layers()[layer].activation;
    require(activation == Activation::sigmoid,
            "KL sparsity penalty needs a sigmoid layer: layer " + std::to_string(layer) + " is " +
                activation_name(activation) +
                " (use --latent-act sigmoid, or --hidden-act sigmoid with --penalty-layer)");
  }
}

void validate_loss_params(const LossParams& params) {
  require(std::isfinite(params.zero_weight) && params.zero_weight >= 0.0f,
          "zero-target weight of weighted_mse (--zero-weight) must be finite and non-negative");
  require(std::isfinite(params.huber_delta) && params.huber_delta > 0.0f,
          "huber delta (--huber-delta) must be finite and positive");
}

}  // namespace sparseae
