#include "sparseae/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <string>

#include "core/communicator.hpp"
#include "core/memory_size.hpp"
#include "math/op_math.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/error.hpp"
#include "train/row_source.hpp"

namespace sparseae {

HostCsr select_rows(const HostCsr& matrix, const std::vector<std::int64_t>& rows) {
  HostCsr out;
  out.rows = static_cast<std::int64_t>(rows.size());
  out.cols = matrix.cols;
  out.row_offsets.assign(1, 0);
  out.row_offsets.reserve(rows.size() + 1);
  for (std::int64_t row : rows) {
    const RowOffset begin = matrix.row_offsets[row];
    const RowOffset end = matrix.row_offsets[row + 1];
    out.col_indices.insert(out.col_indices.end(), matrix.col_indices.begin() + begin,
                           matrix.col_indices.begin() + end);
    out.values.insert(out.values.end(), matrix.values.begin() + begin, matrix.values.begin() + end);
    out.row_offsets.push_back(static_cast<RowOffset>(out.values.size()));
  }
  return out;
}

HostDense select_rows(const HostDense& matrix, const std::vector<std::int64_t>& rows) {
  HostDense out{static_cast<std::int64_t>(rows.size()), matrix.cols, {}};
  out.values.reserve(rows.size() * static_cast<std::size_t>(matrix.cols));
  for (std::int64_t row : rows)
    out.values.insert(out.values.end(), matrix.values.begin() + row * matrix.cols,
                      matrix.values.begin() + (row + 1) * matrix.cols);
  return out;
}

std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> split_rows(std::int64_t rows,
                                                                           double fraction,
                                                                           std::uint64_t seed) {
  require(fraction >= 0.0 && fraction < 1.0, "validation fraction must lie in [0, 1)");
  std::vector<std::uint64_t> keys(static_cast<std::size_t>(rows));
  for (std::int64_t i = 0; i < rows; ++i)
    keys[i] = math::permutation_key(seed ^ 0x5EED5EED5EEDull, static_cast<std::uint64_t>(i));
  std::vector<std::int64_t> order(static_cast<std::size_t>(rows));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return keys[a] != keys[b] ? keys[a] < keys[b] : a < b;
  });
  auto validation = static_cast<std::int64_t>(std::llround(fraction * static_cast<double>(rows)));
  if (fraction > 0.0 && rows > 1) validation = std::max<std::int64_t>(validation, 1);
  validation = std::min(validation, std::max<std::int64_t>(rows - 1, 0));
  std::vector<std::int64_t> val(order.begin(), order.begin() + validation);
  std::vector<std::int64_t> train(order.begin() + validation, order.end());
  // Sorted ids keep each subset in file order, which makes selected matrices easy to inspect.
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return {std::move(train), std::move(val)};
}

namespace {

float max_value(const std::vector<float>& values) {
  float largest = 0.0f;
  for (float v : values) largest = std::max(largest, v);
  return largest;
}

template <typename Matrix>
Matrix scaled(Matrix m, float scale) {
  if (scale != 1.0f)
    for (float& v : m.values) v /= scale;
  return m;
}

HostCsr as_csr(HostCsr m) { return m; }
HostCsr as_csr(const HostDense& m) { return to_csr(m); }

// Sets the backend's gemm precision for the scope's life, and fp32 again after it: the precision
// belongs to training; metrics, PCA and inference on the same backend multiply in fp32.
class MatmulPrecisionScope {
 public:
  MatmulPrecisionScope(Backend& backend, MatmulPrecision precision) : backend_(backend) {
    backend_.set_matmul_precision(precision);
  }
  ~MatmulPrecisionScope() {
    try {
      backend_.set_matmul_precision(MatmulPrecision::fp32);
    } catch (const Error&) {
      // fp32 is every backend's own precision; setting it fails only with a broken device,
      // which the next op reports.
    }
  }
  MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
  MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;

 private:
  Backend& backend_;
};

// Bytes the rows take in backend memory when resident.
std::int64_t resident_bytes(const HostCsr& m) {
  return (m.rows + 1) * static_cast<std::int64_t>(sizeof(RowOffset)) +
         m.nnz() * static_cast<std::int64_t>(sizeof(ColIndex) + sizeof(float));
}
std::int64_t resident_bytes(const HostDense& m) {
  return m.rows * m.cols * static_cast<std::int64_t>(sizeof(float));
}

struct Placement {
  DataPlacement where;  // resident or streamed
  std::string summary;  // Trainer::data_placement
};

Placement choose_placement(const Backend& backend, const TrainConfig& config,
                           std::int64_t data_bytes) {
  const std::string data = detail::memory_size(static_cast<double>(data_bytes)) + " of rows";
  const double budget = config.device_memory_budget > 0
                            ? static_cast<double>(config.device_memory_budget)
                            : 0.5 * static_cast<double>(backend.device_memory_free());
  const std::string within = " a " + detail::memory_size(budget) + " device-memory budget";
  switch (config.placement) {
    case DataPlacement::resident:
      return {DataPlacement::resident, "resident (chosen): " + data};
    case DataPlacement::streamed:
      return {DataPlacement::streamed,
              "streamed (chosen): " + data + ", a batch copied while the one before computes"};
    case DataPlacement::automatic:
    default:
      if (budget == 0.0)
        return {DataPlacement::resident, "resident: " + data + " in host memory (cpu backend)"};
      if (static_cast<double>(data_bytes) <= budget)
        return {DataPlacement::resident, "resident: " + data + " within" + within};
      return {DataPlacement::streamed, "streamed: " + data + " exceed" + within +
                                           ", a batch copied while the one before computes"};
  }
}

std::unique_ptr<detail::RowSource> make_source(Backend& backend, HostCsr counts,
                                               std::int64_t batch_rows,
                                               const detail::BatchInputOptions& input,
                                               DataPlacement placement) {
  return detail::make_row_source(backend, std::move(counts), batch_rows, input, placement);
}
std::unique_ptr<detail::RowSource> make_source(Backend& backend, const HostDense& counts,
                                               std::int64_t batch_rows,
                                               const detail::BatchInputOptions& input,
                                               DataPlacement placement) {
  if (placement == DataPlacement::streamed)
    return detail::make_row_source(backend, to_csr(counts), batch_rows, input, placement);
  return detail::make_row_source(backend, counts, batch_rows, input);
}

// Loss slots per step: reconstruction, L1 penalty, KL penalty, the latents' rate.
constexpr std::int64_t kLossSlots = 4;

// A step's loss: the sum of its slots.
double slots_total(const float* slots) {
  double total = 0.0;
  for (std::int64_t k = 0; k < kLossSlots; ++k) total += static_cast<double>(slots[k]);
  return total;
}

std::string describe_step_execution(const Backend& backend, const TrainConfig& config,
                                    const detail::RowSource& rows) {
  if (!config.capture_step)
    return "plain: every op issued from the host (--step-graph on captures it)";
  const std::string obstacle = rows.capture_obstacle();
  if (!obstacle.empty()) return "plain: " + obstacle + ", so the step cannot be captured";
  return std::string("captured: every full batch after the epoch's first replays one ") +
         (backend.kind() == BackendKind::cuda ? "CUDA graph" : "recording of the step's ops") +
         " per epoch; the first and a last, shorter batch run plain";
}

// How a trainer's rows relate to the run's: one process holds them all; a rank of a data-parallel
// run holds the training rows [first_train_index, + its rows) of the global training order (the
// sorted ids split_rows gives) and some validation rows.
struct Sharding {
  Communicator* ranks = nullptr;  // null: this process alone
  std::int64_t global_train_rows = 0;
  std::int64_t global_validation_rows = 0;
  std::int64_t first_train_index = 0;
  double median_row_total = 1.0;  // of the training rows, raw counts (see reference_library_size)
  double largest_training_value = 0.0;  // over every rank, raw counts
};

template <typename Matrix>
Sharding single_process(const Matrix& train_rows, const Matrix& validation_rows) {
  return {nullptr,
          train_rows.rows,
          validation_rows.rows,
          0,
          detail::median_row_total(train_rows),
          max_value(train_rows.values)};
}

}  // namespace

