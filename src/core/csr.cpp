#include "sparseae/csr.hpp"

#include <string>

#include "sparseae/error.hpp"

namespace sparseae {

void HostCsr::validate() const {
  const std::string what = "CSR matrix " + std::to_string(rows) + "x" + std::to_string(cols);
  require(rows >= 0 && cols >= 0, what + ": negative shape");
  require(static_cast<std::int64_t>(row_offsets.size()) == rows + 1,
          what + ": has " + std::to_string(row_offsets.size()) + " row offsets, expected rows+1");
  require(col_indices.size() == values.size(),
          what + ": " + std::to_string(col_indices.size()) + " column indices but " +
              std::to_string(values.size()) + " values");
  require(row_offsets.front() == 0, what + ": first row offset is not 0");
  require(row_offsets.back() == nnz(), what + ": last row offset " +
                                           std::to_string(row_offsets.back()) +
                                           " differs from the " + std::to_string(nnz()) +
                                           " non-zeros");
  for (std::int64_t r = 0; r < rows; ++r)
    require(row_offsets[r] <= row_offsets[r + 1],
            what + ": row offsets decrease at row " + std::to_string(r));
  for (std::int64_t k = 0; k < nnz(); ++k)
    require(col_indices[k] >= 0 && col_indices[k] < cols,
            what + ": entry " + std::to_string(k) + " has column index " +
                std::to_string(col_indices[k]) + " outside [0, " + std::to_string(cols) + ")");
}

BackendCsr::BackendCsr(Backend& backend, const HostCsr& host)
    : rows_((host.validate(), host.rows)),
      cols_(host.cols),
      nnz_(host.nnz()),
      row_offsets_(backend, host.row_offsets),
      col_indices_(backend, host.col_indices),
      values_(backend, host.values) {}

CsrBatchBuffer::CsrBatchBuffer(Backend& backend, std::int64_t cols, std::int64_t max_rows,
                               std::int64_t max_nnz)
    : cols_(cols),
      max_nnz_(max_nnz),
      row_offsets_(backend, static_cast<std::size_t>(max_rows + 1)),
      col_indices_(backend, static_cast<std::size_t>(max_nnz)),
      values_(backend, static_cast<std::size_t>(max_nnz)) {
  // A captured step reads the values past a batch's nnz (its input transform runs over the whole
  // capacity): they must be defined.
  col_indices_.fill_zero();
  values_.fill_zero();
}

}  // namespace sparseae
