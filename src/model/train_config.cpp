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

void validate_optimization(const TrainConfig& config) {
  const OptimizerConfig& optimizer = config.optimizer;
  require(std::isfinite(optimizer.learning_rate) && optimizer.learning_rate > 0.0f,
          "learning rate (--lr) must be finite and positive, not " +
              std::to_string(optimizer.learning_rate));
  require(optimizer.beta1 >= 0.0f && optimizer.beta1 < 1.0f && optimizer.beta2 >= 0.0f &&
              optimizer.beta2 < 1.0f,
          "Adam's betas must lie in [0, 1)");
  require(std::isfinite(optimizer.epsilon) && optimizer.epsilon > 0.0f,
          "Adam's epsilon must be finite and positive");
  require(std::isfinite(optimizer.weight_decay) && optimizer.weight_decay >= 0.0f,
          "weight decay (--weight-decay) must be finite and non-negative, not " +
              std::to_string(optimizer.weight_decay));
  require(optimizer.momentum >= 0.0f && optimizer.momentum < 1.0f,
          "momentum (--momentum) must lie in [0, 1), not " + std::to_string(optimizer.momentum));
  require(std::isfinite(optimizer.max_grad_norm) && optimizer.max_grad_norm >= 0.0f,
          "clipping norm (--clip-norm) must be finite and non-negative (0: off), not " +
              std::to_string(optimizer.max_grad_norm));
  require(config.warmup_steps >= 0, "warmup steps (--warmup) must not be negative");
  require(config.patience >= 0, "patience (--patience) must not be negative (0: never stop early)");
  require(config.loss_every >= 0, "--loss-every must not be negative (0: never)");
}

void validate_sparse_code_training(const ModelConfig& model, const TrainConfig& config) {
  require(config.aux_k >= 0 && config.aux_k <= model.latent,
          "AuxK (--aux-k) takes 0 to " + std::to_string(model.latent) + " latents, not " +
              std::to_string(config.aux_k));
  require(config.aux_k == 0 || model.latent_sparsity != LatentSparsity::none,
          "AuxK (--aux-k) revives the dead latents of a TopK or BatchTopK code: it needs "
          "--latent-act topk:K or batchtopk:K");
  require(std::isfinite(config.aux_weight) && config.aux_weight >= 0.0f,
          "AuxK's weight (--aux-weight) must be finite and non-negative");
  require(config.aux_dead_steps >= 0, "AuxK's dead steps (--aux-dead-steps) must not be negative");
  require(!config.decoder_norm || !model.tied_weights,
          "decoder normalisation (--decoder-norm) rescales the decoder's own weights; tied "
          "weights (--tied) are the encoder's: drop one");
  require(!config.decoder_norm || !model.linear_skip,
          "decoder normalisation (--decoder-norm) bounds the latents' decoder weights, but the "
          "PCA anchor's linear skip (--pca-anchor) carries the latents to the output unbounded: "
          "drop one");
}

}  // namespace sparseae