struct Trainer::Impl {
  Backend& backend;
  TrainConfig config;
  float scale;
  HostCsr training_raw;  // for anchor_at_pca, which fits PCA on exactly these rows
  HostCsr validation_raw;
  Sharding sharding;
  // The rows of this process's largest batch: the global batch, or across ranks the most of it
  // that this rank can hold.
  std::int64_t batch_size;
  // The rows of a full step over every rank (batch_size in one process).
  std::int64_t global_batch;
  detail::BatchInputOptions input;
  Placement placement;
  std::unique_ptr<detail::RowSource> train_data;
  std::unique_ptr<detail::RowSource> validation_data;
  std::int64_t steps_per_epoch;
  std::int64_t total_steps;
  Network net;
  Buffer<float> first_moment;
  Buffer<float> second_moment;
  Buffer<float> best_parameters;
  Buffer<std::int64_t> permutation;
  Buffer<std::int64_t> validation_ids;
  Buffer<float> row_loss;
  Buffer<float> step_losses;        // kLossSlots per step of the running epoch
  Buffer<float> validation_losses;  // per validation batch: its reconstruction loss, its rate
  Buffer<float> grad_sum_squares;
  Buffer<StepScalars> step_schedule;  // the optimizer's varying scalars for each step of the epoch
  Buffer<std::uint64_t> noise_seeds;  // the latent noise's seed of each step of the epoch
  // What a captured step reads and writes in place of its step's entries of step_schedule and
  // step_losses, copied in before each replay and out after it.
  Buffer<StepScalars> staged_scalars;
  Buffer<std::uint64_t> staged_noise_seed;
  Buffer<float> staged_losses;
  std::string step_execution;
  bool capture_enabled = false;                // config.capture_step, and the rows allow it
  std::unique_ptr<CapturedOps> captured_step;  // of the running epoch
  bool warmup_step_ran = false;  // in the running epoch: the plain step before the capture
  int epoch = 0;
  std::int64_t step = 0;
  double best_val_loss = std::numeric_limits<double>::infinity();
  int epochs_without_improvement = 0;
  bool stopped = false;  // the last train() ended at observer.stop_requested
  // The yardsticks of divergence (stop_if_diverged), measured when train() starts: the validation
  // loss of the model with every parameter zero, whatever the data's scale, and that of the
  // parameters train() started from (the initialisation, or a resumed state) at start_epoch.
  double zero_model_loss = std::numeric_limits<double>::quiet_NaN();
  double start_loss = std::numeric_limits<double>::quiet_NaN();
  int start_epoch = 0;
  bool restored = false;  // the parameters came from restore(), not the initialisation

  template <typename Matrix>
  Impl(Backend& backend_, const ModelConfig& model, const TrainConfig& config_, float scale_,
       const Matrix& train_host, const Matrix& validation_host, const Sharding& sharding_)
      : backend(backend_),
        config(config_),
        scale(scale_),
        training_raw(as_csr(train_host)),
        validation_raw(as_csr(validation_host)),
        sharding(sharding_),
        batch_size(std::max<std::int64_t>(1, std::min(config_.batch_size, train_host.rows))),
        global_batch(std::min(config_.batch_size, sharding_.global_train_rows)),
        input{config_.input_transform, config_.loss_params.size_factors,
              sharding_.median_row_total / scale_},
        placement(choose_placement(backend_, config_,
                                   resident_bytes(train_host) + resident_bytes(validation_host))),
        train_data(
            make_source(backend_, scaled(train_host, scale_), batch_size, input, placement.where)),
        validation_data(make_source(backend_, scaled(validation_host, scale_), batch_size, input,
                                    placement.where)),
        steps_per_epoch((sharding_.global_train_rows + global_batch - 1) / global_batch),
        total_steps(steps_per_epoch * config_.epochs),
        net(backend_, ModelLayout(model), batch_size),
        first_moment(backend_, net.parameters().size()),
        second_moment(backend_, net.parameters().size()),
        best_parameters(backend_, net.parameters().size()),
        permutation(backend_, static_cast<std::size_t>(train_data->rows())),
        validation_ids(backend_, iota(validation_data->rows())),
        row_loss(backend_, static_cast<std::size_t>(batch_size)),
        step_losses(backend_, static_cast<std::size_t>(kLossSlots * steps_per_epoch)),
        validation_losses(backend_,
                          static_cast<std::size_t>(
                              2 * std::max<std::int64_t>(
                                      1, (validation_data->rows() + batch_size - 1) / batch_size))),
        grad_sum_squares(backend_, 1),
        step_schedule(backend_, static_cast<std::size_t>(steps_per_epoch)),
        noise_seeds(backend_, static_cast<std::size_t>(steps_per_epoch)),
        staged_scalars(backend_, 1),
        staged_noise_seed(backend_, 1),
        staged_losses(backend_, static_cast<std::size_t>(kLossSlots)),
        step_execution(sharding_.ranks != nullptr && config_.capture_step
                           ? "plain: a rank's share of each batch varies in size, so the step "
                             "cannot be captured"
                           : describe_step_execution(backend_, config_, *train_data)),
        capture_enabled(config_.capture_step && train_data->capture_obstacle().empty() &&
                        sharding_.ranks == nullptr) {
    staged_losses.fill_zero();
    // Read (and staged for a captured step) by every step, drawn only for rate-aware training.
    noise_seeds.fill_zero();
    net.set_layer_forward(config.layer_forward);
    // AuxK's counters start at 0 here; restore() sets a resumed run's (TrainingState).
    if (config.aux_k > 0) net.enable_auxk(config.aux_k, config.aux_weight, config.aux_dead_steps);
    // Step 0 starts on the unit sphere the steps keep the dictionary on.
    if (config.decoder_norm) net.normalize_decoder_columns();
    first_moment.fill_zero();
    second_moment.fill_zero();
    copy_parameters(best_parameters.data(), net.parameters().data());
    validation_data->prepare_batches(validation_ids.data(), validation_data->rows(), batch_size);
  }

