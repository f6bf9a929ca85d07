#pragma once
// A trained model put to use on any backend: codes from counts, counts from codes, and how
// exactly the counts come back. A checkpoint trained on one backend runs on the other.
#include <cstdint>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"
#include "sparseae/metrics.hpp"
#include "sparseae/network.hpp"

namespace sparseae {

class TrainedModel {
 public:
  TrainedModel(Backend& backend, const RunConfig& config, const std::vector<float>& parameters,
               std::int64_t batch_rows = 4096);

  const RunConfig& config() const { return config_; }
  std::int64_t input_width() const { return config_.model.input_dim; }
  std::int64_t latent_width() const { return config_.model.latent; }

  // Latent codes of the rows of counts (raw counts, rows x input width).
  HostDense encode(const HostCsr& counts);
  // The model's reconstruction in data units, before rounding.
  HostDense reconstruct(const HostCsr& counts);
  // Reconstruction from latent codes (rows x latent width), in data units.
  HostDense decode(const HostDense& latents);
  // How this model's outputs become counts unless asked otherwise: default_decode of its loss.
  DecodeMode default_decode() const { return sparseae::default_decode(config_.train.loss); }
  // Metrics of the reconstruction of counts against themselves, with counts decoded by decode
  // (default: default_decode()). Throws Error, before running the model, when the loss cannot
  // decode that way (check_decode).
  ReconstructionMetrics evaluate(const HostCsr& counts);
  ReconstructionMetrics evaluate(const HostCsr& counts, DecodeMode decode);
  // The same, and where detail is not null, the per-column and per-row detail of the same
  // decoded counts (MetricsAccumulator::collect_detail), rows in the order of counts.
  ReconstructionMetrics evaluate(const HostCsr& counts, DecodeMode decode,
                                 ReconstructionDetail* detail);
  // A reconstruction or decoding in data units (what reconstruct and decode return) as counts,
  // decoded by decode (default: default_decode()); the zeros dropped.
  HostCsr to_counts(const HostDense& reconstruction) const;
  HostCsr to_counts(const HostDense& reconstruction, DecodeMode decode) const;

 private:
  // Runs the network over counts batch by batch; visit(first_row, count) sees each batch.
  template <typename Visit>
  void for_each_batch(const HostCsr& counts, std::size_t end_layer, Visit visit);
  HostDense to_data_units(HostDense outputs) const;

  Backend* backend_;
  RunConfig config_;
  Network network_;
};

// A reconstruction in data units of a model trained with loss, as counts decoded by decode
// (math::count_from_value); the zeros dropped. Throws Error when check_decode does.
HostCsr decode_to_counts(const HostDense& reconstruction, LossKind loss, DecodeMode decode);
// Rounds a reconstruction to counts (nearest non-negative integer) and keeps the non-zeros: the
// round decode, whatever the loss.
HostCsr round_to_counts(const HostDense& reconstruction);

}  // namespace sparseae
