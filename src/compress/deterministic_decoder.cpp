#include "compress/deterministic_decoder.hpp"

#include <algorithm>
#include <string>

#include "sparseae/error.hpp"

namespace sparseae::lossless {

DeterministicDecoder::DeterministicDecoder(Backend& backend, const RunConfig& config,
                                           const std::vector<float>& parameters,
                                           std::int64_t batch_rows)
    : backend_(&backend), batch_rows_(batch_rows) {
  require(batch_rows > 0, "decoder: batch size must be positive");
  const ModelLayout layout(
      with_loss_heads(config.model, config.train.loss, config.train.loss_params));
  require(static_cast<std::int64_t>(parameters.size()) == layout.parameter_count(),
          "model: " + std::to_string(parameters.size()) + " parameters given, the model has " +
              std::to_string(layout.parameter_count()));
  require(!layout.config().linear_skip,
          "lossless coding: a model with a linear skip (--pca-anchor) cannot code yet; train one "
          "without it for sae compress");
  parameters_ = Buffer<float>(backend, parameters);
  const auto& shapes = layout.layers();
  const std::size_t first = layout.encoder_layers();
  latent_width_ = shapes[first - 1].out;
  output_width_ = shapes.back().out;
  offset_head_ = layout.config().offset_head;
  const std::int64_t width = layout.config().input_dim;
  activations_.emplace_back(backend, static_cast<std::size_t>(batch_rows * latent_width_));
  for (std::size_t l = first; l < shapes.size(); ++l) {
    const LayerShape& shape = shapes[l];
    DeterministicLayer layer;
    layer.weights = parameters_.data() + shape.weight_offset;
    layer.bias = parameters_.data() + shape.bias_offset;
    layer.in = shape.in;
    layer.out = shape.out;
    layer.weight_cols = shape.weight_cols;
    layer.transposed_weight = shape.transposed_weight;
    layer.bias_only_begin = shape.bias_only_begin;
    layer.bias_only_end = shape.bias_only_end;
    if (l + 1 == shapes.size() && offset_head_ >= 0) {
      layer.offset_begin = offset_head_ * width;
      layer.offset_end = layer.offset_begin + width;
    }
    layer.activation = shape.activation;
    layers_.push_back(layer);
    activations_.emplace_back(backend, static_cast<std::size_t>(batch_rows * shape.out));
  }
  offsets_ = Buffer<float>(backend, static_cast<std::size_t>(batch_rows));
}

void DeterministicDecoder::decode(const float* latents, std::int64_t rows, const float* log_offsets,
                                  float* outputs) {
  for (std::int64_t first = 0; first < rows; first += batch_rows_) {
    const std::int64_t count = std::min(batch_rows_, rows - first);
    backend_->upload_bytes(activations_[0].data(), latents + first * latent_width_,
                           static_cast<std::size_t>(count * latent_width_) * sizeof(float));
    const float* offsets = nullptr;
    if (takes_offsets()) {
      backend_->upload_bytes(offsets_.data(), log_offsets + first,
                             static_cast<std::size_t>(count) * sizeof(float));
      offsets = offsets_.data();
    }
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const DeterministicLayer& layer = layers_[l];
      const bool last = l + 1 == layers_.size();
      backend_->deterministic_layer(layer, activations_[l].matrix(count, layer.in),
                                    last ? offsets : nullptr,
                                    activations_[l + 1].matrix(count, layer.out));
    }
    backend_->download_bytes(outputs + first * output_width_, activations_.back().data(),
                             static_cast<std::size_t>(count * output_width_) * sizeof(float));
  }
}

}  // namespace sparseae::lossless
