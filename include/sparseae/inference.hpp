#pragma once
// A trained model put to use on any backend: codes from counts, counts from codes, and how
// exactly the counts come back. A checkpoint trained on one backend runs on the other.
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"
#include "sparseae/metrics.hpp"
#include "sparseae/network.hpp"

namespace sparseae {

// Throws Error when refinement has steps and model's codes cannot be refined: quantised
// (a latent prior), TopK or BatchTopK, or a latent activation other than identity and relu.
void check_latent_refinement(const ModelConfig& model, const LatentRefinement& refinement);
// Whether model's codes can be refined (check_latent_refinement passes for any steps).
bool can_refine_latent_codes(const ModelConfig& model);

class TrainedModel {
 public:
  // Throws Error when config stores a decode its loss cannot give (mode without a count
  // likelihood) or parameters do not fit the model.
  TrainedModel(Backend& backend, const RunConfig& config, const std::vector<float>& parameters,
               std::int64_t batch_rows = 4096);

  const RunConfig& config() const { return config_; }
  std::int64_t input_width() const { return config_.model.input_dim; }
  std::int64_t latent_width() const { return config_.model.latent; }

  // hurdle, decode mode: the support probability from which an entry decodes to a non-zero
  // (RunConfig::hurdle_threshold; kDefaultHurdleThreshold unless training chose another).
  double hurdle_threshold() const { return config_.hurdle_threshold; }
  // Throws Error outside [0, 1].
  void set_hurdle_threshold(double threshold);
  // How the model refines each row's code before decoding it (RunConfig::latent_refinement):
  // every encode, output, evaluation and decode of counts below reads it. Throws Error for
  // steps or a rate out of range, and for steps > 0 on a model whose codes cannot be refined
  // (quantised, TopK or BatchTopK, or a latent activation other than identity and relu).
  const LatentRefinement& latent_refinement() const { return config_.latent_refinement; }
  void set_latent_refinement(const LatentRefinement& refinement);

  // Latent codes of the rows of counts (raw counts, rows x input width), sparse or dense (the
  // dense rows go through the network's dense first layer).
  HostDense encode(const HostCsr& counts);
  HostDense encode(const HostDense& rows);
  // The model's raw outputs for the rows of counts: rows x (K * input width) for a loss with
  // K = output_heads heads, head-major within a row (what the loss reads: logits, log-rates,
  // log-dispersions, ...).
  HostDense outputs(const HostCsr& counts);
  HostDense outputs(const HostDense& rows);
  // The raw outputs for latent codes (rows x latent width), shaped as outputs().
  HostDense decode_outputs(const HostDense& latents);
  // Calls visit(first_row, outputs) for each batch of the rows of counts, outputs a host copy of
  // the batch's raw outputs (valid only during the call): outputs() without holding them all.
  void for_each_output_batch(const HostCsr& counts,
                             const std::function<void(std::int64_t, ConstDenseView)>& visit);
  // Raw outputs (as outputs() and decode_outputs() return them) in data units, rows x input
  // width: each entry's predicted mean, unrounded (EntryDecoder::value).
  HostDense values_from_outputs(const HostDense& outputs) const;
  // Raw outputs as counts decoded by decode (EntryDecoder::count, this model's hurdle
  // threshold), the zeros dropped: the same counts evaluate() measures, for every loss and
  // every decode its loss allows (mode of nb, zinb and hurdle included). Throws Error when
  // check_decode does.
  HostCsr counts_from_outputs(const HostDense& outputs, DecodeMode decode) const;
  // The model's reconstruction in data units, before rounding: values_from_outputs(outputs()).
  HostDense reconstruct(const HostCsr& counts);
  // Reconstruction from latent codes (rows x latent width), in data units.
  HostDense decode(const HostDense& latents);
  // How this model's outputs become counts unless asked otherwise: the decode its checkpoint
  // stores (RunConfig::decode), else default_decode of its loss.
  DecodeMode default_decode() const {
    return config_.decode.value_or(sparseae::default_decode(config_.train.loss));
  }
  // Metrics of the reconstruction of counts against themselves, with counts decoded by decode
  // (default: default_decode()). Throws Error, before running the model, when the loss cannot
  // decode that way (check_decode).
  ReconstructionMetrics evaluate(const HostCsr& counts);
  ReconstructionMetrics evaluate(const HostCsr& counts, DecodeMode decode);
  // The same, and where detail is not null, the per-column and per-row detail of the same
  // decoded counts (MetricsAccumulator::collect_detail), rows in the order of counts.
  ReconstructionMetrics evaluate(const HostCsr& counts, DecodeMode decode,
                                 ReconstructionDetail* detail);
  // The metrics of rows spread over the ranks of a data-parallel run: each rank evaluates its
  // counts, and sum_over_ranks (called once, by every rank: a collective) sums a vector of
  // running sums in place across the ranks, so that every rank gets the metrics of all the rows.
  ReconstructionMetrics evaluate(const HostCsr& counts, DecodeMode decode,
                                 const std::function<void(std::vector<double>&)>& sum_over_ranks);
  // A reconstruction or decoding in data units (what reconstruct and decode return) as counts,
  // decoded by decode (default: default_decode()); the zeros dropped. Mode of a multi-head loss
  // needs the raw outputs (counts_from_outputs): given the means, it throws Error.
  HostCsr to_counts(const HostDense& reconstruction) const;
  HostCsr to_counts(const HostDense& reconstruction, DecodeMode decode) const;

