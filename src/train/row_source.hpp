#pragma once
// The rows a trainer draws batches from, and the batch they are gathered into. Sparse rows stay
// CSR from file to loss (SpMM first layer, CSR-target loss); dense rows take the dense path (GEMM
// first layer, dense-target loss). The step that runs on a batch is the Trainer's (trainer.cpp).
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "model/batch_input.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"
#include "sparseae/network.hpp"
#include "sparseae/train_config.hpp"

namespace sparseae::detail {

// The rows of one batch, as the network reads them (input: after BatchInputOptions' transform)
// and as the loss compares against them (target: the counts themselves), both in backend memory.
template <typename View>
struct BatchRows {
  View input;
  View target;
};

// One batch as the training step reads it: its rows (CSR, or dense on the dense path), each
// row's log size factor (backend memory, or null without size factors), and the non-zeros the
// first layer chooses between spmm and densifying by (Network::forward's nnz_for_choice; the
// data's mean for a batch of this many rows, so every batch of the data chooses alike).
struct Batch {
  std::int64_t rows = 0;
  std::variant<BatchRows<CsrView>, BatchRows<ConstDenseView>> counts;
  const float* log_offsets = nullptr;
  std::int64_t nnz_for_choice = -1;
};

// The three things the training step does with a batch, for either kind of rows: the network's
// forward; the reconstruction loss, writing its gradient into the network's output gradient and
// each row's loss into row_loss; and the backward through the network.
void forward(Network& network, const Batch& batch);
void reconstruction_loss(Backend& backend, LossKind loss, const LossParams& params,
                         Network& network, const Batch& batch, float* row_loss);
void backward(Network& network, const Batch& batch, const Network::ActivationHook& hook);

// Where a trainer's batches come from: rows resident on the backend, gathered there by row id;
// or rows kept in host memory and streamed to the device a batch ahead. Each hands out Batch
// views of buffers of its own, valid until the next gather.
class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual std::int64_t rows() const = 0;
  // Sets the batches gather draws from: batch b holds the rows
  // row_ids[b * batch_rows, min(count, (b + 1) * batch_rows)) (backend memory, left unchanged
  // until the next call). A sparse source reads every batch's non-zero count here, in one host
  // round trip, so that a step never waits for the device.
  void prepare_batches(const std::int64_t* row_ids, std::int64_t count, std::int64_t batch_rows);
  // The same with batches of any size, empty ones included: batch b holds the rows
  // row_ids[batch_starts[b], batch_starts[b + 1]). A rank of a data-parallel run gets its share of
  // every global batch this way, which varies from batch to batch.
  virtual void prepare_batches(const std::int64_t* row_ids, std::vector<std::int64_t> batch_starts);
  std::int64_t batches() const { return static_cast<std::int64_t>(batch_starts_.size()) - 1; }
  // The number of rows in batch b.
  std::int64_t batch_size(std::int64_t batch) const;
  // Gathers batch b of the prepared batches.
  virtual Batch gather(std::int64_t batch) = 0;

  // ---- a captured step (Backend::capture) ----
  // Why the source cannot run a captured step, or empty when it can.
  virtual std::string capture_obstacle() const { return {}; }
  // Copies the row ids of batch b, which must hold batch_rows rows, into a buffer of the source's
  // own: the batch that gather_staged gathers.
  virtual void stage_batch(std::int64_t batch) = 0;
  // gather on the staged batch, with arguments that are the same for every staged batch: a
  // sparse batch's nnz is its buffer's capacity (the ops find the batch's own on the device).
  virtual Batch gather_staged() = 0;

 protected:
  // The row ids of batch b (backend memory): those from position batch_start(b) of the ids.
  const std::int64_t* batch_ids(std::int64_t batch) const;
  std::int64_t batch_start(std::int64_t batch) const {
    return batch_starts_[static_cast<std::size_t>(batch)];
  }
  // The ids prepared, and how many.
  const std::int64_t* row_ids() const { return row_ids_; }
  std::int64_t prepared_rows() const { return batch_starts_.back(); }
  // The rows of every prepared batch but the last, when they are all alike (the last may be
  // shorter); 0 when they differ.
  std::int64_t uniform_batch_rows() const;

 private:
  const std::int64_t* row_ids_ = nullptr;
  std::vector<std::int64_t> batch_starts_{0};
};

// counts are uploaded as they are: the caller scales them first. input: what the network reads
// of each batch (BatchInput). placement: resident uploads the rows once; streamed keeps them in
// host memory and copies each batch to the device while the one before it computes
// (automatic is the caller's to resolve).
std::unique_ptr<RowSource> make_row_source(Backend& backend, HostCsr counts,
                                           std::int64_t batch_rows, const BatchInputOptions& input,
                                           DataPlacement placement);
std::unique_ptr<RowSource> make_row_source(Backend& backend, const HostDense& counts,
                                           std::int64_t batch_rows, const BatchInputOptions& input);

}  // namespace sparseae::detail