  static std::vector<std::int64_t> iota(std::int64_t n) {
    std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
    std::iota(ids.begin(), ids.end(), std::int64_t{0});
    return ids;
  }

  double learning_rate(std::int64_t at_step) const {
    double rate = config.optimizer.learning_rate;
    if (config.warmup_steps > 0 && at_step < config.warmup_steps)
      rate *= static_cast<double>(at_step + 1) / static_cast<double>(config.warmup_steps);
    if (config.schedule == LrSchedule::cosine && total_steps > 0) {
      const double progress = static_cast<double>(at_step) / static_cast<double>(total_steps);
      rate *= 0.5 * (1.0 + std::cos(3.141592653589793 * std::min(progress, 1.0)));
    }
    return rate;
  }

  // The batch's forward and reconstruction loss: the loss's gradient lands in the network's
  // output gradient and the batch's loss in *loss_slot.
  void forward_with_loss(const detail::Batch& batch, float* loss_slot) {
    detail::forward(net, batch);
    detail::reconstruction_loss(backend, config.loss, config.loss_params, net, batch,
                                row_loss.data());
    backend.column_sums(ConstDenseView(row_loss.data(), batch.rows, 1), 1.0f, loss_slot);
  }

  // The optimizer's varying scalars for every step of the running epoch, in backend memory: one
  // upload an epoch, read by the plain and the captured step alike.
  void upload_step_schedule() {
    std::vector<StepScalars> schedule(static_cast<std::size_t>(steps_per_epoch));
    for (std::int64_t s = 0; s < steps_per_epoch; ++s) {
      const std::int64_t at_step = epoch * steps_per_epoch + s;
      OptimizerConfig optimizer = config.optimizer;
      optimizer.learning_rate = static_cast<float>(learning_rate(at_step));
      schedule[static_cast<std::size_t>(s)] = math::make_step_scalars(optimizer, at_step + 1);
    }
    step_schedule.upload(schedule);
    if (config.rate_lambda <= 0.0f) return;
    // One seed per global step, so that a resumed run draws the noise the uninterrupted one would.
    std::vector<std::uint64_t> seeds(static_cast<std::size_t>(steps_per_epoch));
    for (std::int64_t s = 0; s < steps_per_epoch; ++s)
      seeds[static_cast<std::size_t>(s)] = math::mix64(config.seed ^ 0x6E6F697365ull) +
                                           static_cast<std::uint64_t>(epoch * steps_per_epoch + s);
    noise_seeds.upload(seeds);
  }

  // Step index_in_epoch of the running epoch: the plain step on its gathered batch, or a replay
  // of the step captured on a staged one.
  void train_step(std::int64_t index_in_epoch) {
    float* slots = step_losses.data() + kLossSlots * index_in_epoch;
    const StepScalars* scalars = step_schedule.data() + index_in_epoch;
    const std::uint64_t* noise_seed = noise_seeds.data() + index_in_epoch;
    const bool full = train_data->batch_size(index_in_epoch) == batch_size;
    if (sharding.ranks != nullptr) {
      rank_step(index_in_epoch, slots, scalars, noise_seed);
    } else if (!capture_enabled || !full || !warmup_step_ran) {
      // The epoch's first full batch runs plain when capturing too: every op sizes its scratch
      // memory there, which must not grow inside a capture.
      step_on(train_data->gather(index_in_epoch), slots, scalars, noise_seed);
      warmup_step_ran = warmup_step_ran || (capture_enabled && full);
    } else {
      train_data->stage_batch(index_in_epoch);
      backend.copy_bytes(staged_scalars.data(), scalars, sizeof(StepScalars));
      backend.copy_bytes(staged_noise_seed.data(), noise_seed, sizeof(std::uint64_t));
      if (captured_step == nullptr)
        captured_step = backend.capture([this] {
          step_on(train_data->gather_staged(), staged_losses.data(), staged_scalars.data(),
                  staged_noise_seed.data());
        });
      backend.replay(*captured_step);
      backend.copy_bytes(slots, staged_losses.data(), kLossSlots * sizeof(float));
    }
    ++step;
  }

  // The training step, the same for resident, streamed, dense and captured batches: forward and
  // reconstruction loss (into loss_slots[0]), backward with the activity penalties (their losses
  // into loss_slots[1] and [2]) and the latents' rate (loss_slots[3]), then the optimizer's update
  // with the scalars at step_scalars (backend memory). A model with a latent prior trains on its
  // latents plus the noise drawn from noise_seed (backend memory), in place of their rounding. A
  // BatchTopK latent selects among the batch and moves its threshold
  // (Network::set_latent_training).
  void step_on(const detail::Batch& batch, float* loss_slots, const StepScalars* step_scalars,
               const std::uint64_t* noise_seed) {
    compute_gradients(batch, loss_slots, noise_seed);
    update_parameters(step_scalars);
  }

  // A rank's step of a data-parallel run: the gradient of its share of the global batch (none
  // when it holds no row of the batch) weighted by that share, summed over the ranks, and the
  // update every rank makes alike. The loss slots hold the means over this rank's rows.
  void rank_step(std::int64_t index_in_epoch, float* loss_slots, const StepScalars* step_scalars,
                 const std::uint64_t* noise_seed) {
    const std::int64_t rows = train_data->batch_size(index_in_epoch);
    const std::int64_t n = net.layout().trained_parameter_count();
    if (rows > 0) {
      compute_gradients(train_data->gather(index_in_epoch), loss_slots, noise_seed);
      // Each loss is a mean over the batch's rows: this rank's mean times its share of them.
      const std::int64_t step_rows = global_step_rows(index_in_epoch);
      if (rows != step_rows)
        backend.scale_values(
            net.gradients().data(), n,
            static_cast<float>(static_cast<double>(rows) / static_cast<double>(step_rows)));
    } else {
      net.gradients().fill_zero();
    }
    sharding.ranks->all_reduce_gradients(net.gradients().data(), n);
    update_parameters(step_scalars);
  }