 private:
  // evaluate, with the running sums summed by sum_over_ranks when it is set.
  ReconstructionMetrics evaluate_summed(
      const HostCsr& counts, DecodeMode decode, ReconstructionDetail* detail,
      const std::function<void(std::vector<double>&)>& sum_over_ranks);
  // Runs the network over counts batch by batch; visit(first_row, count) sees each batch.
  template <typename Visit>
  void for_each_batch(const HostCsr& counts, std::size_t end_layer, Visit visit);
  template <typename Visit>
  void for_each_batch(const HostDense& rows, std::size_t end_layer, Visit visit);
  // The network's forward to end_layer (0: all) on input, with the latent codes refined against
  // target (the rows in model units) when the model refines and the forward reaches its latent.
  template <typename Input, typename Target>
  void forward_refined(const Input& input, const Target& target, std::size_t end_layer,
                       const float* output_log_offsets);
  // The refinement (RunConfig::latent_refinement) of the codes of the last forward's rows, in
  // place: the decoder run, the loss's gradient taken to the codes and one Adam step, per step.
  template <typename Target>
  void refine_latents(const Target& target, const float* output_log_offsets);
  template <typename Rows>
  HostDense encode_rows(const Rows& rows);
  template <typename Rows>
  HostDense output_rows(const Rows& rows);
  void check_outputs(const HostDense& outputs) const;

  Backend* backend_;
  RunConfig config_;
  Network network_;
  std::vector<float> prior_;  // ModelConfig::latent_prior: its 2 * latent floats; else empty
  // The refinement's Adam moments (max batch x latent), row losses and a zero bias for the relu
  // projection: allocated at the first refined batch.
  Buffer<float> refine_moments_[2];
  Buffer<float> refine_row_loss_;
  Buffer<float> refine_zero_bias_;
};

// A reconstruction in data units of a model trained with loss, as counts decoded by decode
// (math::count_from_value); the zeros dropped. Throws Error when check_decode does.
HostCsr decode_to_counts(const HostDense& reconstruction, LossKind loss, DecodeMode decode);
// The support-probability threshold for the hurdle model's mode decode that maximises the
// exact-match F1 of its decoded counts (decode mode) on the rows of validation (raw counts):
//   precision = exactly reproduced non-zeros / predicted non-zeros (entries with k != 0)
//   recall    = exactly reproduced non-zeros / true non-zeros (entries with x != 0)
//   F1        = 2 P R / (P + R) = 2 exact / (predicted + true), 0 when predicted + true = 0
// where an exactly reproduced non-zero is an entry with x != 0 and k == x. The search runs over
// the fixed grid 0.05, 0.10, ..., 0.95 (i / 20, which holds the default 0.5), F1 compared
// exactly (as fractions); ties go to the value nearest kDefaultHurdleThreshold, then to the
// smaller. Runs the model once over validation, whatever threshold the model holds, and
// neither changes it nor anything else: the caller stores the result (set_hurdle_threshold,
// RunConfig::hurdle_threshold). Throws Error for a model whose loss is not hurdle.
// scores, when given, receives every threshold of the grid with the F1, precision and recall
// its decode gets (the report's threshold curve). sum_over_ranks, when set, makes the choice over
// validation rows spread over the ranks of a data-parallel run: it (a collective, as in
// TrainedModel::evaluate) sums the counts the choice is made from, so every rank chooses what one
// process would on all the rows.
struct ThresholdScore {
  double threshold = 0;
  double exact_f1 = 0;
  double exact_precision = 0;
  double exact_recall = 0;
};
double choose_hurdle_threshold(
    TrainedModel& model, const HostCsr& validation, std::vector<ThresholdScore>* scores = nullptr,
    const std::function<void(std::vector<double>&)>& sum_over_ranks = {});

// The decode a run reports and stores, measured on the rows of validation (raw counts) with the
// model's hurdle threshold: asked when given; otherwise the loss's default decode or its
// alternative_decode, whichever has the higher exact-entry F1 (the default on a tie). The other
// decode is measured too, asked or not, unless the loss has one decode or validation no rows.
struct DecodeMeasurement {
  DecodeMode decode = DecodeMode::round;  // the one chosen
  ReconstructionMetrics metrics;          // by it
  std::optional<DecodeMode> other;        // the other one measured, if any
  double other_f1 = -1;                   // its exact-entry F1
};
// detail, when not null, gets the chosen decode's detail (evaluate). sum_over_ranks, when set,
// measures validation rows spread over ranks (evaluate's collective; no detail then).
DecodeMeasurement measure_decodes(
    TrainedModel& model, const HostCsr& validation, std::optional<DecodeMode> asked,
    ReconstructionDetail* detail = nullptr,
    const std::function<void(std::vector<double>&)>& sum_over_ranks = {});

// Rounds a reconstruction to counts (nearest non-negative integer) and keeps the non-zeros: the
// round decode, whatever the loss.
HostCsr round_to_counts(const HostDense& reconstruction);

}  // namespace sparseae
