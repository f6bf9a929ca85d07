// The cpu backend's CSR row gathers: gather_rows, with and without a known nnz, and
// batch_nonzeros (kernels/csr_gather.cu on cuda); data moves as is, no math of src/math/.
#include <algorithm>
#include <string>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"

namespace sparseae::detail {

std::int64_t CpuBackend::gather_rows(CsrView source, const std::int64_t* row_ids,
                                     std::int64_t count, const CsrOutput& out) {
  refuse_in_capture("gather_rows without a known nnz");
  check_gather(source, count, out);
  out.row_offsets[0] = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t row = row_ids[i];
    require(row >= 0 && row < source.rows, gather_bad_row_message(row, source.rows));
    out.row_offsets[i + 1] =
        out.row_offsets[i] + source.row_offsets[row + 1] - source.row_offsets[row];
  }
  const std::int64_t nnz = out.row_offsets[count];
  require(nnz <= out.nnz_capacity, gather_overflow_message(nnz, out.nnz_capacity));
#pragma omp parallel for schedule(dynamic, 64)
  for (std::int64_t i = 0; i < count; ++i) {
    const RowOffset begin = source.row_offsets[row_ids[i]];
    const RowOffset length = out.row_offsets[i + 1] - out.row_offsets[i];
    std::copy_n(source.col_indices + begin, length, out.col_indices + out.row_offsets[i]);
    std::copy_n(source.values + begin, length, out.values + out.row_offsets[i]);
  }
  return nnz;
}

void CpuBackend::batch_nonzeros(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                                std::int64_t batch_rows, std::int64_t* nnz_per_batch) {
  refuse_in_capture("batch_nonzeros");
  check_batch_nonzeros(count, batch_rows);
  for (std::int64_t first = 0; first < count; first += batch_rows) {
    std::int64_t nnz = 0;
    for (std::int64_t i = first; i < std::min(count, first + batch_rows); ++i) {
      const std::int64_t row = row_ids[i];
      require(row >= 0 && row < source.rows, gather_bad_row_message(row, source.rows));
      nnz += source.row_offsets[row + 1] - source.row_offsets[row];
    }
    nnz_per_batch[first / batch_rows] = nnz;
  }
}

void CpuBackend::gather_rows(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                             std::int64_t max_nnz, const CsrOutput& out) {
  require(max_nnz <= out.nnz_capacity, gather_overflow_message(max_nnz, out.nnz_capacity));
  run([=] {
    const std::int64_t gathered = gather_rows(source, row_ids, count, out);
    require(gathered <= max_nnz, "gather_rows: the batch has " + std::to_string(gathered) +
                                     " non-zeros, more than the " + std::to_string(max_nnz) +
                                     " given");
  });
}

}  // namespace sparseae::detail