  // The rows of step s of an epoch over every rank: global_batch, the last one possibly fewer.
  std::int64_t global_step_rows(std::int64_t s) const {
    return std::min(global_batch, sharding.global_train_rows - s * global_batch);
  }

  // The forward, loss and backward of the step: the gradients in net.gradients(), the losses in
  // loss_slots (see step_on).
  void compute_gradients(const detail::Batch& batch, float* loss_slots,
                         const std::uint64_t* noise_seed) {
    const ModelLayout& layout = net.layout();
    const bool rate = config.rate_lambda > 0.0f;
    // The network is back in its use mode (rounded codes, BatchTopK by its threshold) however
    // the step ends, an exception included.
    struct TrainingMode {
      Network& net;
      ~TrainingMode() {
        net.set_latent_noise(nullptr);
        net.set_latent_training(false);
      }
    } const training_mode{net};
    if (rate) net.set_latent_noise(noise_seed);
    net.set_latent_training(true);
    forward_with_loss(batch, loss_slots);
    const PenaltyConfig& penalty = config.penalty;
    const std::size_t penalty_layer = penalised_layer(layout, penalty);
    const std::size_t latent_layer = layout.encoder_layers() - 1;
    detail::backward(net, batch, [&](std::size_t layer, ConstDenseView a, DenseView grad) {
      if (rate && layer == latent_layer)
        backend.latent_rate_penalty(rate_weight(), net.parameters().data() + layout.prior_offset(),
                                    a, grad, net.gradients().data() + layout.prior_offset(),
                                    loss_slots + 3);
      if (layer != penalty_layer) return;
      if (penalty.l1_weight > 0.0f)
        backend.l1_activity_penalty(penalty.l1_weight, a, grad, loss_slots + 1);
      if (penalty.kl_beta > 0.0f)
        backend.kl_sparsity_penalty(penalty.kl_rho, penalty.kl_beta, a, grad, loss_slots + 2);
    });
  }

  // The optimizer's update from net.gradients() with the scalars at step_scalars (backend memory).
  void update_parameters(const StepScalars* step_scalars) {
    const ModelLayout& layout = net.layout();
    OptimizerConfig optimizer = config.optimizer;
    optimizer.skip_nonfinite = config.on_nonfinite == NonFinitePolicy::skip;
    // The parameters that gradients train: a BatchTopK threshold after them moves in forward.
    const std::int64_t n = layout.trained_parameter_count();
    const bool reads_norm = optimizer.max_grad_norm > 0.0f || optimizer.skip_nonfinite;
    if (reads_norm) backend.sum_of_squares(net.gradients().data(), n, grad_sum_squares.data());
    backend.optimizer_step(optimizer, step + 1, n, net.parameters().data(), net.gradients().data(),
                           first_moment.data(), second_moment.data(),
                           reads_norm ? grad_sum_squares.data() : nullptr, step_scalars);
    if (config.decoder_norm) net.normalize_decoder_columns();
  }

  // Under NonFinitePolicy::stop, a non-finite loss ends training with the step named.
  void stop_if_nonfinite(double loss, std::int64_t index_in_epoch) const {
    if (std::isfinite(loss) || config.on_nonfinite != NonFinitePolicy::stop) return;
    throw Error("training diverged: the loss of step " +
                std::to_string(epoch * steps_per_epoch + index_in_epoch + 1) + " (epoch " +
                std::to_string(epoch + 1) + ", step " + std::to_string(index_in_epoch + 1) +
                " of " + std::to_string(steps_per_epoch) + ") is " + std::to_string(loss) +
                "; the checkpoint of epoch " + std::to_string(epoch) +
                " is the last good state (try a lower --lr, --clip-norm, or --on-nan skip)");
  }

