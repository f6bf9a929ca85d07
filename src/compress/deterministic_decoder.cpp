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
  parameters_ = Buffer<float>(backend, parameters);
  const auto& shapes = layout.layers();
  const std::size_t first = layout.encoder_layers();
  latent_width_ = shapes[first - 1].out;
  output_width_ = shapes.back().out;
  offset_head_ = layout.config().offset_head;
  const std::int64_t width = layout.config().input_dim;
  // A skip from the latent to the output layer (ModelConfig::linear_skip) makes that layer one
  // over the joined row [last hidden output | latent code], with its weights and the skip's
  // stacked: the same deterministic layer, over a longer input. The joined rows live in one
  // buffer whose last columns hold the codes, which the first decoder layer reads from there.
  const LayerShape& output = shapes.back();
  const bool skip = output.has_skip;
  joined_width_ = skip ? output.in + latent_width_ : 0;
  if (skip) {
    std::vector<float> stacked(static_cast<std::size_t>(joined_width_ * output.weight_cols));
    std::copy_n(parameters.begin() + output.weight_offset, output.in * output.weight_cols,
                stacked.begin());
    std::copy_n(parameters.begin() + output.skip_weight_offset, latent_width_ * output.weight_cols,
                stacked.begin() + output.in * output.weight_cols);
    stacked_weights_ = Buffer<float>(backend, stacked);
  }
  const std::int64_t latent_ld = skip ? joined_width_ : latent_width_;
  activations_.emplace_back(backend, static_cast<std::size_t>(batch_rows * latent_ld));
  // Where each layer reads and writes, as (buffer, first column, leading dimension).
  Io latent_io{0, skip ? output.in : 0, latent_ld};
  Io previous = latent_io;
  for (std::size_t l = first; l < shapes.size(); ++l) {
    const LayerShape& shape = shapes[l];
    const bool last = l + 1 == shapes.size();
    DeterministicLayer layer;
    layer.weights = parameters_.data() + shape.weight_offset;
    layer.bias = parameters_.data() + shape.bias_offset;
    layer.in = shape.in;
    layer.out = shape.out;
    layer.weight_cols = shape.weight_cols;
    layer.transposed_weight = shape.transposed_weight;
    layer.bias_only_begin = shape.bias_only_begin;
    layer.bias_only_end = shape.bias_only_end;
    if (last && offset_head_ >= 0) {
      layer.offset_begin = offset_head_ * width;
      layer.offset_end = layer.offset_begin + width;
    }
    layer.activation = shape.activation;
    Io in = previous;
    if (last && skip) {
      layer.weights = stacked_weights_.data();
      layer.in = joined_width_;
      in = Io{0, 0, joined_width_};
    }
    Io out;
    if (skip && l + 2 == shapes.size()) {
      out = Io{0, 0, joined_width_};  // the joined row's first columns
    } else {
      activations_.emplace_back(backend, static_cast<std::size_t>(batch_rows * shape.out));
      out = Io{activations_.size() - 1, 0, shape.out};
    }
    layers_.push_back(layer);
    inputs_.push_back(in);
    outputs_.push_back(out);
    previous = out;
  }
  offsets_ = Buffer<float>(backend, static_cast<std::size_t>(batch_rows));
  if (skip) staging_.resize(static_cast<std::size_t>(batch_rows * joined_width_), 0.0f);
}

void DeterministicDecoder::decode(const float* latents, std::int64_t rows, const float* log_offsets,
                                  float* outputs) {
  for (std::int64_t first = 0; first < rows; first += batch_rows_) {
    const std::int64_t count = std::min(batch_rows_, rows - first);
    if (joined_width_ == 0) {
      backend_->upload_bytes(activations_[0].data(), latents + first * latent_width_,
                             static_cast<std::size_t>(count * latent_width_) * sizeof(float));
    } else {
      // The codes into the joined rows' last columns; the columns before them are the last
      // hidden layer's, written below.
      for (std::int64_t r = 0; r < count; ++r)
        std::copy_n(latents + (first + r) * latent_width_, latent_width_,
                    staging_.begin() + r * joined_width_ + (joined_width_ - latent_width_));
      backend_->upload_bytes(activations_[0].data(), staging_.data(),
                             static_cast<std::size_t>(count * joined_width_) * sizeof(float));
    }
    const float* offsets = nullptr;
    if (takes_offsets()) {
      backend_->upload_bytes(offsets_.data(), log_offsets + first,
                             static_cast<std::size_t>(count) * sizeof(float));
      offsets = offsets_.data();
    }
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const DeterministicLayer& layer = layers_[l];
      const bool last = l + 1 == layers_.size();
      const Io& in = inputs_[l];
      const Io& out = outputs_[l];
      backend_->deterministic_layer(
          layer,
          ConstDenseView{activations_[in.buffer].data() + in.first_column, count, layer.in, in.ld},
          last ? offsets : nullptr,
          DenseView{activations_[out.buffer].data() + out.first_column, count, layer.out, out.ld});
    }
    const Io& result = outputs_.back();
    backend_->download_bytes(outputs + first * output_width_, activations_[result.buffer].data(),
                             static_cast<std::size_t>(count * output_width_) * sizeof(float));
  }
}

}  // namespace sparseae::lossless
