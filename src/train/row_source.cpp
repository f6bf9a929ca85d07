#include "train/row_source.hpp"

#include <algorithm>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "sparseae/error.hpp"

namespace sparseae::detail {

void RowSource::prepare_batches(const std::int64_t* row_ids, std::int64_t count,
                                std::int64_t batch_rows) {
  require(count >= 0 && batch_rows > 0, "row source: a batch needs at least one row");
  row_ids_ = row_ids;
  count_ = count;
  batch_rows_ = batch_rows;
}

std::int64_t RowSource::batch_size(std::int64_t batch) const {
  // Not require(): its message would be built on every step.
  if (batch < 0 || batch >= batches())
    throw Error("row source: batch " + std::to_string(batch) + " of " + std::to_string(batches()) +
                " prepared");
  return std::min(batch_rows_, count_ - batch * batch_rows_);
}

const std::int64_t* RowSource::batch_ids(std::int64_t batch) const {
  return row_ids_ + batch * batch_rows_;
}

namespace {

// Largest number of non-zeros any batch of batch_rows rows of m can hold.
std::int64_t max_batch_nnz(const HostCsr& m, std::int64_t batch_rows) {
  std::vector<std::int64_t> lengths(static_cast<std::size_t>(m.rows));
  for (std::int64_t r = 0; r < m.rows; ++r) lengths[r] = m.row_offsets[r + 1] - m.row_offsets[r];
  const auto take = std::min<std::int64_t>(batch_rows, m.rows);
  std::partial_sort(lengths.begin(), lengths.begin() + take, lengths.end(), std::greater<>());
  return std::max<std::int64_t>(
      1, std::accumulate(lengths.begin(), lengths.begin() + take, std::int64_t{0}));
}

class SparseRows final : public RowSource {
 public:
  SparseRows(Backend& backend, const HostCsr& counts, std::int64_t batch_rows,
             const BatchInputOptions& input)
      : backend_(backend),
        data_(backend, counts),
        batch_(backend, counts.cols, batch_rows, max_batch_nnz(counts, batch_rows)),
        input_(backend, input, batch_rows, max_batch_nnz(counts, batch_rows)) {}

  std::int64_t rows() const override { return data_.rows(); }

  void prepare_batches(const std::int64_t* row_ids, std::int64_t count,
                       std::int64_t batch_rows) override {
    RowSource::prepare_batches(row_ids, count, batch_rows);
    batch_nnz_.resize(static_cast<std::size_t>(batches()));
    backend_.batch_nonzeros(data_.view(), row_ids, count, batch_rows, batch_nnz_.data());
  }

  void forward_and_loss(Network& network, std::int64_t batch, LossKind loss,
                        const LossParams& params, float* row_loss) override {
    const std::int64_t count = batch_size(batch);
    const std::int64_t nnz = batch_nnz_[static_cast<std::size_t>(batch)];
    backend_.gather_rows(data_.view(), batch_ids(batch), count, nnz, batch_.output());
    current_ = batch_.view(count, nnz);
    current_input_ = input_.input(current_);
    network.forward(current_input_, 0, input_.log_offsets(current_));
    backend_.reconstruction_loss(loss, params, network.output(), current_,
                                 network.output_gradient(), row_loss);
  }

  void backward(Network& network, const Network::ActivationHook& hook) override {
    network.backward(current_input_, hook);
  }

 private:
  Backend& backend_;
  BackendCsr data_;
  CsrBatchBuffer batch_;
  BatchInput input_;
  std::vector<std::int64_t> batch_nnz_;  // of each prepared batch
  CsrView current_;
  CsrView current_input_;
};

class DenseRows final : public RowSource {
 public:
  DenseRows(Backend& backend, const HostDense& counts, std::int64_t batch_rows,
            const BatchInputOptions& input)
      : backend_(backend),
        rows_(counts.rows),
        cols_(counts.cols),
        data_(backend, counts.values),
        batch_(backend, static_cast<std::size_t>(batch_rows * counts.cols)),
        input_(backend, input, batch_rows, batch_rows * counts.cols) {}

  std::int64_t rows() const override { return rows_; }

  void forward_and_loss(Network& network, std::int64_t batch, LossKind loss,
                        const LossParams& params, float* row_loss) override {
    const std::int64_t count = batch_size(batch);
    current_ = batch_.matrix(count, cols_);
    backend_.gather_dense_rows(data_.matrix(rows_, cols_), batch_ids(batch), count, current_);
    current_input_ = input_.input(ConstDenseView(current_));
    network.forward(current_input_, 0, input_.log_offsets(ConstDenseView(current_)));
    backend_.reconstruction_loss(loss, params, network.output(), ConstDenseView(current_),
                                 network.output_gradient(), row_loss);
  }

  void backward(Network& network, const Network::ActivationHook& hook) override {
    network.backward(current_input_, hook);
  }

 private:
  Backend& backend_;
  std::int64_t rows_;
  std::int64_t cols_;
  Buffer<float> data_;
  Buffer<float> batch_;
  BatchInput input_;
  DenseView current_;
  ConstDenseView current_input_;
};

}  // namespace

std::unique_ptr<RowSource> make_row_source(Backend& backend, const HostCsr& counts,
                                           std::int64_t batch_rows,
                                           const BatchInputOptions& input) {
  return std::make_unique<SparseRows>(backend, counts, batch_rows, input);
}

std::unique_ptr<RowSource> make_row_source(Backend& backend, const HostDense& counts,
                                           std::int64_t batch_rows,
                                           const BatchInputOptions& input) {
  return std::make_unique<DenseRows>(backend, counts, batch_rows, input);
}

}  // namespace sparseae::detail
