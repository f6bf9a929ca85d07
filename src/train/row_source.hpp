#pragma once
// The rows a trainer draws batches from, resident on the backend, and the batch they are gathered
// into. Sparse rows stay CSR from file to loss (SpMM first layer, CSR-target loss); dense rows
// take the dense path (GEMM first layer, dense-target loss).
#include <cstdint>
#include <memory>
#include <string>

#include "model/batch_input.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"
#include "sparseae/network.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::detail {

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual std::int64_t rows() const = 0;
  // Sets the batches forward_and_loss draws from: batch b holds the rows
  // row_ids[b * batch_rows, min(count, (b + 1) * batch_rows)) (backend memory, left unchanged
  // until the next call). A sparse source reads every batch's non-zero count here, in one host
  // round trip, so that a step never waits for the device.
  virtual void prepare_batches(const std::int64_t* row_ids, std::int64_t count,
                               std::int64_t batch_rows);
  std::int64_t batches() const { return (count_ + batch_rows_ - 1) / batch_rows_; }
  // The number of rows in batch b.
  std::int64_t batch_size(std::int64_t batch) const;
  // Gathers batch b of the prepared batches, runs the network forward on it, and writes the
  // reconstruction loss's gradient into the network's output gradient and each row's loss into
  // row_loss.
  virtual void forward_and_loss(Network& network, std::int64_t batch, LossKind loss,
                                const LossParams& params, float* row_loss) = 0;
  // Backward through the network for the batch of the last forward_and_loss.
  virtual void backward(Network& network, const Network::ActivationHook& hook) = 0;

  // ---- a captured step (Backend::capture) ----
  // Why the source cannot run a captured step, or empty when it can.
  virtual std::string capture_obstacle() const { return {}; }
  // Copies the row ids of batch b, which must hold batch_rows rows, into a buffer of the source's
  // own: the batch that forward_and_loss_staged gathers.
  virtual void stage_batch(std::int64_t batch) = 0;
  // forward_and_loss on the staged batch, with arguments that are the same for every staged
  // batch: a sparse batch's nnz is passed as its buffer's capacity (the ops find the batch's own
  // on the device).
  virtual void forward_and_loss_staged(Network& network, LossKind loss, const LossParams& params,
                                       float* row_loss) = 0;

 protected:
  // The row ids of batch b (backend memory): those from position batch_start(b) of the ids.
  const std::int64_t* batch_ids(std::int64_t batch) const;
  std::int64_t batch_start(std::int64_t batch) const { return batch * batch_rows_; }

 private:
  const std::int64_t* row_ids_ = nullptr;
  std::int64_t count_ = 0;
  std::int64_t batch_rows_ = 1;
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
