#pragma once
// Trains a Network on a count matrix: a seeded train/validation split, a fresh permutation per
// epoch drawn on the backend, batches gathered on the backend, the loss read as CSR, penalties,
// gradient clipping, a learning-rate schedule, early stopping, and metrics on validation rows.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"
#include "sparseae/model.hpp"
#include "sparseae/network.hpp"
#include "sparseae/ops.hpp"

namespace sparseae {

enum class ScaleMode : std::int32_t { none, max };
ScaleMode parse_scale_mode(const std::string& name);
const char* scale_mode_name(ScaleMode mode);

// What a step whose loss or gradient is NaN or Inf does: stop training with an error that names
// it (the parameters are then those of that step; the checkpoint of the last completed epoch is
// the last good state), or skip its update (the optimizer leaves parameters and moments as they
// were) and go on, reporting how many steps it skipped.
enum class NonFinitePolicy : std::int32_t { stop, skip };
NonFinitePolicy parse_nonfinite_policy(const std::string& name);
const char* nonfinite_policy_name(NonFinitePolicy policy);

// Where the rows live while training: resident (uploaded once, each batch gathered on the
// device), streamed (kept in host memory, each batch gathered on the host and copied to the
// device through page-locked staging memory while the batch before it computes; the same batches,
// so the same training), or automatic: resident when the data fits
// TrainConfig::device_memory_budget, streamed otherwise. Streamed rows are CSR, whatever the
// file held. Names: "auto", "resident", "stream".
enum class DataPlacement : std::int32_t { automatic, resident, streamed };
DataPlacement parse_data_placement(const std::string& name);
const char* data_placement_name(DataPlacement placement);

enum class LrSchedule : std::int32_t { constant, cosine };
LrSchedule parse_lr_schedule(const std::string& name);
const char* lr_schedule_name(LrSchedule schedule);

struct PenaltyConfig {
  float l1_weight = 0.0f;  // L1 activity penalty weight (0: off)
  float kl_beta = 0.0f;    // KL sparsity penalty weight (0: off); needs a sigmoid layer
  float kl_rho = 0.05f;    // KL target mean activation, in (0, 1)
  int layer = -1;          // layer whose output is penalised; -1: the latent layer
};

// The index in layout.layers() of the layer the penalties act on (penalty.layer, or for -1 the
// latent: encoder_layers() - 1), for a penalty that validate_penalty accepts.
std::size_t penalised_layer(const ModelLayout& layout, const PenaltyConfig& penalty);

// Throws Error unless the penalties fit the model: layer is -1 or an index below the number of
// layers, kl_rho lies in (0, 1), and with kl_beta > 0 the penalised layer has sigmoid activation
// (the KL penalty reads its outputs as probabilities). The Trainer checks this before it
// allocates anything; sae train checks it before it reads any data.
void validate_penalty(const ModelConfig& model, const PenaltyConfig& penalty);

// Throws Error unless the loss parameters make sense: zero_weight (weighted_mse) finite and
// non-negative, huber_delta (huber) finite and positive. Checked by the Trainer, and by sae train
// before it reads any data.
void validate_loss_params(const LossParams& params);

struct TrainConfig {
  LossKind loss = LossKind::mse;
  LossParams loss_params;  // cosine_weight (mse_cosine), zero_weight, huber_delta, dispersion,
                           // size_factors
  InputTransform input_transform = InputTransform::none;
  ScaleMode scale = ScaleMode::none;
  int epochs = 20;
  std::int64_t batch_size = 256;
  double val_fraction = 0.1;
  std::uint64_t seed = 1;
  OptimizerConfig optimizer;  // its max_grad_norm clips by global norm
  LrSchedule schedule = LrSchedule::constant;
  std::int64_t warmup_steps = 0;
  int patience = 0;  // epochs without validation improvement before stopping (0: never)
  std::int64_t loss_every = 50;  // steps between loss read-backs for progress reports
  PenaltyConfig penalty;
  NonFinitePolicy on_nonfinite = NonFinitePolicy::stop;
  DataPlacement placement = DataPlacement::automatic;
  // The dense products of training and of its validation loss (on cpu, tf32 and bf16 are
  // emulated: slower, for predicting their cost to the model). What the trained model is evaluated
  // with afterwards is fp32 either way. Not part of a checkpoint's configuration.
  MatmulPrecision precision = MatmulPrecision::fp32;
  // The device memory the rows (training and validation) may take resident, in bytes, under
  // DataPlacement::automatic; 0: half of the device memory free when the trainer starts. A
  // backend without device memory of its own (cpu) keeps the rows resident.
  std::int64_t device_memory_budget = 0;
  // Capture the training step once per epoch (Backend::capture: a CUDA graph on cuda, a recording
  // of the op calls on cpu) and replay it for every full batch after the epoch's first, so that a
  // step costs one launch instead of dozens; the first full batch (which sizes the scratch memory)
  // and a last, shorter one run plain, as do rows streamed from the host
  // (Trainer::step_execution says which). Replays train as the plain step does: to the
  // bit on cpu, to rounding on cuda (the captured first layer scatters its weight gradient with
  // atomics). Not part of a checkpoint's configuration.
  bool capture_step = false;
  // How the dense layers run their forward while training (Network::set_layer_forward): the GEMM
  // and then the bias + activation kernel, or one op with both (cublasLt's epilogue on cuda).
  // Not part of a checkpoint's configuration.
  LayerForward layer_forward = LayerForward::separate;
};

struct EpochReport {
  int epoch = 0;  // 1-based
  std::int64_t steps = 0;
  double train_loss = 0;
  double val_loss = 0;
  double seconds = 0;
  double samples_per_second = 0;
  double learning_rate = 0;
  std::int64_t skipped_steps = 0;  // NonFinitePolicy::skip: steps whose loss was not finite
};

// What the trainer reports while it runs; the CLI draws its progress bar from these.
struct TrainObserver {
  // Called after every step; loss is the last loss read back (every TrainConfig::loss_every
  // steps, since reading it waits for the device).
  std::function<void(int epoch, std::int64_t step, std::int64_t steps, double samples_per_second,
                     double loss)>
      on_step;
  std::function<void(const EpochReport&)> on_epoch;
  // Asked after every step: true ends training there (Trainer::interrupted()), with the state of
  // that step, which a checkpoint saves and Trainer::restore continues from mid-epoch.
  std::function<bool()> stop_requested;
};

// The counts of the rows of a matrix named by row ids, in that order.
HostCsr select_rows(const HostCsr& matrix, const std::vector<std::int64_t>& rows);
HostDense select_rows(const HostDense& matrix, const std::vector<std::int64_t>& rows);

// Splits 0..rows-1 into (train, validation) with a seeded shuffle; validation gets
// round(fraction * rows) rows, at least one when fraction > 0 and rows > 1.
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> split_rows(std::int64_t rows,
                                                                           double fraction,
                                                                           std::uint64_t seed);

class Trainer {
 public:
  // data holds raw counts; the trainer scales its own copy when config.scale says so. Sparse
  // data stays CSR from here to the loss; dense data takes the dense path (GEMM first layer,
  // dense-target loss).
  Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
          const HostCsr& data);
  Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
          const HostDense& data);
  ~Trainer();

  // Runs epochs from the current one up to config.epochs (or early stopping, or until
  // observer.stop_requested). Throws Error naming the step when a loss is not finite under
  // NonFinitePolicy::stop.
  std::vector<EpochReport> train(const TrainObserver& observer = {});
  // True when the last train() ended at observer.stop_requested, mid-epoch or between epochs.
  bool interrupted() const;

  // Mean reconstruction loss of the current parameters on the validation rows.
  double validation_loss();
  // The validation rows, in raw counts (for metrics through TrainedModel::evaluate).
  const HostCsr& validation_counts() const;

  Network& network();
  const TrainConfig& config() const;
  float scale() const;
  // The training rows' median total count in model units (after scale): the reference library
  // size of LossParams::size_factors (RunConfig::reference_library_size).
  double reference_library_size() const;
  int completed_epochs() const;
  std::int64_t completed_steps() const;
  std::int64_t train_rows() const;
  std::int64_t validation_rows() const;
  // The placement of the rows and why, one line: "resident: 24.0 MiB of rows within a
  // 40000.0 MiB device-memory budget".
  const std::string& data_placement() const;
  // How each step is issued and why, one line: "captured: ..." or "plain: ...".
  const std::string& step_execution() const;

  // Optimizer state and progress, for checkpoints.
  struct State {
    std::vector<float> parameters;
    std::vector<float> first_moment;
    std::vector<float> second_moment;
    std::vector<float> best_parameters;  // restored when early stopping ends the run
    int epoch = 0;
    std::int64_t step = 0;
    double best_val_loss = 0;
    int epochs_without_improvement = 0;
  };
  State state() const;
  void restore(const State& state);

 private:
  struct Impl;
  template <typename Matrix>
  static std::unique_ptr<Impl> make_impl(Backend& backend, const ModelConfig& model,
                                         const TrainConfig& config, const Matrix& data);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparseae
