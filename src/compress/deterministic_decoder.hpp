#pragma once
// Lossless mode's decoder: the decoder half of a trained network run layer by layer through
// Backend::deterministic_layer, so that its outputs for a latent code are the same bits on every
// backend and for every batch size (src/math/deterministic_decode.hpp). They differ from the
// training network's outputs (cuBLAS / OpenBLAS products, expf) in the last bits, which costs
// nothing but a sliver of code length: compress and decompress both use this one.
#include <cstdint>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/model.hpp"

namespace sparseae::lossless {

class DeterministicDecoder {
 public:
  // config: a run configuration as a checkpoint holds it (the output heads are set from its
  // loss here); parameters: the model's flat parameters.
  DeterministicDecoder(Backend& backend, const RunConfig& config,
                       const std::vector<float>& parameters, std::int64_t batch_rows);

  std::int64_t latent_width() const { return latent_width_; }
  // K * input width: the outputs of one row, head-major.
  std::int64_t output_width() const { return output_width_; }
  // Whether the outputs depend on a per-row log offset (the model uses size factors).
  bool takes_offsets() const { return offset_head_ >= 0; }

  // outputs (host, rows x output_width()) of latents (host, rows x latent_width()), with
  // log_offsets (host, one per row) added to the log-mean head when takes_offsets(), else
  // ignored (may be null).
  void decode(const float* latents, std::int64_t rows, const float* log_offsets, float* outputs);

 private:
  Backend* backend_;
  std::int64_t batch_rows_;
  std::int64_t latent_width_ = 0;
  std::int64_t output_width_ = 0;
  std::int64_t offset_head_ = -1;
  // A layer's input or output: columns [first_column, ...) of activations_[buffer], rows ld apart.
  struct Io {
    std::size_t buffer = 0;
    std::int64_t first_column = 0;
    std::int64_t ld = 0;
  };
  Buffer<float> parameters_;
  std::vector<DeterministicLayer> layers_;
  std::vector<Io> inputs_;
  std::vector<Io> outputs_;
  // The latent batch (for a model with a linear skip: the joined rows [last hidden | code]), then
  // each layer's output that is not written into the joined rows.
  std::vector<Buffer<float>> activations_;
  Buffer<float> offsets_;
  // Linear skip only: the output layer's weights stacked over the skip's, the joined rows' width,
  // and the host rows the codes are placed into before their upload.
  Buffer<float> stacked_weights_;
  std::int64_t joined_width_ = 0;
  std::vector<float> staging_;
};

}  // namespace sparseae::lossless
