#pragma once
// The rows a trainer draws batches from, resident on the backend, and the batch they are gathered
// into. Sparse rows stay CSR from file to loss (SpMM first layer, CSR-target loss); dense rows
// take the dense path (GEMM first layer, dense-target loss).
#include <cstdint>
#include <memory>

#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"
#include "sparseae/network.hpp"

namespace sparseae::detail {

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual std::int64_t rows() const = 0;
  // Gathers rows row_ids[0..count) (backend memory) into the batch, runs the network forward on
  // it, and writes the reconstruction loss's gradient into the network's output gradient and
  // each row's loss into row_loss.
  virtual void forward_and_loss(Network& network, const std::int64_t* row_ids, std::int64_t count,
                                LossKind loss, const LossParams& params, float* row_loss) = 0;
  // Backward through the network for the batch of the last forward_and_loss.
  virtual void backward(Network& network, const Network::ActivationHook& hook) = 0;
};

// counts are uploaded as they are: the caller scales them first.
std::unique_ptr<RowSource> make_row_source(Backend& backend, const HostCsr& counts,
                                           std::int64_t batch_rows);
std::unique_ptr<RowSource> make_row_source(Backend& backend, const HostDense& counts,
                                           std::int64_t batch_rows);

}  // namespace sparseae::detail
