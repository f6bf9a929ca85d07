// The cpu backend's csr_to_dense (kernels/csr_to_dense.cu on cuda): values written out dense,
// duplicates added, with no per-element math of src/math/ to share.
#include <algorithm>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"

namespace sparseae::detail {

void CpuBackend::csr_to_dense(CsrView a, DenseView out) {
  check_csr_to_dense(a, out);
  run([=] {
#pragma omp parallel for schedule(dynamic, 64)
    for (std::int64_t r = 0; r < a.rows; ++r) {
      float* row = &out(r, 0);
      std::fill(row, row + out.cols, 0.0f);
      for (RowOffset k = a.row_offsets[r]; k < a.row_offsets[r + 1]; ++k)
        row[a.col_indices[k]] += a.values[k];
    }
  });
}

}  // namespace sparseae::detail
