#pragma once
// What sae prints at the end of a run: a table for people, JSON for programs.
#include <optional>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "core/json.hpp"
#include "sparseae/compare.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/io.hpp"
#include "sparseae/metrics.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::cli {

// How sae train came by the decode it reports and stores.
enum class DecodeChoice {
  option,         // --decode
  loss_default,   // the loss's default, its only decode that gives other counts than round
  validation_f1,  // of the default and mode, the higher exact-entry F1 on the validation rows
};

struct TrainingSummary {
  std::string backend;
  std::string model;
  int epochs = 0;
  std::vector<EpochReport> reports;  // the epochs this run trained
  std::string select;                // --select: f1 or loss
  // The epoch whose parameters the run kept (0: the start), or -1 when not known (the best came
  // before a resumed run, or no validation rows to select by).
  int kept_epoch = -1;
  double validation_loss = 0;
  ReconstructionMetrics metrics;
  std::string checkpoint;
  // hurdle: the support-probability threshold chosen on the validation rows (negative: none).
  double hurdle_threshold = -1;
  // The PCA baseline on the same validation rows (pca_baseline), printed beside the model's
  // metrics; pca.pca is false when there is none (--no-pca).
  ComparisonRow pca;
  std::int64_t pca_components = 0;
  bool pca_anchored = false;  // the model started at PCA (--pca-anchor)
  bool rate_aware = false;    // trained for its description length (--rate-lambda), not for F1
  // AuxK (--aux-k, --aux-weight, --aux-dead-steps); aux_k 0: off.
  std::int64_t aux_k = 0;
  float aux_weight = 0.0f;
  std::int64_t aux_dead_steps = 0;
  bool decoder_norm = false;  // unit-norm decoder columns (--decoder-norm)
  LatentRefinement latent_refinement;  // the codes' refinement the metrics were measured with
  DecodeChoice decode_choice = DecodeChoice::loss_default;  // of metrics.decode
  // The other decode the loss allows that gives other counts (mode, or the loss's default when
  // the run decoded by mode), and its exact-entry F1 on the same rows, so that a run shows what
  // --decode would change; none (alternative_decode_f1 negative) for losses with one decode.
  DecodeMode alternative_decode = DecodeMode::round;
  double alternative_decode_f1 = -1;
};

// --decode, shared by sae train, decode and eval: declares it on o; use says what it decodes,
// otherwise what it does without the option.
void add_decode_option(Options& o, const std::string& use, const std::string& otherwise);
// The decode mode --decode asks for, checked against loss; none when it is not given.
std::optional<DecodeMode> decode_option(const Options& o, LossKind loss);

// The support threshold of a hurdle loss, for the JSON of sae train and compare.
Json hurdle_threshold_json(double threshold);

// --refine-steps and --refine-rate (RunConfig::latent_refinement). For sae train (of_model
// false) they set what the checkpoint stores; for a command that uses a model, they replace the
// checkpoint's for this run.
void add_refinement_options(Options& o, bool of_model);
// The refinement they ask for: base (the checkpoint's, --auto's trial, or none) with what was
// given replaced. Throws UsageError for steps or a rate out of range, or a rate given for no
// steps.
LatentRefinement refinement_option(const Options& o, LatentRefinement base);

// --dispersion, --size-factors and --input-transform, shared by sae train and compare: declares
// them on o, and sets what they ask for in train.
void add_count_model_options(Options& o);
void apply_count_model_options(const Options& o, TrainConfig& train);

// The model's widths, the schedule and the split, shared by sae train and compare: --backend,
// --hidden, --latent, --epochs (epochs_help says per what), --batch, --lr, --seed and --val-frac.
void add_training_options(Options& o, const std::string& epochs_help);

// --no-pca, shared by sae train and compare.
void add_pca_option(Options& o);
// {"components": k, "seconds": s, "validation": {metrics}}: the PCA baseline in the JSON of
// sae train and compare.
Json pca_json(const ComparisonRow& pca, std::int64_t components);

void print_training_summary(const TrainingSummary& summary, bool json);
void print_metrics(const std::string& title, const ReconstructionMetrics& metrics, bool json);
// outputs: the model's raw outputs (TrainedModel::outputs or decode_outputs). .mtx and .csv: the
// counts decoded by decode (TrainedModel::counts_from_outputs, the counts its metrics measure);
// .npy: the values in data units, unrounded (values_from_outputs).
void write_reconstruction(const std::string& path, MatrixFormat format, const TrainedModel& model,
                          const HostDense& outputs, DecodeMode decode);

}  // namespace sparseae::cli
