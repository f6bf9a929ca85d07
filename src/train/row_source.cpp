#include "train/row_source.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "core/row_checks.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/error.hpp"

namespace sparseae::detail {

void RowSource::prepare_batches(const std::int64_t* row_ids, std::int64_t count,
                                std::int64_t batch_rows) {
  require(count >= 0 && batch_rows > 0, "row source: a batch needs at least one row");
  std::vector<std::int64_t> starts;
  starts.reserve(static_cast<std::size_t>((count + batch_rows - 1) / batch_rows + 1));
  for (std::int64_t start = 0; start < count; start += batch_rows) starts.push_back(start);
  starts.push_back(count);
  prepare_batches(row_ids, std::move(starts));
}

void RowSource::prepare_batches(const std::int64_t* row_ids,
                                std::vector<std::int64_t> batch_starts) {
  require(!batch_starts.empty() && batch_starts.front() == 0 &&
              std::is_sorted(batch_starts.begin(), batch_starts.end()),
          "row source: batch starts must begin at 0 and never decrease");
  row_ids_ = row_ids;
  batch_starts_ = std::move(batch_starts);
}

std::int64_t RowSource::uniform_batch_rows() const {
  if (batches() == 0 || batch_size(0) == 0) return 0;
  const std::int64_t first = batch_size(0);
  // Uniform batches are what cutting the ids every `first` rows gives, the last one shorter.
  for (std::int64_t b = 0; b < batches(); ++b)
    if (batch_start(b) != b * first) return 0;
  return (prepared_rows() + first - 1) / first == batches() ? first : 0;
}

std::int64_t RowSource::batch_size(std::int64_t batch) const {
  // Not require(): its message would be built on every step.
  if (batch < 0 || batch >= batches())
    throw Error("row source: batch " + std::to_string(batch) + " of " + std::to_string(batches()) +
                " prepared");
  return batch_starts_[static_cast<std::size_t>(batch + 1)] -
         batch_starts_[static_cast<std::size_t>(batch)];
}

const std::int64_t* RowSource::batch_ids(std::int64_t batch) const {
  return row_ids_ + batch_start(batch);
}

void forward(Network& network, const Batch& batch) {
  if (const auto* sparse = std::get_if<BatchRows<CsrView>>(&batch.counts))
    network.forward(sparse->input, 0, batch.log_offsets, batch.nnz_for_choice);
  else
    network.forward(std::get<BatchRows<ConstDenseView>>(batch.counts).input, 0, batch.log_offsets);
}

void reconstruction_loss(Backend& backend, LossKind loss, const LossParams& params,
                         Network& network, const Batch& batch, float* row_loss) {
  std::visit(
      [&](const auto& rows) {
        backend.reconstruction_loss(loss, params, network.output(), rows.target,
                                    network.output_gradient(), row_loss);
      },
      batch.counts);
}

void backward(Network& network, const Batch& batch, const Network::ActivationHook& hook) {
  std::visit([&](const auto& rows) { network.backward(rows.input, hook); }, batch.counts);
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

// Rows resident on the backend, each batch gathered there from its row ids: a captured step
// gathers the ids staged in a buffer of the source's own.
class DeviceGatheredRows : public RowSource {
 public:
  void stage_batch(std::int64_t batch) override {
    const std::int64_t count = batch_size(batch);
    require(count == staged_rows(), "row source: a staged batch must be full (" +
                                        std::to_string(count) + " rows of " +
                                        std::to_string(staged_rows()) + ")");
    backend_.copy_bytes(staged_ids_.data(), batch_ids(batch),
                        staged_ids_.size() * sizeof(std::int64_t));
  }

 protected:
  DeviceGatheredRows(Backend& backend, std::int64_t batch_rows)
      : backend_(backend), staged_ids_(backend, static_cast<std::size_t>(batch_rows)) {}

  const std::int64_t* staged_ids() const { return staged_ids_.data(); }
  std::int64_t staged_rows() const { return static_cast<std::int64_t>(staged_ids_.size()); }

  Backend& backend_;

 private:
  Buffer<std::int64_t> staged_ids_;
};

// The non-zeros of a batch of rows of m, on average: what the first layer's choice between spmm
// and densifying is made for (Network::forward). Each batch, the last shorter one included, is
// judged at the data's mean density (to within one non-zero), and a captured step, which cannot
// choose per batch, chooses as the plain step does.
class MeanBatchNonzeros {
 public:
  explicit MeanBatchNonzeros(const HostCsr& m) : nnz_(m.nnz()), rows_(m.rows) {}
  std::int64_t operator()(std::int64_t batch_rows) const {
    return rows_ > 0 ? nnz_ * std::min(batch_rows, rows_) / rows_ : 0;
  }

 private:
  std::int64_t nnz_;
  std::int64_t rows_;
};

// The Batch of sparse rows gathered into target: what the first layer reads of them (input's
// transform, then the rows' log size factors, in that order on the backend) beside the counts.
Batch sparse_batch(BatchInput& input, CsrView target, std::int64_t nnz_for_choice) {
  return {target.rows, BatchRows<CsrView>{input.input(target), target}, input.log_offsets(target),
          nnz_for_choice};
}

class SparseRows final : public DeviceGatheredRows {
 public:
  SparseRows(Backend& backend, const HostCsr& counts, std::int64_t batch_rows,
             const BatchInputOptions& input)
      : DeviceGatheredRows(backend, batch_rows),
        data_(backend, counts),
        max_nnz_(max_batch_nnz(counts, batch_rows)),
        mean_batch_nnz_(counts),
        batch_(backend, counts.cols, batch_rows, max_nnz_),
        input_(backend, input, batch_rows, max_nnz_) {}

  std::int64_t rows() const override { return data_.rows(); }

  using RowSource::prepare_batches;
  void prepare_batches(const std::int64_t* ids, std::vector<std::int64_t> batch_starts) override {
    RowSource::prepare_batches(ids, std::move(batch_starts));
    batch_nnz_.assign(static_cast<std::size_t>(batches()), 0);
    if (prepared_rows() == 0) return;
    const std::int64_t uniform = uniform_batch_rows();
    if (uniform > 0) {
      backend_.batch_nonzeros(data_.view(), ids, prepared_rows(), uniform, batch_nnz_.data());
      return;
    }
    // Batches of differing sizes: each row's non-zeros in the one round trip, summed here.
    std::vector<std::int64_t> row_nnz(static_cast<std::size_t>(prepared_rows()));
    backend_.batch_nonzeros(data_.view(), ids, prepared_rows(), 1, row_nnz.data());
    for (std::int64_t b = 0; b < batches(); ++b)
      batch_nnz_[static_cast<std::size_t>(b)] =
          std::accumulate(row_nnz.begin() + batch_start(b),
                          row_nnz.begin() + batch_start(b) + batch_size(b), std::int64_t{0});
  }

  Batch gather(std::int64_t batch) override {
    return run(batch_ids(batch), batch_size(batch), batch_nnz_[static_cast<std::size_t>(batch)]);
  }

  Batch gather_staged() override { return run(staged_ids(), staged_rows(), max_nnz_); }

 private:
  // Gathers the count rows of ids (at most nnz non-zeros) and what the network reads of them.
  Batch run(const std::int64_t* ids, std::int64_t count, std::int64_t nnz) {
    backend_.gather_rows(data_.view(), ids, count, nnz, batch_.output());
    return sparse_batch(input_, batch_.view(count, nnz), mean_batch_nnz_(count));
  }

  BackendCsr data_;
  std::int64_t max_nnz_;  // of any batch of the rows: the capacity of the batch buffers
  MeanBatchNonzeros mean_batch_nnz_;
  CsrBatchBuffer batch_;
  BatchInput input_;
  std::vector<std::int64_t> batch_nnz_;  // of each prepared batch
};

// The rows stay in host memory; each batch is gathered on the host into page-locked staging
// memory and copied into one of two device batch buffers while the previous batch computes:
// batch b + 1's copies are issued before batch b's kernels, after those of batch b - 1, the last
// to read the buffer they overwrite (Backend::begin_uploads). The batches are the very bytes
// SparseRows gathers on the device, so both give the same training.
class StreamedSparseRows final : public RowSource {
 public:
  StreamedSparseRows(Backend& backend, HostCsr counts, std::int64_t batch_rows,
                     const BatchInputOptions& input)
      : backend_(backend),
        data_(std::move(counts)),
        max_nnz_(max_batch_nnz(data_, batch_rows)),
        mean_batch_nnz_(data_),
        input_(backend, input, batch_rows, max_nnz_) {
    for (Slot& slot : slots_) {
      slot.row_offsets = PinnedBuffer<RowOffset>(backend, static_cast<std::size_t>(batch_rows + 1));
      slot.col_indices = PinnedBuffer<ColIndex>(backend, static_cast<std::size_t>(max_nnz_));
      slot.values = PinnedBuffer<float>(backend, static_cast<std::size_t>(max_nnz_));
      slot.batch = CsrBatchBuffer(backend, data_.cols, batch_rows, max_nnz_);
    }
  }

  std::int64_t rows() const override { return data_.rows; }

  using RowSource::prepare_batches;
  void prepare_batches(const std::int64_t* ids, std::vector<std::int64_t> batch_starts) override {
    RowSource::prepare_batches(ids, std::move(batch_starts));
    host_ids_.resize(static_cast<std::size_t>(prepared_rows()));
    backend_.download_bytes(host_ids_.data(), ids, host_ids_.size() * sizeof(std::int64_t));
    for (const std::int64_t row : host_ids_)
      require(row >= 0 && row < data_.rows, gather_bad_row_message(row, data_.rows));
    for (int s = 0; s < Backend::kUploadSlots; ++s) {
      close(s);
      slots_[s].staged_batch = -1;
    }
  }

  Batch gather(std::int64_t batch) override {
    const int slot = slot_of(batch);
    if (slots_[slot].staged_batch != batch) stage(batch);
    close(slot);
    if (batch + 1 < batches()) stage(batch + 1);
    const std::int64_t count = batch_size(batch);
    return sparse_batch(input_, slots_[slot].batch.view(count, slots_[slot].nnz),
                        mean_batch_nnz_(count));
  }

  std::string capture_obstacle() const override {
    return "streamed rows are gathered by the host at every step";
  }
  void stage_batch(std::int64_t) override { throw Error("row source: " + capture_obstacle()); }
  Batch gather_staged() override { throw Error("row source: " + capture_obstacle()); }

 private:
  struct Slot {
    PinnedBuffer<RowOffset> row_offsets;
    PinnedBuffer<ColIndex> col_indices;
    PinnedBuffer<float> values;
    CsrBatchBuffer batch;  // backend memory
    std::int64_t staged_batch = -1;
    std::int64_t nnz = 0;
    bool open = false;  // uploads begun and not yet handed to the compute stream
  };

  static int slot_of(std::int64_t batch) { return static_cast<int>(batch % Backend::kUploadSlots); }

  // Gathers batch b into its slot's staging memory and issues the copies to its device buffer.
  void stage(std::int64_t batch) {
    const int index = slot_of(batch);
    Slot& slot = slots_[index];
    close(index);
    backend_.begin_uploads(index);
    slot.open = true;
    const std::int64_t count = batch_size(batch);
    const std::int64_t* ids = host_ids_.data() + batch_start(batch);
    RowOffset nnz = 0;
    slot.row_offsets.data()[0] = 0;
    for (std::int64_t i = 0; i < count; ++i) {
      const RowOffset begin = data_.row_offsets[ids[i]];
      const RowOffset length = data_.row_offsets[ids[i] + 1] - begin;
      std::copy_n(data_.col_indices.data() + begin, length, slot.col_indices.data() + nnz);
      std::copy_n(data_.values.data() + begin, length, slot.values.data() + nnz);
      nnz += length;
      slot.row_offsets.data()[i + 1] = nnz;
    }
    const CsrOutput out = slot.batch.output();
    backend_.upload_async(index, out.row_offsets, slot.row_offsets.data(),
                          static_cast<std::size_t>(count + 1) * sizeof(RowOffset));
    backend_.upload_async(index, out.col_indices, slot.col_indices.data(),
                          static_cast<std::size_t>(nnz) * sizeof(ColIndex));
    backend_.upload_async(index, out.values, slot.values.data(),
                          static_cast<std::size_t>(nnz) * sizeof(float));
    slot.staged_batch = batch;
    slot.nnz = nnz;
  }

  // Hands slot's open group of uploads to the compute stream: the ops after this wait for it,
  // and the next begin_uploads of the slot knows when its staging memory is free.
  void close(int index) {
    if (!slots_[index].open) return;
    backend_.use_uploads(index);
    slots_[index].open = false;
  }

  Backend& backend_;
  HostCsr data_;
  std::int64_t max_nnz_;
  MeanBatchNonzeros mean_batch_nnz_;
  BatchInput input_;
  std::array<Slot, Backend::kUploadSlots> slots_;
  std::vector<std::int64_t> host_ids_;  // the prepared row ids
};

class DenseRows final : public DeviceGatheredRows {
 public:
  DenseRows(Backend& backend, const HostDense& counts, std::int64_t batch_rows,
            const BatchInputOptions& input)
      : DeviceGatheredRows(backend, batch_rows),
        rows_(counts.rows),
        cols_(counts.cols),
        data_(backend, counts.values),
        batch_(backend, static_cast<std::size_t>(batch_rows * counts.cols)),
        input_(backend, input, batch_rows, batch_rows * counts.cols) {}

  std::int64_t rows() const override { return rows_; }

  Batch gather(std::int64_t batch) override { return run(batch_ids(batch), batch_size(batch)); }

  Batch gather_staged() override { return run(staged_ids(), staged_rows()); }

 private:
  Batch run(const std::int64_t* ids, std::int64_t count) {
    const DenseView rows = batch_.matrix(count, cols_);
    backend_.gather_dense_rows(data_.matrix(rows_, cols_), ids, count, rows);
    const ConstDenseView target(rows);
    return {count, BatchRows<ConstDenseView>{input_.input(target), target},
            input_.log_offsets(target)};
  }

  std::int64_t rows_;
  std::int64_t cols_;
  Buffer<float> data_;
  Buffer<float> batch_;
  BatchInput input_;
};

}  // namespace

std::unique_ptr<RowSource> make_row_source(Backend& backend, HostCsr counts,
                                           std::int64_t batch_rows, const BatchInputOptions& input,
                                           DataPlacement placement) {
  if (placement == DataPlacement::streamed)
    return std::make_unique<StreamedSparseRows>(backend, std::move(counts), batch_rows, input);
  return std::make_unique<SparseRows>(backend, counts, batch_rows, input);
}

std::unique_ptr<RowSource> make_row_source(Backend& backend, const HostDense& counts,
                                           std::int64_t batch_rows,
                                           const BatchInputOptions& input) {
  return std::make_unique<DenseRows>(backend, counts, batch_rows, input);
}

}  // namespace sparseae::detail
