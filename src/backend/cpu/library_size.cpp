// The cpu backend's library-size ops: the input transform, the rows' log size factors and their
// addition to a layer (kernels/library_size.cu on cuda); the per-element math is in src/math/.
#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"
#include "math/op_math.hpp"

namespace sparseae::detail {

void CpuBackend::transform_values(InputTransform transform, const float* in, std::int64_t n,
                                  float* out) {
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) out[i] = math::transform_input(transform, in[i]);
  });
}

void CpuBackend::row_log_size_factors(CsrView batch, float log_reference, float* out) {
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < batch.rows; ++r) {
      double total = 0.0;
      for (RowOffset k = batch.row_offsets[r]; k < batch.row_offsets[r + 1]; ++k)
        total += batch.values[k];
      out[r] = math::log_size_factor(total, log_reference);
    }
  });
}

void CpuBackend::row_log_size_factors(ConstDenseView batch, float log_reference, float* out) {
  check_view("row_log_size_factors", "batch", batch);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < batch.rows; ++r) {
      double total = 0.0;
      for (std::int64_t c = 0; c < batch.cols; ++c) total += batch(r, c);
      out[r] = math::log_size_factor(total, log_reference);
    }
  });
}

void CpuBackend::add_row_offsets(DenseView m, const float* offsets) {
  check_view("add_row_offsets", "m", m);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < m.rows; ++r)
      for (std::int64_t c = 0; c < m.cols; ++c) m(r, c) += offsets[r];
  });
}

}  // namespace sparseae::detail
