#pragma once
// Trains a Network on a count matrix: a seeded train/validation split, a fresh permutation per
// epoch drawn on the backend, batches gathered on the backend, the loss read as CSR, penalties,
// gradient clipping, a learning-rate schedule, early stopping, and metrics on validation rows.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"
#include "sparseae/model.hpp"
#include "sparseae/network.hpp"
#include "sparseae/ops.hpp"
#include "sparseae/train_config.hpp"

namespace sparseae {

class Communicator;  // the ranks of a data-parallel run (src/core/communicator.hpp)

// Where one rank's rows lie in a data-parallel run: rows [first_row, first_row + its rows) of a
// matrix of total_rows rows, the ranks' ranges adjoining in rank order.
struct RowShard {
  std::int64_t first_row = 0;
  std::int64_t total_rows = 0;
};

struct EpochReport {
  int epoch = 0;  // 1-based
  std::int64_t steps = 0;
  // NaN when no step of the epoch ran in this process (a state saved after its last step by a
  // version that did not count the epoch there).
  double train_loss = 0;
  double val_loss = 0;
  double seconds = 0;
  double samples_per_second = 0;
  double learning_rate = 0;
  std::int64_t skipped_steps = 0;  // NonFinitePolicy::skip: steps whose loss was not finite
  // TrainObserver::validation_score of the epoch's parameters; NaN when not selecting by score.
  double score = std::numeric_limits<double>::quiet_NaN();
  // The epoch improved on the best so far (its score, else its validation loss): its parameters
  // are the ones kept.
  bool best = false;
};

// What the trainer reports while it runs; the CLI draws its progress bar from these.
struct TrainObserver {
  // Called after every step; loss is the last loss read back (every TrainConfig::loss_every
  // steps, since reading it waits for the device).
  std::function<void(int epoch, std::int64_t step, std::int64_t steps, double samples_per_second,
                     double loss)>
      on_step;
  std::function<void(const EpochReport&)> on_epoch;
  // Asked after every step that leaves steps in its epoch, and after the on_epoch of every epoch
  // that patience does not end training at: true ends training there (Trainer::interrupted()), with
  // the state of that step, which a checkpoint saves and Trainer::restore continues from. A stop
  // after an epoch's last step waits for the epoch to count, so that its report (losses, score,
  // selection) is not lost.
  std::function<bool()> stop_requested;
  // Optional, higher is better (e.g. the validation exact F1 of the current parameters). When
  // set, it chooses the parameters training keeps instead of the validation loss: a fresh start
  // scores its starting parameters first, as the best so far, and every epoch after it; patience
  // counts epochs without a higher score; and a train() that ends uninterrupted leaves the best
  // parameters, so a run never ends below where it started. Asked with the backend multiplying
  // in fp32, as every use of a trained model does.
  std::function<double()> validation_score;
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
  // The caller's own split: trains on train_rows and measures on validation_rows, in raw counts
  // (config.val_fraction unused; no validation rows: empty with the training rows' width). The
  // scale (ScaleMode::max) is taken over both, as over the whole data above.
  Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
          const HostCsr& train_rows, const HostCsr& validation_rows);
  // Data-parallel, one rank of communicator's: shard_rows are this rank's rows (raw counts), at
  // shard in the whole matrix. Every rank splits the whole matrix's row ids as the constructor of
  // data does and keeps the rows of each part that it holds; each step, a rank computes the
  // gradient on its rows of the global batch (the batch one process would draw: same seed, same
  // permutation of the training rows, config.batch_size rows), weighted by its share of the
  // batch, and the ranks sum the weighted gradients (Communicator::all_reduce_gradients) before
  // the same update on every rank. Losses, the scale, the reference library size and the
  // validation loss are reduced over the ranks, so every rank's parameters stay the same and
  // train as one process would, to float rounding. Every member is collective where it measures
  // (train, validation_loss): every rank calls it. Refused across ranks: what needs the whole
  // batch on one rank (the KL penalty's batch mean, BatchTopK's batch selection, AuxK's dead
  // counts).
  Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
          const HostCsr& shard_rows, const RowShard& shard, Communicator& communicator);
  // The same for dense rows (the dense path).
  Trainer(Backend& backend, const ModelConfig& model, const TrainConfig& config,
          const HostDense& shard_rows, const RowShard& shard, Communicator& communicator);
  ~Trainer();

  // Runs epochs from the current one up to config.epochs (or early stopping, or until
  // observer.stop_requested), keeping the best parameters by observer.validation_score when it
  // is set, else by the validation loss (restored when early stopping ends the run). Throws Error
  // naming the step when a loss is not finite under NonFinitePolicy::stop, and "training diverged"
  // when the losses stay finite but blow up: an epoch (after the first) whose steps averaged over
  // 100 times its validation loss, a validation loss over 100 times that of the model with every
  // parameter zero, or, two epochs in, a validation loss above the one training started from when
  // that start was the initialisation (not a state given to restore(): a PCA anchor, a resumed
  // run).
  std::vector<EpochReport> train(const TrainObserver& observer = {});
  // True when the last train() ended at observer.stop_requested, mid-epoch or between epochs.
  bool interrupted() const;
  // Sets the parameters to the best so far (TrainingState::best_parameters): what train() leaves
  // when it selects by observer.validation_score or early stopping ends it; with neither, a
  // caller that keeps the lowest validation loss asks for it.
  void keep_best_parameters();

  // Mean reconstruction loss of the current parameters on the validation rows.
  double validation_loss();
  // The training rows, in raw counts (what anchor_at_pca fits PCA on): this rank's, across ranks.
  const HostCsr& training_counts() const;
  // The validation rows, in raw counts (for metrics through TrainedModel::evaluate): this rank's,
  // across ranks.
  const HostCsr& validation_counts() const;

  Network& network();
  const TrainConfig& config() const;
  float scale() const;
  // The training rows' median total count in model units (after scale): the reference library
  // size of LossParams::size_factors (RunConfig::reference_library_size).
  double reference_library_size() const;
  // The largest value of the training rows, raw counts, over every rank.
  double largest_training_value() const;
  int completed_epochs() const;
  std::int64_t completed_steps() const;
  // Batches of config.batch_size training rows, the last one possibly shorter.
  std::int64_t steps_per_epoch() const;
  // The run's training and validation rows, over every rank.
  std::int64_t train_rows() const;
  std::int64_t validation_rows() const;
  // The placement of the rows and why, one line: "resident: 24.0 MiB of rows within a
  // 40000.0 MiB device-memory budget".
  const std::string& data_placement() const;
  // How each step is issued and why, one line: "captured: ..." or "plain: ...".
  const std::string& step_execution() const;

  // Optimizer state and progress, for checkpoints (train_config.hpp).
  using State = TrainingState;
  State state() const;
  void restore(const State& state);

 private:
  struct Impl;
  template <typename Matrix>
  static std::unique_ptr<Impl> make_impl(Backend& backend, const ModelConfig& model,
                                         const TrainConfig& config, const Matrix& data);
  template <typename Matrix>
  static std::unique_ptr<Impl> make_impl(Backend& backend, const ModelConfig& model,
                                         const TrainConfig& config, const Matrix& train_rows,
                                         const Matrix& validation_rows);
  template <typename Matrix>
  static std::unique_ptr<Impl> make_sharded_impl(Backend& backend, const ModelConfig& model,
                                                 const TrainConfig& config,
                                                 const Matrix& shard_rows, const RowShard& shard,
                                                 Communicator& communicator);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparseae
