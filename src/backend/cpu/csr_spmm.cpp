// The cpu backend's CSR × dense products a·b and aᵀ·b (spmm; kernels/csr_spmm.cu on cuda): plain
// float multiply-adds, with no per-element math of src/math/ to share.
#include <omp.h>

#include <algorithm>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/cpu/scale.hpp"
#include "backend/op_checks.hpp"

namespace sparseae::detail {

void CpuBackend::spmm(Transpose transpose_a, float alpha, CsrView a, ConstDenseView b, float beta,
                      DenseView c) {
  check_spmm(transpose_a, a, b, c);
  run([=] {
    if (c.empty()) return;
    if (transpose_a == Transpose::no) {
#pragma omp parallel for schedule(dynamic, 64)
      for (std::int64_t r = 0; r < a.rows; ++r) {
        float* out = &c(r, 0);
        for (std::int64_t j = 0; j < c.cols; ++j) out[j] = beta == 0.0f ? 0.0f : beta * out[j];
        for (RowOffset k = a.row_offsets[r]; k < a.row_offsets[r + 1]; ++k) {
          const float v = alpha * a.values[k];
          const float* in = &b(a.col_indices[k], 0);
          for (std::int64_t j = 0; j < c.cols; ++j) out[j] += v * in[j];
        }
      }
      return;
    }
    // aᵀ·b scatters row r of b into the rows of c named by row r's column indices. c's rows are
    // cut into a few ranges per thread; each range is one task, which owns those whole rows of c
    // and skips the entries of a outside them. The scatter needs no atomics, and each row of c
    // sums in the order of a's rows whatever the cut. (Threads owning halves of every row of c
    // instead ran the op 4x slower here; a fixed number of ranges keeps the skipped entries at a
    // few scans of the batch however wide the input.)
    scale_in_place(c, beta);
    const std::int64_t ranges = std::min<std::int64_t>(c.rows, 4 * omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t range = 0; range < ranges; ++range) {
      const ColIndex first = static_cast<ColIndex>(c.rows * range / ranges);
      const ColIndex end = static_cast<ColIndex>(c.rows * (range + 1) / ranges);
      for (std::int64_t r = 0; r < a.rows; ++r) {
        const float* in = &b(r, 0);
        for (RowOffset k = a.row_offsets[r]; k < a.row_offsets[r + 1]; ++k) {
          const ColIndex column = a.col_indices[k];
          if (column < first || column >= end) continue;
          const float v = alpha * a.values[k];
          float* out = &c(column, 0);
          for (std::int64_t j = 0; j < c.cols; ++j) out[j] += v * in[j];
        }
      }
    }
  });
}

}  // namespace sparseae::detail