  // The epoch's report, or nothing when observer.stop_requested ended it early. A restored
  // state may start mid-epoch: the steps before it ran before the checkpoint.
  std::optional<EpochReport> run_epoch(const TrainObserver& observer) {
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t permutation_seed =
        math::mix64(config.seed) + static_cast<std::uint64_t>(epoch);
    if (sharding.ranks != nullptr) {
      prepare_rank_batches(permutation_seed);
    } else {
      backend.random_permutation(permutation_seed, train_data->rows(), permutation.data());
      train_data->prepare_batches(permutation.data(), train_data->rows(), batch_size);
    }
    step_losses.fill_zero();
    upload_step_schedule();
    // Captured afresh each epoch: what ran between epochs (validation, the observer's checkpoint)
    // may have moved the scratch memory a recording points into.
    captured_step.reset();
    warmup_step_ran = false;
    const std::int64_t first_step = step - epoch * steps_per_epoch;
    double last_loss = std::numeric_limits<double>::quiet_NaN();
    for (std::int64_t s = first_step; s < steps_per_epoch; ++s) {
      train_step(s);
      // A stop after the epoch's last step waits for the epoch's report (train() stops after
      // it): a state saved before the epoch counts would resume into an epoch with no step left.
      if (s + 1 < steps_per_epoch && agreed_stop(observer, s)) {
        stopped = true;
        return std::nullopt;
      }
      if (observer.on_step) {
        if (config.loss_every > 0 && (s + 1) % config.loss_every == 0) {
          float slots[kLossSlots];
          backend.download_bytes(slots, step_losses.data() + kLossSlots * s, sizeof slots);
          last_loss = slots_total(slots);
          // Across ranks this is one rank's share of the batch: the epoch's end judges the
          // reduced losses, so that every rank stops together.
          if (sharding.ranks == nullptr) stop_if_nonfinite(last_loss, s);
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        observer.on_step(epoch + 1, s + 1, steps_per_epoch,
                         seconds > 0 ? static_cast<double>(std::min((s + 1) * global_batch,
                                                                    sharding.global_train_rows)) /
                                           seconds
                                     : 0.0,
                         last_loss);
      }
    }
    // None when the state was saved after the epoch's last step but before the epoch counted
    // (checkpoints of versions that stopped there): the epoch completes with its train loss not
    // measured in this process.
    const bool steps_ran = first_step < steps_per_epoch;
    const std::vector<double> losses = epoch_step_losses();
    double train_loss = 0.0;
    double train_reconstruction_loss = 0.0;  // without the penalties, to set beside validation's
    std::int64_t trained_rows = 0;
    EpochReport report;
    for (std::int64_t s = first_step; s < steps_per_epoch; ++s) {
      const std::int64_t count = global_step_rows(s);
      double step_loss = 0.0;
      for (std::int64_t k = 0; k < kLossSlots; ++k) step_loss += losses[kLossSlots * s + k];
      stop_if_nonfinite(step_loss, s);
      if (!std::isfinite(step_loss)) {
        ++report.skipped_steps;
        continue;
      }
      train_loss += step_loss * static_cast<double>(count);
      train_reconstruction_loss +=
          static_cast<double>(losses[kLossSlots * s]) * static_cast<double>(count);
      trained_rows += count;
    }
    if (steps_ran && report.skipped_steps == steps_per_epoch - first_step)
      throw Error("training diverged: every step of epoch " + std::to_string(epoch + 1) +
                  " had a non-finite loss and was skipped (try a lower --lr or --clip-norm)");
    report.epoch = ++epoch;
    report.steps = steps_per_epoch;
    report.train_loss = steps_ran ? train_loss / static_cast<double>(trained_rows)
                                  : std::numeric_limits<double>::quiet_NaN();
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::int64_t processed_rows =
        std::max<std::int64_t>(sharding.global_train_rows - first_step * global_batch, 0);
    report.samples_per_second =
        report.seconds > 0 ? static_cast<double>(processed_rows) / report.seconds : 0.0;
    report.learning_rate = learning_rate(std::max<std::int64_t>(step - 1, 0));
    report.val_loss = validation_loss();
    if (!std::isfinite(report.val_loss) && config.on_nonfinite == NonFinitePolicy::stop)
      throw Error("training diverged: the validation loss after epoch " + std::to_string(epoch) +
                  " is " + std::to_string(report.val_loss) + "; the checkpoint of epoch " +
                  std::to_string(epoch - 1) +
                  " is the last good state (try a lower --lr or --clip-norm)");
    stop_if_diverged(trained_rows > 0
                         ? train_reconstruction_loss / static_cast<double>(trained_rows)
                         : std::numeric_limits<double>::quiet_NaN(),
                     report.val_loss);
    return report;
  }

  // The loss slots of every step of the running epoch, each the mean over the step's rows: across
  // ranks, each rank's means weighted by its rows of the step, summed over the ranks.
  std::vector<double> epoch_step_losses() {
    const std::vector<float> slots = step_losses.download();
    std::vector<double> losses(slots.begin(), slots.end());
    if (sharding.ranks == nullptr) return losses;
    for (std::int64_t s = 0; s < steps_per_epoch; ++s)
      for (std::int64_t k = 0; k < kLossSlots; ++k)
        losses[kLossSlots * s + k] *= static_cast<double>(train_data->batch_size(s));
    sharding.ranks->all_reduce_sum(losses.data(), static_cast<std::int64_t>(losses.size()));
    for (std::int64_t s = 0; s < steps_per_epoch; ++s)
      for (std::int64_t k = 0; k < kLossSlots; ++k)
        losses[kLossSlots * s + k] /= static_cast<double>(global_step_rows(s));
    return losses;
  }

  // This rank's share of every batch of the epoch: the permutation of the global training rows
  // that one process draws (Backend::random_permutation's: a sort by permutation_key, then by
  // index), cut into batches of global_batch rows, each keeping the rows this rank holds.
  void prepare_rank_batches(std::uint64_t seed) {
    const std::int64_t total = sharding.global_train_rows;
    std::vector<std::uint64_t> keys(static_cast<std::size_t>(total));
    for (std::int64_t i = 0; i < total; ++i)
      keys[static_cast<std::size_t>(i)] =
          math::permutation_key(seed, static_cast<std::uint64_t>(i));
    std::vector<std::int64_t> order(static_cast<std::size_t>(total));
    std::iota(order.begin(), order.end(), std::int64_t{0});
    std::sort(order.begin(), order.end(), [&](std::int64_t x, std::int64_t y) {
      return keys[x] != keys[y] ? keys[x] < keys[y] : x < y;
    });
    const std::int64_t held = train_data->rows();
    std::vector<std::int64_t> ids;
    ids.reserve(static_cast<std::size_t>(held));
    std::vector<std::int64_t> starts{0};
    starts.reserve(static_cast<std::size_t>(steps_per_epoch + 1));
    for (std::int64_t s = 0; s < steps_per_epoch; ++s) {
      for (std::int64_t at = s * global_batch; at < s * global_batch + global_step_rows(s); ++at) {
        const std::int64_t local = order[static_cast<std::size_t>(at)] - sharding.first_train_index;
        if (local >= 0 && local < held) ids.push_back(local);
      }
      starts.push_back(static_cast<std::int64_t>(ids.size()));
    }
    permutation.upload(ids);
    train_data->prepare_batches(permutation.data(), std::move(starts));
  }

  // observer.stop_requested, agreed by every rank: across ranks, asked every loss_every steps
  // (a collective each time) and true when any rank's is, so that all stop at the same step.
  bool agreed_stop(const TrainObserver& observer, std::int64_t index_in_epoch) {
    if (sharding.ranks == nullptr) return observer.stop_requested && observer.stop_requested();
    const std::int64_t every = std::max<std::int64_t>(1, config.loss_every);
    if (index_in_epoch >= 0 && (index_in_epoch + 1) % every != 0) return false;
    double stop = observer.stop_requested && observer.stop_requested() ? 1.0 : 0.0;
    sharding.ranks->all_reduce_max(&stop, 1);
    return stop > 0.0;
  }

  // A loss can stay finite and still diverge: a count head's log-rate driven into the range where
  // its rate is linearised (raw counts in the thousands as input) gives steps whose losses lie
  // orders of magnitude above the model's validation loss, or a validation loss far above that of
  // a model that predicts nothing; and a run can end worse than it began. Each stops training
  // with the advice that prevents it (README, "Faults while training"):
  // - after the first epoch (whose steps start from the untrained model), steps that averaged
  //   kDivergenceRatio times the validation loss after them: a trained model's steps average
  //   within a small factor of it (both are means of non-negative per-row losses);
  // - a validation loss kDivergenceRatio times that of the model with every parameter zero (each
  //   output its head's neutral value: a rate of 1, a support probability of 1/2);
  // - two epochs in, a validation loss above the one training started from, when it started from
  //   the initialisation. A start restored from a state (anchored at PCA, resumed, a recipe
  //   search's next round) may be fitted already, and training that does not improve on it has
  //   not diverged: the first two rules still catch a blow-up from it.
  void stop_if_diverged(double train_reconstruction_loss, double val_loss) const {
    // Without validation rows there is no validation loss to compare with (validation_loss is 0).
    if (sharding.global_validation_rows == 0) return;
    constexpr double kDivergenceRatio = 100.0;
    const std::string ratio = std::to_string(static_cast<int>(kDivergenceRatio));
    std::string why;
    if (epoch - start_epoch >= 2 && train_reconstruction_loss > kDivergenceRatio * val_loss)
      why = "the steps of epoch " + std::to_string(epoch) + " averaged a loss of " +
            std::to_string(train_reconstruction_loss) + ", over " + ratio +
            " times the validation loss of " + std::to_string(val_loss) + " after it";
    else if (val_loss > kDivergenceRatio * zero_model_loss)
      why = "the validation loss after epoch " + std::to_string(epoch) + " is " +
            std::to_string(val_loss) + ", over " + ratio + " times the " +
            std::to_string(zero_model_loss) + " of the model with every parameter zero";
    else if (epoch - start_epoch >= 2 && !restored && val_loss > start_loss)
      why = "the validation loss after epoch " + std::to_string(epoch) + " is " +
            std::to_string(val_loss) + ", above the " + std::to_string(start_loss) +
            " it had when training started at epoch " + std::to_string(start_epoch);
    if (why.empty()) return;
    const bool raw_input = config.input_transform == InputTransform::none;
    throw Error("training diverged: " + why + "; the checkpoint of epoch " +
                std::to_string(epoch - 1) + " is the last written (try " +
                (raw_input ? "--input-transform log1p, " : "") + "a lower --lr or --clip-norm)");
  }

  // observer.validation_score of the current parameters, multiplied in fp32: the score stands
  // for the trained model's use, which is in fp32 whatever the training precision.
  double validation_score(const TrainObserver& observer) {
    backend.set_matmul_precision(MatmulPrecision::fp32);
    const double score = observer.validation_score();
    backend.set_matmul_precision(config.precision);
    return score;
  }

  void copy_parameters(float* to, const float* from) {
    backend.copy_bytes(to, from, net.parameters().size() * sizeof(float));
  }

  // zero_model_loss, measured with the parameters set aside and restored bit for bit.
  void measure_zero_model_loss() {
    Buffer<float>& parameters = net.parameters();
    Buffer<float> kept(backend, parameters.size());
    backend.copy_bytes(kept.data(), parameters.data(), parameters.size() * sizeof(float));
    parameters.fill_zero();
    zero_model_loss = validation_loss();
    backend.copy_bytes(parameters.data(), kept.data(), parameters.size() * sizeof(float));
  }

  // The weight of the latents' rate in the loss: per entry of the data, as every reconstruction
  // loss is averaged.
  float rate_weight() const {
    return config.rate_lambda / static_cast<float>(net.layout().config().input_dim);
  }

  // Mean reconstruction loss over validation rows (the activity penalties excluded: they measure
  // the code, not the reconstruction), plus with rate-aware training the rate of the rows'
  // integer codes: what the model trains for, the description length of the rows.
  double validation_loss() {
    double sums[2] = {local_validation_loss_sum(), static_cast<double>(validation_data->rows())};
    if (sharding.ranks != nullptr) sharding.ranks->all_reduce_sum(sums, 2);
    return sums[1] > 0.0 ? sums[0] / sums[1] : 0.0;
  }

  // The sum over this process's validation rows of their losses (validation_loss).
  double local_validation_loss_sum() {
    if (validation_data->rows() == 0) return 0.0;
    validation_losses.fill_zero();
    const ModelLayout& layout = net.layout();
    for (std::int64_t b = 0; b < validation_data->batches(); ++b) {
      float* slots = validation_losses.data() + 2 * b;
      forward_with_loss(validation_data->gather(b), slots);
      if (config.rate_lambda > 0.0f)
        backend.latent_rate_penalty(rate_weight(), net.parameters().data() + layout.prior_offset(),
                                    net.latent(), DenseView{}, nullptr, slots + 1);
    }
    const std::vector<float> losses = validation_losses.download();
    double total = 0.0;
    for (std::int64_t b = 0; b < validation_data->batches(); ++b)
      total += (static_cast<double>(losses[2 * b]) + losses[2 * b + 1]) *
               static_cast<double>(validation_data->batch_size(b));
    return total;
  }
};

namespace {

// What the configuration needs of rows data_cols wide, whichever way they were split.
void check_training_config(const ModelConfig& model, const TrainConfig& config,
                           std::int64_t data_cols) {
  require(config.batch_size > 0, "batch size must be positive");
  require(config.epochs >= 0, "epochs must not be negative");
  require(model.input_dim == data_cols, "model input width " + std::to_string(model.input_dim) +
                                            " differs from the data's " +
                                            std::to_string(data_cols) + " columns");
  validate_penalty(model, config.penalty);
  validate_loss_params(config.loss_params);
  validate_optimization(config);
  require(std::isfinite(config.rate_lambda) && config.rate_lambda >= 0.0f,
          "rate lambda (--rate-lambda) must be finite and non-negative");
  require((config.rate_lambda > 0.0f) == model.latent_prior,
          config.rate_lambda > 0.0f
              ? "rate-aware training (--rate-lambda) needs a model with a latent prior"
              : "a model with a latent prior trains with a positive --rate-lambda");
  validate_sparse_code_training(model, config);
  require(!model.tied_weights || output_heads(config.loss) == 1,
          std::string("tied weights need one output per column; --loss ") + loss_name(config.loss) +
              " has " + std::to_string(output_heads(config.loss)));
  require(config.loss_params.dispersion == Dispersion::entry || dispersion_head(config.loss) >= 0,
          std::string("--dispersion feature needs a loss with a dispersion (nb, zinb, "
                      "hurdle_nb); --loss ") +
              loss_name(config.loss) + " has none");
  require(!config.loss_params.size_factors || log_mean_head(config.loss) >= 0,
          std::string("--size-factors needs a loss with a log-mean (poisson, nb, zinb, hurdle, "
                      "hurdle_nb); --loss ") +
              loss_name(config.loss) + " has none");
}

// A caller's own split (Trainer's constructor of train and validation rows).
void check_split(const ModelConfig& model, const TrainConfig& config, const HostCsr& train_rows,
                 const HostCsr& validation_rows) {
  train_rows.validate();
  validation_rows.validate();
  require(train_rows.rows >= 1, "training needs at least 1 training row, none were given");
  require(validation_rows.cols == train_rows.cols,
          "the validation rows have " + std::to_string(validation_rows.cols) +
              " columns, the training rows " + std::to_string(train_rows.cols));
  check_training_config(model, config, train_rows.cols);
}

}  // namespace

template <typename Matrix>
std::unique_ptr<Trainer::Impl> Trainer::make_impl(Backend& backend, const ModelConfig& model,
                                                  const TrainConfig& config, const Matrix& data) {
  require(data.rows >= 2,
          "training needs at least 2 rows, the data has " + std::to_string(data.rows));
  check_training_config(model, config, data.cols);
  const auto split = split_rows(data.rows, config.val_fraction, config.seed);
  return make_impl(backend, model, config, select_rows(data, split.first),
                   select_rows(data, split.second));
}

template <typename Matrix>
std::unique_ptr<Trainer::Impl> Trainer::make_impl(Backend& backend, const ModelConfig& model,
                                                  const TrainConfig& config,
                                                  const Matrix& train_rows,
                                                  const Matrix& validation_rows) {
  // The scale of all the rows, as when the trainer splits them itself.
  const float scale =
      config.scale == ScaleMode::max
          ? std::max({1.0f, max_value(train_rows.values), max_value(validation_rows.values)})
          : 1.0f;
  const ModelConfig shaped = with_loss_heads(model, config.loss, config.loss_params);
  const Sharding sharding = single_process(train_rows, validation_rows);
  const auto build = [&](std::int64_t batch_size) {
    TrainConfig sized = config;
    sized.batch_size = batch_size;
    return std::make_unique<Impl>(backend, shaped, sized, scale, train_rows, validation_rows,
                                  sharding);
  };
  try {
    return build(config.batch_size);
  } catch (const OutOfDeviceMemory& out_of_memory) {
    // Everything allocated so far was released on the way here: find the largest batch that
    // fits by building the trainer again, so the advice is measured rather than estimated.
    std::int64_t fits = 0;
    std::int64_t too_large = std::min(config.batch_size, train_rows.rows);
    while (too_large - fits > 1) {
      const std::int64_t trial = fits + (too_large - fits) / 2;
      try {
        build(trial);
        fits = trial;
      } catch (const OutOfDeviceMemory&) {
        too_large = trial;
      }
    }
    throw Error(std::string(out_of_memory.what()) +
                (fits > 0 ? "; the largest batch that fits is " + std::to_string(fits) +
                                " rows (--batch " + std::to_string(fits) + ")"
                          : "; not even a batch of 1 row fits: the data and the model alone "
                            "exceed the device's memory"));
  }
}

Trainer::Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
                 const HostCsr& data)
    : impl_((data.validate(), make_impl(backend, model, config, data))) {}

