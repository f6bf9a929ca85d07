// The cpu backend's gather_dense_rows (kernels/dense_gather.cu on cuda): rows copied as they
// are, with no per-element math of src/math/ to share.
#include <algorithm>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"

namespace sparseae::detail {

void CpuBackend::gather_dense_rows(ConstDenseView source, const std::int64_t* row_ids,
                                   std::int64_t count, DenseView out) {
  check_dense_gather(source, count, out);
  run([=] {
    for (std::int64_t i = 0; i < count; ++i)
      require(row_ids[i] >= 0 && row_ids[i] < source.rows,
              gather_bad_row_message(row_ids[i], source.rows));
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < count; ++i)
      std::copy_n(&source(row_ids[i], 0), source.cols, &out(i, 0));
  });
}

}  // namespace sparseae::detail
