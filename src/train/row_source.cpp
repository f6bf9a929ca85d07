#include "train/row_source.hpp"

#include <algorithm>
#include <functional>
#include <numeric>
#include <vector>

namespace sparseae::detail {

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
  SparseRows(Backend& backend, const HostCsr& counts, std::int64_t batch_rows)
      : backend_(backend),
        data_(backend, counts),
        batch_(backend, counts.cols, batch_rows, max_batch_nnz(counts, batch_rows)) {}

  std::int64_t rows() const override { return data_.rows(); }

  void forward_and_loss(Network& network, const std::int64_t* row_ids, std::int64_t count,
                        LossKind loss, const LossParams& params, float* row_loss) override {
    const std::int64_t nnz = backend_.gather_rows(data_.view(), row_ids, count, batch_.output());
    current_ = batch_.view(count, nnz);
    network.forward(current_);
    backend_.reconstruction_loss(loss, params, network.output(), current_,
                                 network.output_gradient(), row_loss);
  }

  void backward(Network& network, const Network::ActivationHook& hook) override {
    network.backward(current_, hook);
  }

 private:
  Backend& backend_;
  BackendCsr data_;
  CsrBatchBuffer batch_;
  CsrView current_;
};

class DenseRows final : public RowSource {
 public:
  DenseRows(Backend& backend, const HostDense& counts, std::int64_t batch_rows)
      : backend_(backend),
        rows_(counts.rows),
        cols_(counts.cols),
        data_(backend, counts.values),
        batch_(backend, static_cast<std::size_t>(batch_rows * counts.cols)) {}

  std::int64_t rows() const override { return rows_; }

  void forward_and_loss(Network& network, const std::int64_t* row_ids, std::int64_t count,
                        LossKind loss, const LossParams& params, float* row_loss) override {
    current_ = batch_.matrix(count, cols_);
    backend_.gather_dense_rows(data_.matrix(rows_, cols_), row_ids, count, current_);
    network.forward(ConstDenseView(current_));
    backend_.reconstruction_loss(loss, params, network.output(), ConstDenseView(current_),
                                 network.output_gradient(), row_loss);
  }

  void backward(Network& network, const Network::ActivationHook& hook) override {
    network.backward(ConstDenseView(current_), hook);
  }

 private:
  Backend& backend_;
  std::int64_t rows_;
  std::int64_t cols_;
  Buffer<float> data_;
  Buffer<float> batch_;
  DenseView current_;
};

}  // namespace

std::unique_ptr<RowSource> make_row_source(Backend& backend, const HostCsr& counts,
                                           std::int64_t batch_rows) {
  return std::make_unique<SparseRows>(backend, counts, batch_rows);
}

std::unique_ptr<RowSource> make_row_source(Backend& backend, const HostDense& counts,
                                           std::int64_t batch_rows) {
  return std::make_unique<DenseRows>(backend, counts, batch_rows);
}

}  // namespace sparseae::detail
