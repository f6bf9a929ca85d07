#pragma once
// Owning CSR matrices: HostCsr in host memory (what readers produce) and BackendCsr in a
// backend's memory (what ops read).
#include <cstdint>
#include <vector>

#include "sparseae/buffer.hpp"
#include "sparseae/matrix.hpp"

namespace sparseae {

struct HostCsr {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<RowOffset> row_offsets{0};
  std::vector<ColIndex> col_indices;
  std::vector<float> values;

  std::int64_t nnz() const { return static_cast<std::int64_t>(values.size()); }
  CsrView view() const {
    return {rows, cols, nnz(), row_offsets.data(), col_indices.data(), values.data()};
  }
  // Throws Error naming the first inconsistency: offsets not starting at 0, decreasing, or not
  // ending at nnz; a column index outside [0, cols); arrays of mismatched length.
  void validate() const;
};

class BackendCsr {
 public:
  BackendCsr() = default;
  BackendCsr(Backend& backend, const HostCsr& host);

  CsrView view() const {
    return {rows_, cols_, nnz_, row_offsets_.data(), col_indices_.data(), values_.data()};
  }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t nnz() const { return nnz_; }

 private:
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::int64_t nnz_ = 0;
  Buffer<RowOffset> row_offsets_;
  Buffer<ColIndex> col_indices_;
  Buffer<float> values_;
};

// Space for gathered batches of up to max_rows rows and max_nnz non-zeros, reused every step.
class CsrBatchBuffer {
 public:
  CsrBatchBuffer() = default;
  CsrBatchBuffer(Backend& backend, std::int64_t cols, std::int64_t max_rows, std::int64_t max_nnz);

  CsrOutput output() const {
    return {cols_, max_nnz_, row_offsets_.data(), col_indices_.data(), values_.data()};
  }
  // The batch of rows rows and nnz non-zeros last gathered into this buffer; nnz may be an upper
  // bound (a captured step passes the capacity), the batch's own count being row_offsets[rows].
  CsrView view(std::int64_t rows, std::int64_t nnz) const {
    return {rows, cols_, nnz, row_offsets_.data(), col_indices_.data(), values_.data()};
  }

 private:
  std::int64_t cols_ = 0;
  std::int64_t max_nnz_ = 0;
  Buffer<RowOffset> row_offsets_;
  Buffer<ColIndex> col_indices_;
  Buffer<float> values_;
};

}  // namespace sparseae
