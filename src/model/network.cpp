#include "sparseae/network.hpp"

#include <cmath>
#include <string>
#include <type_traits>

#include "sparseae/error.hpp"

namespace sparseae {

Network::Network(Backend& backend, const ModelLayout& layout, std::int64_t max_batch)
    : backend_(&backend),
      layout_(layout),
      max_batch_(max_batch),
      parameters_(backend, layout.initial_parameters()),
      gradients_(backend, static_cast<std::size_t>(layout.parameter_count())) {
  require(max_batch > 0, "network: batch size must be positive");
  for (const LayerShape& layer : layout_.layers())
    activations_.emplace_back(backend, static_cast<std::size_t>(max_batch * layer.out));
  for (auto& scratch : gradient_scratch_)
    scratch = Buffer<float>(backend, static_cast<std::size_t>(max_batch * layout_.widest_layer()));
  gradients_.fill_zero();
  // A skip from the latent to the output layer sends the output's gradient back to the latent,
  // after the decoder's hidden layers have reused both scratch buffers: it keeps its own.
  const LayerShape& output_layer = layout_.layers().back();
  if (output_layer.has_skip && output_layer.skip_source != LayerShape::kSkipFromInput)
    output_gradient_ =
        Buffer<float>(backend, static_cast<std::size_t>(max_batch * output_layer.out));
  // Densifying pays only on dense enough batches; its buffer is kept only where it is small.
  constexpr std::int64_t kMaxDensifiedBytes = std::int64_t{64} << 20;
  const std::int64_t densified_floats = max_batch * layout_.config().input_dim;
  if (std::isfinite(backend.dense_first_layer_density()) &&
      densified_floats * static_cast<std::int64_t>(sizeof(float)) <= kMaxDensifiedBytes)
    densified_batch_ = Buffer<float>(backend, static_cast<std::size_t>(densified_floats));
}

DenseView Network::densified_view() const {
  return {densified_batch_.data(), rows_, layout_.config().input_dim};
}

DenseView Network::activation(std::size_t layer) const {
  return {activations_[layer].data(), rows_, layout_.layers()[layer].out};
}

DenseView Network::weights(const Buffer<float>& buffer, const LayerShape& layer) const {
  // A tied layer reads the encoder's in x out weights as its own out x in matrix.
  return layer.transposed_weight
             ? DenseView{buffer.data() + layer.weight_offset, layer.out, layer.in}
             : DenseView{buffer.data() + layer.weight_offset, layer.in, layer.weight_cols};
}

Network::WeightedBlocks Network::weighted_columns(const LayerShape& layer) {
  WeightedBlocks weighted;
  if (layer.bias_only_begin > 0) weighted.blocks[weighted.count++] = {0, 0, layer.bias_only_begin};
  const std::int64_t after =
      layer.bias_only_end == layer.bias_only_begin ? layer.bias_only_begin : layer.bias_only_end;
  if (after < layer.out)
    weighted.blocks[weighted.count++] = {after, layer.bias_only_begin, layer.out - after};
  return weighted;
}

namespace {

DenseView column_block(DenseView m, std::int64_t first, std::int64_t count) {
  return {m.data + first, m.rows, count, m.ld};
}

}  // namespace

DenseView Network::gradient_scratch(std::size_t index, std::int64_t cols) const {
  if (index + 1 == layout_.layers().size() && !output_gradient_.empty())
    return {output_gradient_.data(), rows_, cols};
  return {gradient_scratch_[index % 2].data(), rows_, cols};
}

DenseView Network::skip_weights(const Buffer<float>& buffer, const LayerShape& layer) const {
  return {buffer.data() + layer.skip_weight_offset, layer.skip_in, layer.weight_cols};
}

DenseView Network::output_gradient() const {
  return gradient_scratch(layout_.layers().size() - 1, layout_.layers().back().out);
}

void Network::first_layer_product(CsrView batch, ConstDenseView w, DenseView out) {
  const double entries = static_cast<double>(batch.rows) * static_cast<double>(batch.cols);
  densified_ =
      !densified_batch_.empty() && entries > 0.0 &&
      static_cast<double>(nnz_for_choice_) >= backend_->dense_first_layer_density() * entries;
  if (!densified_) {
    backend_->spmm(Transpose::no, 1.0f, batch, w, 0.0f, out);
    return;
  }
  backend_->csr_to_dense(batch, densified_view());
  backend_->gemm(Transpose::no, Transpose::no, 1.0f, densified_view(), w, 0.0f, out);
}
void Network::first_layer_product(ConstDenseView batch, ConstDenseView w, DenseView out) {
  densified_ = false;
  backend_->gemm(Transpose::no, Transpose::no, 1.0f, batch, w, 0.0f, out);
}
void Network::add_input_product(CsrView batch, ConstDenseView w, DenseView out) {
  // The first layer's choice: its densified batch is still in place.
  if (densified_)
    add_input_product(ConstDenseView(densified_view()), w, out);
  else
    backend_->spmm(Transpose::no, 1.0f, batch, w, 1.0f, out);
}
void Network::add_input_product(ConstDenseView batch, ConstDenseView w, DenseView out) {
  backend_->gemm(Transpose::no, Transpose::no, 1.0f, batch, w, 1.0f, out);
}
void Network::first_layer_weight_gradient(CsrView batch, ConstDenseView dz, DenseView dw) {
  // The forward's choice: its densified batch is still in place.
  if (densified_)
    first_layer_weight_gradient(ConstDenseView(densified_view()), dz, dw);
  else
    backend_->spmm(Transpose::yes, 1.0f, batch, dz, 1.0f, dw);
}
void Network::first_layer_weight_gradient(ConstDenseView batch, ConstDenseView dz, DenseView dw) {
  backend_->gemm(Transpose::yes, Transpose::no, 1.0f, batch, dz, 1.0f, dw);
}

template <typename Input>
void Network::run_layer(std::size_t l, const Input* batch, const float* output_log_offsets) {
  const LayerShape& layer = layout_.layers()[l];
  const DenseView out = activation(l);
  const float* bias = parameters_.data() + layer.bias_offset;
  const DenseView w = weights(parameters_, layer);
  const std::int64_t offset_head = layout_.config().offset_head;
  const bool offsets =
      output_log_offsets != nullptr && offset_head >= 0 && l + 1 == layout_.layers().size();
  const bool keeps_pre = keeps_pre_selection(l);
  if (layer_forward_ == LayerForward::fused && !offsets && !layer.has_skip && !keeps_pre &&
      layer.bias_only_end == layer.bias_only_begin) {
    backend_->gemm_bias_activation(layer.activation, Transpose::no,
                                   layer.transposed_weight ? Transpose::yes : Transpose::no,
                                   activation(l - 1), w, bias, out);
    return;
  }
  if (layer.transposed_weight) {
    backend_->gemm(Transpose::no, Transpose::yes, 1.0f, activation(l - 1), w, 0.0f, out);
  } else {
    for (const WeightedColumns& block : weighted_columns(layer))
      backend_->gemm(Transpose::no, Transpose::no, 1.0f, activation(l - 1),
                     column_block(w, block.first_weight, block.count), 0.0f,
                     column_block(out, block.first_output, block.count));
  }
  if (layer.has_skip) {
    const DenseView skip = skip_weights(parameters_, layer);
    if (layer.skip_source == LayerShape::kSkipFromInput) {
      if (batch == nullptr)
        throw Error("network: the input skip runs in a forward from the input only");
      add_input_product(*batch, skip, out);
    } else {
      const DenseView source = activation(static_cast<std::size_t>(layer.skip_source));
      for (const WeightedColumns& block : weighted_columns(layer))
        backend_->gemm(Transpose::no, Transpose::no, 1.0f, source,
                       column_block(skip, block.first_weight, block.count), 1.0f,
                       column_block(out, block.first_output, block.count));
    }
  }
  if (offsets) {
    const std::int64_t width = layout_.config().input_dim;
    backend_->add_row_offsets(column_block(out, offset_head * width, width), output_log_offsets);
  }
  const DenseView pre{pre_selection_.data(), keeps_pre ? out.rows : 0, keeps_pre ? out.cols : 0};
  for (const WeightedColumns& block : weighted_columns(layer)) {
    const DenseView out_block = column_block(out, block.first_output, block.count);
    if (keeps_pre)
      backend_->bias_activation_forward(Activation::identity, out_block, bias + block.first_output,
                                        column_block(pre, block.first_output, block.count));
    backend_->bias_activation_forward(layer.activation, out_block, bias + block.first_output,
                                      out_block);
  }
  const std::int64_t bias_only = layer.bias_only_end - layer.bias_only_begin;
  if (bias_only == 0) return;
  if (keeps_pre)
    backend_->bias_activation_forward(Activation::identity, ConstDenseView{},
                                      bias + layer.bias_only_begin,
                                      column_block(pre, layer.bias_only_begin, bias_only));
  backend_->bias_activation_forward(layer.activation, ConstDenseView{},
                                    bias + layer.bias_only_begin,
                                    column_block(out, layer.bias_only_begin, bias_only));
}

bool Network::keeps_pre_selection(std::size_t layer) const {
  return latent_training_ && aux_k_ > 0 && layer + 1 == layout_.encoder_layers();
}

template <typename Input>
void Network::forward_impl(const Input& batch, std::size_t end_layer,
                           const float* output_log_offsets) {
  const auto& layers = layout_.layers();
  // Not require(): these run on every step, and its message would be built each time.
  if (batch.rows > max_batch_)
    throw Error("network: batch of " + std::to_string(batch.rows) + " rows exceeds the " +
                std::to_string(max_batch_) + " it was sized for");
  if (batch.cols != layers.front().in)
    throw Error("network: input has " + std::to_string(batch.cols) +
                " columns, the model expects " + std::to_string(layers.front().in));
  rows_ = batch.rows;
  const std::size_t end = end_layer == 0 ? layers.size() : end_layer;
  const DenseView first = activation(0);
  const float* first_bias = parameters_.data() + layers.front().bias_offset;
  bool first_done = false;
  const bool first_keeps_pre = keeps_pre_selection(0);  // a latent with no hidden layer before it
  if constexpr (std::is_same_v<Input, ConstDenseView>) {
    if (layer_forward_ == LayerForward::fused && !first_keeps_pre) {
      densified_ = false;
      backend_->gemm_bias_activation(layers.front().activation, Transpose::no, Transpose::no, batch,
                                     weights(parameters_, layers.front()), first_bias, first);
      first_done = true;
    }
  }
  if (!first_done) {
    first_layer_product(batch, weights(parameters_, layers.front()), first);
    if (first_keeps_pre)
      backend_->bias_activation_forward(Activation::identity, first, first_bias,
                                        DenseView{pre_selection_.data(), first.rows, first.cols});
    backend_->bias_activation_forward(layers.front().activation, first, first_bias, first);
  }
  quantize_if_latent(0);
  select_if_latent(0);
  for (std::size_t l = 1; l < end; ++l) {
    run_layer(l, &batch, output_log_offsets);
    quantize_if_latent(l);
    select_if_latent(l);
  }
}

void Network::select_if_latent(std::size_t layer) {
  const ModelConfig& config = layout_.config();
  if (config.latent_sparsity == LatentSparsity::none || layer + 1 != layout_.encoder_layers())
    return;
  const DenseView z = activation(layer);
  auxk_forward_ = keeps_pre_selection(layer);  // the layer's forward filled pre_selection_
  if (config.latent_sparsity == LatentSparsity::topk) {
    backend_->topk_rows(config.latent_k, z);
  } else {
    float* threshold = parameters_.data() + layout_.threshold_offset();
    if (latent_training_)
      backend_->batch_topk(config.latent_k, z, threshold);
    else
      backend_->threshold_latents(z, threshold);
  }
  if (auxk_forward_) backend_->latent_dead_steps(z, dead_steps_.data());
}

void Network::enable_auxk(std::int64_t aux_k, float aux_weight, std::int32_t dead_after) {
  const ModelConfig& config = layout_.config();
  require(config.latent_sparsity != LatentSparsity::none,
          "network: AuxK revives the dead latents of a TopK or BatchTopK code; this latent has "
          "no selection");
  require(aux_k >= 1 && aux_k <= config.latent,
          "network: AuxK's k = " + std::to_string(aux_k) + " is outside [1, " +
              std::to_string(config.latent) + "], the latents");
  aux_k_ = aux_k;
  aux_weight_ = aux_weight;
  aux_dead_after_ = dead_after;
  pre_selection_ = Buffer<float>(*backend_, static_cast<std::size_t>(max_batch_ * config.latent));
  dead_steps_ = Buffer<std::int32_t>(*backend_, static_cast<std::size_t>(config.latent));
  dead_steps_.fill_zero();
}

void Network::normalize_decoder_columns() {
  const LayerShape& first_decoder = layout_.layers()[layout_.encoder_layers()];
  require(!first_decoder.transposed_weight,
          "network: decoder normalisation needs the decoder's own weights; a tied decoder "
          "reads the encoder's");
  backend_->unit_norm_rows(weights(parameters_, first_decoder));
}

void Network::quantize_if_latent(std::size_t layer) {
  if (layout_.config().latent_prior && layer + 1 == layout_.encoder_layers())
    backend_->quantize_latents(activation(layer), latent_noise_seed_);
}

void Network::forward(CsrView batch, std::size_t end_layer, const float* output_log_offsets,
                      std::int64_t nnz_for_choice) {
  nnz_for_choice_ = nnz_for_choice < 0 ? batch.nnz : nnz_for_choice;
  forward_impl(batch, end_layer, output_log_offsets);
}
void Network::forward(ConstDenseView batch, std::size_t end_layer,
                      const float* output_log_offsets) {
  forward_impl(batch, end_layer, output_log_offsets);
}

void Network::decode(ConstDenseView latent) {
  const std::size_t latent_layer = layout_.encoder_layers() - 1;
  require(latent.rows <= max_batch_, "network: batch exceeds the size it was sized for");
  require(latent.cols == layout_.layers()[latent_layer].out,
          "network: codes have " + std::to_string(latent.cols) + " columns, the model's latent " +
              std::to_string(layout_.layers()[latent_layer].out));
  require(latent.ld == latent.cols, "network: decode needs contiguous codes");
  rows_ = latent.rows;
  backend_->copy_bytes(activation(latent_layer).data, latent.data,
                       sizeof(float) * static_cast<std::size_t>(latent.size()));
  run_decoder();
}

void Network::run_decoder(const float* output_log_offsets) {
  for (std::size_t l = layout_.encoder_layers(); l < layout_.layers().size(); ++l)
    run_layer<ConstDenseView>(l, nullptr, output_log_offsets);
}

DenseView Network::latent_gradient() {
  const auto& layers = layout_.layers();
  const std::size_t latent_layer = layout_.encoder_layers() - 1;
  for (std::size_t l = layers.size() - 1; l > latent_layer; --l) {
    const LayerShape& layer = layers[l];
    const DenseView dz = gradient_scratch(l, layer.out);
    backend_->activation_backward(layer.activation, activation(l), dz, dz, nullptr);
    const DenseView w = weights(parameters_, layer);
    const DenseView din = gradient_scratch(l - 1, layer.in);
    if (layer.transposed_weight) {
      backend_->gemm(Transpose::no, Transpose::no, 1.0f, dz, w, 0.0f, din);
    } else {
      // The bias-only columns have no weights: they send nothing back.
      float beta = 0.0f;
      for (const WeightedColumns& block : weighted_columns(layer)) {
        backend_->gemm(Transpose::no, Transpose::yes, 1.0f,
                       column_block(dz, block.first_output, block.count),
                       column_block(w, block.first_weight, block.count), beta, din);
        beta = 1.0f;
      }
    }
    add_skip_gradients(l - 1);
  }
  return gradient_scratch(latent_layer, layers[latent_layer].out);
}

template <typename Input>
void Network::backward_impl(const Input& batch, const ActivationHook& hook) {
  const auto& layers = layout_.layers();
  if (batch.rows != rows_)
    throw Error("network: backward on a batch other than the last forward's");
  gradients_.fill_zero();
  for (std::size_t l = layers.size(); l-- > 0;) {
    const LayerShape& layer = layers[l];
    const DenseView dz = gradient_scratch(l, layer.out);
    if (hook) hook(l, activation(l), dz);
    if (auxk_forward_ && l + 1 == layout_.encoder_layers())
      backend_->auxk_backward(aux_k_, aux_weight_, aux_dead_after_, dead_steps_.data(),
                              DenseView{pre_selection_.data(), rows_, layer.out}, activation(l), dz,
                              gradients_.data() + layer.bias_offset);
    else
      backend_->activation_backward(layer.activation, activation(l), dz, dz,
                                    gradients_.data() + layer.bias_offset);
    if (layer.has_skip) skip_backward(batch, layer, dz);
    const DenseView dw = weights(gradients_, layer);
    if (l == 0) {
      first_layer_weight_gradient(batch, dz, dw);
      break;
    }
    if (layer.transposed_weight) {
      backend_->gemm(Transpose::yes, Transpose::no, 1.0f, dz, activation(l - 1), 1.0f, dw);
      backend_->gemm(Transpose::no, Transpose::no, 1.0f, dz, weights(parameters_, layer), 0.0f,
                     gradient_scratch(l - 1, layer.in));
      continue;
    }
    // The bias-only columns have no weights: their dz reaches the bias gradient alone.
    const DenseView w = weights(parameters_, layer);
    float beta = 0.0f;
    for (const WeightedColumns& block : weighted_columns(layer)) {
      const DenseView dz_block = column_block(dz, block.first_output, block.count);
      backend_->gemm(Transpose::yes, Transpose::no, 1.0f, activation(l - 1), dz_block, 1.0f,
                     column_block(dw, block.first_weight, block.count));
      backend_->gemm(Transpose::no, Transpose::yes, 1.0f, dz_block,
                     column_block(w, block.first_weight, block.count), beta,
                     gradient_scratch(l - 1, layer.in));
      beta = 1.0f;
    }
    add_skip_gradients(l - 1);
  }
}

template <typename Input>
void Network::skip_backward(const Input& batch, const LayerShape& layer, DenseView dz) {
  const DenseView dskip = skip_weights(gradients_, layer);
  if (layer.skip_source == LayerShape::kSkipFromInput) {
    first_layer_weight_gradient(batch, dz, dskip);
    return;
  }
  const DenseView source = activation(static_cast<std::size_t>(layer.skip_source));
  for (const WeightedColumns& block : weighted_columns(layer))
    backend_->gemm(Transpose::yes, Transpose::no, 1.0f, source,
                   column_block(dz, block.first_output, block.count), 1.0f,
                   column_block(dskip, block.first_weight, block.count));
}

void Network::add_skip_gradients(std::size_t source) {
  // The gradient of layer source's output, just written by the layer after it, also takes what
  // every skip reading that output sends back: dz·Sᵀ of the skipping layer, whose dz is still
  // held (only the output layer skips from a layer, and its gradient has a buffer of its own).
  const auto& layers = layout_.layers();
  for (std::size_t l = source + 2; l < layers.size(); ++l) {
    const LayerShape& layer = layers[l];
    if (!layer.has_skip || layer.skip_source != static_cast<std::int64_t>(source)) continue;
    const DenseView dz = gradient_scratch(l, layer.out);
    const DenseView skip = skip_weights(parameters_, layer);
    for (const WeightedColumns& block : weighted_columns(layer))
      backend_->gemm(Transpose::no, Transpose::yes, 1.0f,
                     column_block(dz, block.first_output, block.count),
                     column_block(skip, block.first_weight, block.count), 1.0f,
                     gradient_scratch(source, layers[source].out));
  }
}

void Network::backward(CsrView batch, const ActivationHook& hook) { backward_impl(batch, hook); }
void Network::backward(ConstDenseView batch, const ActivationHook& hook) {
  backward_impl(batch, hook);
}

}  // namespace sparseae
