#pragma once
// A ModelLayout placed on a backend: the flat parameter and gradient buffers, and every layer's
// output for a batch of up to max_batch rows, allocated once. Forward and backward allocate
// nothing and never wait for the device.
#include <cstdint>
#include <functional>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/matrix.hpp"
#include "sparseae/model.hpp"

namespace sparseae {

class Network {
 public:
  Network(Backend& backend, const ModelLayout& layout, std::int64_t max_batch);

  const ModelLayout& layout() const { return layout_; }
  Backend& backend() const { return *backend_; }
  std::int64_t max_batch() const { return max_batch_; }
  Buffer<float>& parameters() { return parameters_; }
  Buffer<float>& gradients() { return gradients_; }
  const Buffer<float>& parameters() const { return parameters_; }

  // Runs the layers [0, end_layer) on a batch (end_layer 0 means all). The first layer reads the
  // sparse batch through SpMM, or the dense one through GEMM. output_log_offsets (backend memory,
  // one per row, or null) is added to the pre-activation of the output layer's offset head
  // (ModelConfig::offset_head): the rows' log size factors. nnz_for_choice: the non-zeros for
  // which the first layer chooses between spmm and densifying (first_layer_densified); -1 means
  // batch.nnz. A captured step, whose batch.nnz is only a bound, passes its typical batch's.
  void forward(CsrView batch, std::size_t end_layer = 0, const float* output_log_offsets = nullptr,
               std::int64_t nnz_for_choice = -1);
  void forward(ConstDenseView batch, std::size_t end_layer = 0,
               const float* output_log_offsets = nullptr);
  // Runs the decoder on contiguous latent codes (rows x latent): reconstruction from a code.
  void decode(ConstDenseView latent);
  // Runs the decoder again on the latent layer's output as it now stands (latent(), which a
  // caller may have changed since the last forward), for the same rows. output_log_offsets: as
  // in forward.
  void run_decoder(const float* output_log_offsets = nullptr);

  // Output of layer l for the last forward's rows.
  DenseView activation(std::size_t layer) const;
  DenseView output() const { return activation(layout_.layers().size() - 1); }
  DenseView latent() const { return activation(layout_.encoder_layers() - 1); }
  std::int64_t batch_rows() const { return rows_; }
  // Whether the last forward on a sparse batch densified it for the first layer (the density of
  // its nnz_for_choice non-zeros at or above Backend::dense_first_layer_density) rather than
  // multiplying it through spmm.
  bool first_layer_densified() const { return densified_; }
  // How the dense layers run their forward (LayerForward; separate until set): every layer after
  // the first, and the first on a dense batch. A layer with per-row offsets or bias-only columns
  // always runs separate.
  void set_layer_forward(LayerForward mode) { layer_forward_ = mode; }

  // A model with a latent prior (ModelConfig::latent_prior) quantises its latent layer's outputs
  // in every forward: rounded to integer codes while noise_seed is null (the default: how the
  // model is used), or with the training noise drawn from the seed in backend memory
  // (Backend::quantize_latents), which the trainer sets around each step.
  void set_latent_noise(const std::uint64_t* noise_seed) { latent_noise_seed_ = noise_seed; }
  // A BatchTopK latent (ModelConfig::latent_sparsity) selects among the batch and moves its
  // threshold while training (set by the trainer around each step), and keeps what lies above
  // the threshold otherwise (the default: how the model is used, validation included). TopK
  // selects per row either way.
  void set_latent_training(bool training) { latent_training_ = training; }
  // AuxK for a TopK or BatchTopK latent (TrainConfig::aux_k): every training forward keeps the
  // latent's values before the selection and counts, per latent, the training batches since it
  // last fired (Backend::latent_dead_steps); the backward after it sends the latent layer, in
  // each row, aux_weight times the loss's gradient on the aux_k latents dead for more than
  // dead_after batches with the largest of those values (Backend::auxk_backward). Allocates its
  // buffers here, once; the counters start at 0.
  void enable_auxk(std::int64_t aux_k, float aux_weight, std::int32_t dead_after);
  // The latents' dead-step counters (backend memory; empty without AuxK).
  Buffer<std::int32_t>& dead_steps() { return dead_steps_; }
  const Buffer<std::int32_t>& dead_steps() const { return dead_steps_; }
  // Rescales the decoder's dictionary to unit norm (TrainConfig::decoder_norm): latent j's
  // vector, its weights into the first decoder layer, is row j of that layer's latent x out
  // weights (the column of W_dec in Gao et al.'s x = W_dec z convention), and each row gets L2
  // norm 1 (Backend::unit_norm_rows; a row of zeros stays zeros). Allocates nothing. Needs the
  // decoder's own weights: a tied decoder reads the encoder's, transposed.
  void normalize_decoder_columns();

  // Where the caller writes d(loss)/d(output) before backward().
  DenseView output_gradient() const;

  // Called during backward with layer l's output and d(loss)/d(output of l), before the
  // activation's derivative is applied: where activity penalties add their gradient.
  using ActivationHook =
      std::function<void(std::size_t layer, ConstDenseView output, DenseView output_gradient)>;