Trainer::Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
                 const HostDense& data)
    : impl_(make_impl(backend, model, config, data)) {}

Trainer::Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
                 const HostCsr& train_rows, const HostCsr& validation_rows)
    : impl_((check_split(model, config, train_rows, validation_rows),
             make_impl(backend, model, config, train_rows, validation_rows))) {}

namespace {

// The ids of sorted_ids that lie in [first, first + count), made relative to first, and the
// position of the first of them in sorted_ids.
std::pair<std::vector<std::int64_t>, std::int64_t> ids_within(
    const std::vector<std::int64_t>& sorted_ids, std::int64_t first, std::int64_t count) {
  const auto begin = std::lower_bound(sorted_ids.begin(), sorted_ids.end(), first);
  const auto end = std::lower_bound(begin, sorted_ids.end(), first + count);
  std::vector<std::int64_t> ids(begin, end);
  for (std::int64_t& id : ids) id -= first;
  return {std::move(ids), static_cast<std::int64_t>(begin - sorted_ids.begin())};
}

// What needs a whole batch on one rank, refused across ranks before anything is allocated.
void check_data_parallel(const ModelConfig& model, const TrainConfig& config) {
  require(config.penalty.kl_beta == 0.0f,
          "the KL penalty (--kl-beta) takes the mean activation over the whole batch, which no "
          "rank holds across ranks: train it in one process");
  require(model.latent_sparsity != LatentSparsity::batchtopk,
          "BatchTopK (--latent-act batchtopk:K) selects among the whole batch, which no rank "
          "holds across ranks: use topk:K, or train in one process");
  require(config.aux_k == 0,
          "AuxK (--aux-k) counts dead latents over whole batches, which no rank holds across "
          "ranks: train it in one process");
}

}  // namespace

template <typename Matrix>
std::unique_ptr<Trainer::Impl> Trainer::make_sharded_impl(
    Backend& backend, const ModelConfig& model, const TrainConfig& config, const Matrix& shard_rows,
    const RowShard& shard, Communicator& communicator) {
  Communicator& ranks = communicator;
  // Every rank must agree on the matrix: its shape, and where each rank's rows lie.
  double shape[2] = {static_cast<double>(shard_rows.cols), -static_cast<double>(shard_rows.cols)};
  ranks.all_reduce_max(shape, 2);
  require(shape[0] == -shape[1], "the ranks' rows differ in width (" +
                                     std::to_string(static_cast<std::int64_t>(-shape[1])) + " to " +
                                     std::to_string(static_cast<std::int64_t>(shape[0])) +
                                     " columns)");
  const std::vector<double> ranges = ranks.all_gather(
      {static_cast<double>(shard.first_row), static_cast<double>(shard_rows.rows)});
  double next = 0.0;
  for (std::size_t r = 0; r + 1 < ranges.size(); r += 2) {
    require(ranges[r] == next, "rank " + std::to_string(r / 2) + "'s rows begin at row " +
                                   std::to_string(static_cast<std::int64_t>(ranges[r])) +
                                   ", not where the rank before it ends (row " +
                                   std::to_string(static_cast<std::int64_t>(next)) + ")");
    next += ranges[r + 1];
  }
  require(next == static_cast<double>(shard.total_rows),
          "the ranks hold " + std::to_string(static_cast<std::int64_t>(next)) + " rows of " +
              std::to_string(shard.total_rows));
  require(shard.total_rows >= 2,
          "training needs at least 2 rows, the data has " + std::to_string(shard.total_rows));
  check_training_config(model, config, shard_rows.cols);
  if (ranks.size() > 1) check_data_parallel(model, config);

  // The split one process makes of the whole matrix, of which this rank keeps its rows.
  const auto split = split_rows(shard.total_rows, config.val_fraction, config.seed);
  const auto train = ids_within(split.first, shard.first_row, shard_rows.rows);
  const auto validation = ids_within(split.second, shard.first_row, shard_rows.rows);
  const Matrix train_rows = select_rows(shard_rows, train.first);
  const Matrix validation_rows = select_rows(shard_rows, validation.first);
  double largest =
      config.scale == ScaleMode::max
          ? std::max({1.0f, max_value(train_rows.values), max_value(validation_rows.values)})
          : 1.0;
  ranks.all_reduce_max(&largest, 1);
  double largest_training_value = max_value(train_rows.values);
  ranks.all_reduce_max(&largest_training_value, 1);
  const Sharding sharding{&ranks,
                          static_cast<std::int64_t>(split.first.size()),
                          static_cast<std::int64_t>(split.second.size()),
                          train.second,
                          detail::median_total(ranks.all_gather(detail::row_totals(train_rows))),
                          largest_training_value};
  const ModelConfig shaped = with_loss_heads(model, config.loss, config.loss_params);
  return std::make_unique<Impl>(backend, shaped, config, static_cast<float>(largest), train_rows,
                                validation_rows, sharding);
}

Trainer::Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
                 const HostCsr& shard_rows, const RowShard& shard, Communicator& communicator)
    : impl_((shard_rows.validate(),
             make_sharded_impl(backend, model, config, shard_rows, shard, communicator))) {}

Trainer::Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
                 const HostDense& shard_rows, const RowShard& shard, Communicator& communicator)
    : impl_(make_sharded_impl(backend, model, config, shard_rows, shard, communicator)) {}

Trainer::~Trainer() = default;

std::vector<EpochReport> Trainer::train(const TrainObserver& observer) {
  std::vector<EpochReport> reports;
  Impl& t = *impl_;
  const MatmulPrecisionScope precision(t.backend, t.config.precision);
  t.stopped = false;
  const bool by_score = static_cast<bool>(observer.validation_score);
  if (t.epoch < t.config.epochs) {
    t.measure_zero_model_loss();
    t.start_loss = t.validation_loss();
    t.start_epoch = t.epoch;
    if (by_score && t.epoch == 0 && t.step == 0) {
      // The starting parameters compete with every epoch: a start that is already good (an
      // initialisation fitted elsewhere) is never traded for a worse epoch.
      t.best_val_loss = -t.validation_score(observer);
      t.epochs_without_improvement = 0;
      t.copy_parameters(t.best_parameters.data(), t.net.parameters().data());
    }
  }
  bool stopped_early = false;
  while (t.epoch < t.config.epochs) {
    std::optional<EpochReport> epoch_report = t.run_epoch(observer);
    if (!epoch_report) break;
    EpochReport& report = *epoch_report;
    if (by_score) report.score = t.validation_score(observer);
    // TrainingState::best_val_loss: lower is better, so a score enters negated.
    const double selection = by_score ? -report.score : report.val_loss;
    report.best = selection < t.best_val_loss;
    if (report.best) {
      t.best_val_loss = selection;
      t.epochs_without_improvement = 0;
      t.copy_parameters(t.best_parameters.data(), t.net.parameters().data());
    } else {
      ++t.epochs_without_improvement;
    }
    if (observer.on_epoch) observer.on_epoch(report);
    reports.push_back(report);
    stopped_early = t.config.patience > 0 && t.epochs_without_improvement >= t.config.patience;
    if (stopped_early) break;
    if (t.agreed_stop(observer, -1)) {
      t.stopped = true;
      break;
    }
  }
  if (!t.stopped && (by_score || stopped_early)) keep_best_parameters();
  return reports;
}

bool Trainer::interrupted() const { return impl_->stopped; }
void Trainer::keep_best_parameters() {
  impl_->copy_parameters(impl_->net.parameters().data(), impl_->best_parameters.data());
}
double Trainer::validation_loss() {
  const MatmulPrecisionScope precision(impl_->backend, impl_->config.precision);
  return impl_->validation_loss();
}
const HostCsr& Trainer::training_counts() const { return impl_->training_raw; }
const HostCsr& Trainer::validation_counts() const { return impl_->validation_raw; }
Network& Trainer::network() { return impl_->net; }
const TrainConfig& Trainer::config() const { return impl_->config; }
float Trainer::scale() const { return impl_->scale; }
double Trainer::reference_library_size() const { return impl_->input.reference_library_size; }

double Trainer::largest_training_value() const { return impl_->sharding.largest_training_value; }
int Trainer::completed_epochs() const { return impl_->epoch; }
std::int64_t Trainer::completed_steps() const { return impl_->step; }
std::int64_t Trainer::steps_per_epoch() const { return impl_->steps_per_epoch; }
std::int64_t Trainer::train_rows() const { return impl_->sharding.global_train_rows; }
std::int64_t Trainer::validation_rows() const { return impl_->sharding.global_validation_rows; }
const std::string& Trainer::data_placement() const { return impl_->placement.summary; }
const std::string& Trainer::step_execution() const { return impl_->step_execution; }

Trainer::State Trainer::state() const {
  const Impl& t = *impl_;
  return {t.net.parameters().download(),
          t.first_moment.download(),
          t.second_moment.download(),
          t.best_parameters.download(),
          t.epoch,
          t.step,
          t.best_val_loss,
          t.epochs_without_improvement,
          t.net.dead_steps().download()};
}

void Trainer::restore(const State& state) {
  Impl& t = *impl_;
  t.restored = true;
  const std::size_t n = t.net.parameters().size();
  require(state.parameters.size() == n && state.first_moment.size() == n &&
              state.second_moment.size() == n && state.best_parameters.size() == n,
          "checkpoint holds " + std::to_string(state.parameters.size()) +
              " parameters, the model has " + std::to_string(n));
  // A step outside its epoch means other rows than the checkpoint's (another number of steps an
  // epoch): the epoch would start at a batch that does not exist. The end of the epoch is
  // accepted: versions that stopped after an epoch's last step saved the epoch uncounted.
  const std::int64_t epoch_start = static_cast<std::int64_t>(state.epoch) * t.steps_per_epoch;
  require(state.epoch >= 0 && state.step >= epoch_start &&
              state.step <= epoch_start + t.steps_per_epoch,
          "checkpoint's step " + std::to_string(state.step) + " lies outside its epoch " +
              std::to_string(state.epoch + 1) + " on these rows (" +
              std::to_string(t.steps_per_epoch) +
              " steps an epoch): resume on the rows it was trained on");
  t.net.parameters().upload(state.parameters);
  t.first_moment.upload(state.first_moment);
  t.second_moment.upload(state.second_moment);
  t.epoch = state.epoch;
  t.step = state.step;
  t.best_val_loss = state.best_val_loss;
  t.epochs_without_improvement = state.epochs_without_improvement;
  t.best_parameters.upload(state.best_parameters);
  // A state without counters (a run without AuxK, or a checkpoint from before they were stored)
  // leaves them at 0; a run without AuxK has none to restore.
  Buffer<std::int32_t>& dead_steps = t.net.dead_steps();
  if (!state.latent_dead_steps.empty() && !dead_steps.empty()) {
    require(state.latent_dead_steps.size() == dead_steps.size(),
            "checkpoint holds AuxK counters for " + std::to_string(state.latent_dead_steps.size()) +
                " latents, the model has " + std::to_string(dead_steps.size()));
    dead_steps.upload(state.latent_dead_steps);
  }
}

}  // namespace sparseae
