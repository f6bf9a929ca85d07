#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "core/named_enum.hpp"
#include "math/op_math.hpp"
#include "math/sparsity_math.hpp"
#include "sparseae/error.hpp"
#include "sparseae/model.hpp"

namespace sparseae {

namespace {

// Far more parameters than any memory holds. Widths and layer sizes are checked against it before
// they are multiplied or summed, so that no configuration (a flag, a checkpoint) overflows them.
constexpr std::int64_t kMaxParameters = std::int64_t{1} << 40;

// Aligning every tensor to 32 floats keeps each one on its own 128-byte line, which cuBLAS's
// vectorised loads prefer.
constexpr std::int64_t kTensorAlignment = 32;

constexpr detail::Named<LatentSparsity> kLatentSparsities[] = {
    {LatentSparsity::none, "none"},
    {LatentSparsity::topk, "topk"},
    {LatentSparsity::batchtopk, "batchtopk"}};

std::int64_t aligned(std::int64_t offset) {
  return (offset + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
}

bool he_initialised(Activation activation) {
  return activation == Activation::relu || activation == Activation::leaky_relu;
}

// Uniform in (0, 1) from a counter, so every weight depends only on (seed, tensor, index).
double uniform_open(std::uint64_t stream, std::uint64_t counter) {
  return (static_cast<double>(math::mix64(stream ^ math::mix64(counter)) >> 11) + 0.5) *
         (1.0 / 9007199254740992.0);
}

}  // namespace

LatentSparsity parse_latent_sparsity(const std::string& name) {
  return detail::parse_named(kLatentSparsities, "latent sparsity", name);
}
const char* latent_sparsity_name(LatentSparsity sparsity) {
  return detail::name_of(kLatentSparsities, sparsity);
}

ModelConfig with_loss_heads(ModelConfig model, LossKind loss, const LossParams& params) {
  model.output_heads = output_heads(loss);
  model.feature_head = params.dispersion == Dispersion::feature ? dispersion_head(loss) : -1;
  model.offset_head = params.size_factors ? log_mean_head(loss) : -1;
  return model;
}

ModelLayout::ModelLayout(const ModelConfig& config) : config_(config) {
  require(config.input_dim > 0, "model: input width must be positive");
  require(config.latent > 0, "model: latent width must be positive");
  for (std::int64_t width : config.hidden)
    require(width > 0, "model: hidden widths must be positive");
  for (std::int64_t width : config.decoder_hidden)
    require(width > 0, "model: decoder widths must be positive");
  const auto too_wide = [](std::int64_t width) { return width > kMaxParameters; };
  require(!too_wide(config.input_dim) && !too_wide(config.latent) &&
              std::none_of(config.hidden.begin(), config.hidden.end(), too_wide) &&
              std::none_of(config.decoder_hidden.begin(), config.decoder_hidden.end(), too_wide),
          "model: a layer is wider than " + std::to_string(kMaxParameters) + " (2^40)");

  std::vector<std::int64_t> encoder{config.input_dim};
  encoder.insert(encoder.end(), config.hidden.begin(), config.hidden.end());
  encoder.push_back(config.latent);
  std::vector<std::int64_t> decoder{config.latent};
  if (config.mirror_decoder) {
    decoder.insert(decoder.end(), config.hidden.rbegin(), config.hidden.rend());
  } else {
    decoder.insert(decoder.end(), config.decoder_hidden.begin(), config.decoder_hidden.end());
  }
  require(config.output_heads >= 1, "model: output heads must be positive");
  require(config.feature_head < config.output_heads,
          "model: feature head " + std::to_string(config.feature_head) + " of " +
              std::to_string(config.output_heads) + " output heads");
  require(config.offset_head < config.output_heads,
          "model: offset head " + std::to_string(config.offset_head) + " of " +
              std::to_string(config.output_heads) + " output heads");
  require(config.feature_head < 0 || !config.tied_weights,
          "model: a per-feature head needs an untied output layer");
  require(!config.tied_weights || config.output_heads == 1,
          "model: tied weights need one output per column; this loss has " +
              std::to_string(config.output_heads) + " (drop --tied)");
  decoder.push_back(config.input_dim);
  require(!config.linear_skip || (encoder.size() > 2 && decoder.size() > 2),
          "model: a linear skip (PCA anchor) needs hidden layers on both sides of the latent");
  require(!config.linear_skip || !config.tied_weights,
          "model: a linear skip (PCA anchor) needs untied weights (drop --tied)");
  require(!config.latent_prior || config.latent_activation == Activation::identity,
          "model: a latent prior (rate-aware training) needs an identity latent (--latent-act "
          "identity); this one is " +
              std::string(activation_name(config.latent_activation)));
  if (config.latent_sparsity != LatentSparsity::none) {
    const std::string what =
        std::string("model: a ") + latent_sparsity_name(config.latent_sparsity) + " latent";
    require(config.latent_activation == Activation::relu,
            what + " selects before a relu (--latent-act " +
                latent_sparsity_name(config.latent_sparsity) + ":K); this latent is " +
                activation_name(config.latent_activation));
    require(config.latent_k >= 1 && config.latent_k <= config.latent,
            what + " keeps K of the " + std::to_string(config.latent) + " latents, K from 1 to " +
                std::to_string(config.latent) + ", not " + std::to_string(config.latent_k));
  }
  require(!config.tied_weights ||
              decoder == std::vector<std::int64_t>(encoder.rbegin(), encoder.rend()),
          "model: tied weights need a decoder that mirrors the encoder");

  std::int64_t offset = 0;
  auto add_layer = [&](std::int64_t in, std::int64_t out, Activation activation,
                       const LayerShape* tied_to, std::int64_t bias_only_begin,
                       std::int64_t bias_only_end) {
    require(in <= (kMaxParameters - offset) / out,
            "model: more than " + std::to_string(kMaxParameters) + " (2^40) parameters");
    LayerShape layer{in, out, activation, 0, 0, tied_to != nullptr};
    layer.bias_only_begin = bias_only_begin;
    layer.bias_only_end = bias_only_end;
    layer.weight_cols = out - (bias_only_end - bias_only_begin);
    if (tied_to != nullptr) {
      layer.weight_offset = tied_to->weight_offset;
    } else {
      layer.weight_offset = offset;
      offset = aligned(offset + in * layer.weight_cols);
    }
    layer.bias_offset = offset;
    offset = aligned(offset + out);
    layers_.push_back(layer);
  };
  // The skip's weights follow its layer's bias: skip_in x weight_cols.
  auto add_skip = [&](LayerShape& layer, std::int64_t source, std::int64_t skip_in) {
    require(skip_in <= (kMaxParameters - offset) / layer.weight_cols,
            "model: more than " + std::to_string(kMaxParameters) + " (2^40) parameters");
    layer.has_skip = true;
    layer.skip_source = source;
    layer.skip_in = skip_in;
    layer.skip_weight_offset = offset;
    offset = aligned(offset + skip_in * layer.weight_cols);
  };
  encoder_layers_ = encoder.size() - 1;
  for (std::size_t i = 0; i + 1 < encoder.size(); ++i) {
    const bool is_latent = i + 2 == encoder.size();
    add_layer(encoder[i], encoder[i + 1],
              is_latent ? config.latent_activation : config.hidden_activation, nullptr, 0, 0);
    if (is_latent && config.linear_skip)
      add_skip(layers_.back(), LayerShape::kSkipFromInput, config.input_dim);
  }
  for (std::size_t i = 0; i + 1 < decoder.size(); ++i) {
    const bool is_output = i + 2 == decoder.size();
    const LayerShape* tied = config.tied_weights ? &layers_[encoder_layers_ - 1 - i] : nullptr;
    // Copy: add_layer appends to layers_, which may move the element tied points to.
    const LayerShape tied_copy = tied != nullptr ? *tied : LayerShape{};
    const bool has_feature_head = is_output && config.feature_head >= 0;
    const std::int64_t feature_begin =
        has_feature_head ? config.feature_head * config.input_dim : 0;
    add_layer(decoder[i], is_output ? decoder[i + 1] * config.output_heads : decoder[i + 1],
              is_output ? config.output_activation : config.hidden_activation,
              tied != nullptr ? &tied_copy : nullptr, feature_begin,
              has_feature_head ? feature_begin + config.input_dim : 0);
    if (is_output && config.linear_skip)
      add_skip(layers_.back(), static_cast<std::int64_t>(encoder_layers_) - 1, config.latent);
  }
  if (config.latent_prior) {
    // The prior starts as the unit logistic at 0 (all zeros): a location 0 and a log-scale 0.
    prior_offset_ = offset;
    offset = aligned(offset + 2 * config.latent);
  }
  trained_parameter_count_ = offset;
  if (config.latent_sparsity == LatentSparsity::batchtopk) {
    threshold_offset_ = offset;
    offset = aligned(offset + 1);
  }
  parameter_count_ = offset;
}

std::int64_t ModelLayout::widest_layer() const {
  std::int64_t widest = 0;
  for (const LayerShape& layer : layers_) widest = std::max({widest, layer.in, layer.out});
  return widest;
}

std::string ModelLayout::describe() const {
  std::ostringstream text;
  text << layers_.front().in;
  for (const LayerShape& layer : layers_) text << "-" << layer.out;
  text << " (hidden " << activation_name(config_.hidden_activation) << ", latent "
       << activation_name(config_.latent_activation) << ", output "
       << activation_name(config_.output_activation) << (config_.tied_weights ? ", tied" : "")
       << (config_.output_heads > 1
               ? ", " + std::to_string(config_.output_heads) + " outputs per column"
               : std::string())
       << (config_.linear_skip ? ", linear skip" : "")
       << (config_.latent_prior ? ", latent prior" : "")
       << (config_.latent_sparsity != LatentSparsity::none
               ? std::string(", latent ") + latent_sparsity_name(config_.latent_sparsity) + ":" +
                     std::to_string(config_.latent_k)
               : std::string())
       << (config_.feature_head >= 0
               ? ", head " + std::to_string(config_.feature_head) + " per feature"
               : std::string())
       << "), " << parameter_count_ << " parameters";
  return text.str();
}

std::vector<float> ModelLayout::initial_parameters() const {
  std::vector<float> parameters(static_cast<std::size_t>(parameter_count_), 0.0f);
  if (threshold_offset_ >= 0)
    parameters[static_cast<std::size_t>(threshold_offset_)] = math::kThresholdUnset;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const LayerShape& layer = layers_[l];
    if (layer.has_skip) {
      // Xavier-uniform, from a stream of its own: a linear map. anchor_at_pca replaces it.
      const std::uint64_t stream = math::mix64(math::mix64(config_.seed * 0x100000001B3ull + l));
      const double limit = std::sqrt(6.0 / static_cast<double>(layer.skip_in + layer.weight_cols));
      float* skip = parameters.data() + layer.skip_weight_offset;
      for (std::int64_t i = 0; i < layer.skip_in * layer.weight_cols; ++i)
        skip[i] = static_cast<float>(
            limit * (2.0 * uniform_open(stream, static_cast<std::uint64_t>(i)) - 1.0));
    }
    if (layer.transposed_weight) continue;
    const std::uint64_t stream = math::mix64(config_.seed * 0x100000001B3ull + l);
    const std::int64_t count = layer.in * layer.weight_cols;
    float* weights = parameters.data() + layer.weight_offset;
    if (he_initialised(layer.activation)) {
      const double std_dev = std::sqrt(2.0 / static_cast<double>(layer.in));
      for (std::int64_t i = 0; i < count; ++i) {
        // Box-Muller on two independent uniforms of this element.
        const double u1 = uniform_open(stream, 2 * static_cast<std::uint64_t>(i));
        const double u2 = uniform_open(stream, 2 * static_cast<std::uint64_t>(i) + 1);
        weights[i] = static_cast<float>(std_dev * std::sqrt(-2.0 * std::log(u1)) *
                                        std::cos(6.283185307179586 * u2));
      }
    } else {
      const double limit = std::sqrt(6.0 / static_cast<double>(layer.in + layer.weight_cols));
      for (std::int64_t i = 0; i < count; ++i)
        weights[i] = static_cast<float>(
            limit * (2.0 * uniform_open(stream, static_cast<std::uint64_t>(i)) - 1.0));
    }
  }
  return parameters;
}

}  // namespace sparseae