  // d(loss)/d(latent code) for the gradient written in output_gradient(), through the decoder
  // alone (skips from the latent included): rows x latent, valid until the next backward.
  // Computes no parameter gradient: gradients() is left as it was.
  DenseView latent_gradient();

  // Fills gradients() with d(loss)/d(parameters) for the batch of the last full forward.
  void backward(CsrView batch, const ActivationHook& hook = {});
  void backward(ConstDenseView batch, const ActivationHook& hook = {});

 private:
  template <typename Input>
  void forward_impl(const Input& batch, std::size_t end_layer, const float* output_log_offsets);
  template <typename Input>
  void backward_impl(const Input& batch, const ActivationHook& hook);
  void first_layer_product(CsrView batch, ConstDenseView weights, DenseView out);
  void first_layer_product(ConstDenseView batch, ConstDenseView weights, DenseView out);
  void first_layer_weight_gradient(CsrView batch, ConstDenseView dz, DenseView dw);
  void first_layer_weight_gradient(ConstDenseView batch, ConstDenseView dz, DenseView dw);
  // batch: the network's input, which an input skip reads (null in decode()).
  template <typename Input>
  void run_layer(std::size_t layer, const Input* batch, const float* output_log_offsets = nullptr);
  // The latent prior's quantisation (set_latent_noise) after layer's forward, if it is the latent.
  void quantize_if_latent(std::size_t layer);
  // The latent code's selection (ModelConfig::latent_sparsity) after layer's forward, if it is
  // the latent.
  void select_if_latent(std::size_t layer);
  // Whether run_layer(layer) of a training forward keeps the layer's pre-activations in
  // pre_selection_ for AuxK: the latent layer's, when AuxK is on.
  bool keeps_pre_selection(std::size_t layer) const;
  // out += batch·w, through the first layer's choice of spmm or its densified batch.
  void add_input_product(CsrView batch, ConstDenseView w, DenseView out);
  void add_input_product(ConstDenseView batch, ConstDenseView w, DenseView out);
  // A skipping layer's backward: its skip weights' gradient from dz (its pre-activation's).
  template <typename Input>
  void skip_backward(const Input& batch, const LayerShape& layer, DenseView dz);
  // Adds the skips' share to the gradient of layer source's output (see ModelConfig::linear_skip).
  void add_skip_gradients(std::size_t source);
  DenseView skip_weights(const Buffer<float>& buffer, const LayerShape& layer) const;
  // The output columns of a layer that its weights compute, as blocks: output columns
  // [first_output, first_output + count) read weight columns [first_weight, ...). All of them
  // but the bias-only range (LayerShape::bias_only_begin/end).
  struct WeightedColumns {
    std::int64_t first_output;
    std::int64_t first_weight;
    std::int64_t count;
  };
  // At most two (before and after the bias-only range), held in place: the step allocates nothing.
  struct WeightedBlocks {
    WeightedColumns blocks[2];
    int count = 0;
    const WeightedColumns* begin() const { return blocks; }
    const WeightedColumns* end() const { return blocks + count; }
  };
  static WeightedBlocks weighted_columns(const LayerShape& layer);
  DenseView weights(const Buffer<float>& buffer, const LayerShape& layer) const;
  DenseView gradient_scratch(std::size_t index, std::int64_t cols) const;
  DenseView densified_view() const;

  Backend* backend_;
  ModelLayout layout_;
  std::int64_t max_batch_;
  std::int64_t rows_ = 0;
  Buffer<float> parameters_;
  Buffer<float> gradients_;
  std::vector<Buffer<float>> activations_;
  Buffer<float> gradient_scratch_[2];
  // The output layer's gradient, when a skip from the latent needs it after the decoder's hidden
  // layers have used both scratch buffers; empty otherwise (the output then uses the scratch).
  Buffer<float> output_gradient_;
  // max_batch x input columns, where the backend may densify a batch and that stays small
  // (kMaxDensifiedBytes); empty otherwise, and every sparse batch goes through spmm.
  Buffer<float> densified_batch_;
  bool densified_ = false;
  LayerForward layer_forward_ = LayerForward::separate;
  std::int64_t nnz_for_choice_ = 0;  // of the last forward on a sparse batch
  const std::uint64_t* latent_noise_seed_ = nullptr;
  bool latent_training_ = false;
  std::int64_t aux_k_ = 0;  // AuxK (enable_auxk); 0: off
  float aux_weight_ = 0.0f;
  std::int32_t aux_dead_after_ = 0;
  // max_batch x latent: the latent layer's pre-activations (before its relu and the selection),
  // which AuxK ranks the dead latents by: after the relu, every dead latent with a negative one
  // would tie at 0 and the lowest columns would always be the ones chosen.
  Buffer<float> pre_selection_;
  Buffer<std::int32_t> dead_steps_;
  // Whether the last forward was a training one that filled pre_selection_: the backward then
  // runs AuxK's.
  bool auxk_forward_ = false;
};

}  // namespace sparseae
