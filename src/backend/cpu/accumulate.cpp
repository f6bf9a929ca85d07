// The cpu backend's accumulate (kernels/accumulate.cu on cuda): one float64 addition per element,
// with no per-element math of src/math/ to share.
#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"

namespace sparseae::detail {

void CpuBackend::accumulate(const float* x, std::int64_t n, double* sum) {
  check_accumulate(n);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) sum[i] += static_cast<double>(x[i]);
  });
}

}  // namespace sparseae::detail
