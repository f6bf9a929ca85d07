#pragma once
// What a training run is configured with, and the state it can be resumed from: the data a
// checkpoint stores (checkpoint.hpp) and the Trainer (trainer.hpp) runs on.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sparseae/model.hpp"
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
  int patience = 0;              // epochs without validation improvement before stopping (0: never)
  std::int64_t loss_every = 50;  // steps between loss read-backs for progress reports
  PenaltyConfig penalty;
  // Rate-aware training (ModelConfig::latent_prior, which it needs): the loss adds
  // rate_lambda / input_dim times the latents' code length in nats per row (their NLL under the
  // model's prior, math::latent_rate_term) to the reconstruction loss, with uniform noise in
  // place of the rounding to integer codes. With a count likelihood (poisson, nb, zinb, hurdle,
  // hurdle_nb), whose loss is the counts' NLL in nats per entry, 1 minimises the description
  // length of a row (code plus counts given the code: what lossless mode stores); smaller values
  // favour fidelity over code bits. 0: off.
  float rate_lambda = 0.0f;
  // AuxK (Gao et al. 2024) for a TopK or BatchTopK latent, to first order for our nonlinear
  // decoder: in each row, the aux_k latents dead for more than aux_dead_steps training batches
  // with the largest pre-activations (before the relu) also take aux_weight times the loss's
  // gradient, straight through the selection (Network::enable_auxk). 0: off. 1/32 is Gao et al.'s
  // weight; 256 batches (a few epochs of a small set) is long enough that a latent merely rare in a
  // batch of 256 rows is not called dead.
  std::int64_t aux_k = 0;
  float aux_weight = 1.0f / 32.0f;
  std::int32_t aux_dead_steps = 256;
  // Decoder column normalisation (Gao et al. 2024): each latent's dictionary vector, its weights
  // into the first decoder layer, is rescaled to unit L2 norm at initialisation and after every
  // optimizer step (Network::normalize_decoder_columns), so that a latent's size lives in its code
  // and not in its decoder weights, which an activity penalty or AuxK could otherwise trade
  // against. The gradient is not projected first: the step moves the weights freely and the
  // rescaling puts them back on the sphere. Needs untied weights and no linear skip.
  bool decoder_norm = false;
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

// Throws Error unless the optimizer and the run's schedule make sense: a finite, positive learning
// rate; Adam's betas in [0, 1) and a positive epsilon; a non-negative weight decay and clipping
// norm (0: off); SGD's momentum in [0, 1); no negative warmup, patience or loss interval. Each
// would otherwise train (or diverge) without an error. Checked by the Trainer, and by sae train
// before it reads any data.
void validate_optimization(const TrainConfig& config);

// Throws Error unless the sparse code's training options fit the model: AuxK's k from 0 to the
// latent width and only on a TopK or BatchTopK code, its weight finite and non-negative, its dead
// steps non-negative; decoder normalisation only on the decoder's own weights (not tied) and
// without the PCA anchor's linear skip. Checked by the Trainer, and by sae train before it reads
// any data.
void validate_sparse_code_training(const ModelConfig& model, const TrainConfig& config);

// The optimizer state and progress of a training run (Trainer::state, Trainer::restore), which a
// checkpoint saves.
struct TrainingState {
  std::vector<float> parameters;
  std::vector<float> first_moment;
  std::vector<float> second_moment;
  std::vector<float> best_parameters;  // kept when training ends (Trainer::train)
  int epoch = 0;
  std::int64_t step = 0;
  // The selection value of best_parameters, lower is better: their validation loss, or minus
  // their TrainObserver::validation_score when training selects by score (the name is the
  // checkpoint format's). A run resumed with the other selection compares unlike values.
  double best_val_loss = 0;
  int epochs_without_improvement = 0;
  // AuxK's counters (Network::dead_steps), one a latent, so that a resumed run goes on counting
  // the batches each latent has not fired in; empty without AuxK.
  std::vector<std::int32_t> latent_dead_steps;
};

}  // namespace sparseae
