// The cpu backend's activity penalties (l1, kl) and sum of squares (kernels/penalties.cu on
// cuda); the per-element math is in src/math/loss_math.hpp.
#include <algorithm>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"
#include "math/loss_math.hpp"

namespace sparseae::detail {

void CpuBackend::l1_activity_penalty(float weight, ConstDenseView a, DenseView grad, float* loss) {
  check_same_shape("l1_activity_penalty", "a", a, "grad", grad);
  run([=] {
    const float per_row = weight / static_cast<float>(std::max<std::int64_t>(1, a.rows));
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (std::int64_t r = 0; r < a.rows; ++r)
      for (std::int64_t c = 0; c < a.cols; ++c) {
        const math::LossTerm term = math::l1_penalty_term(a(r, c), per_row);
        total += term.value;
        grad(r, c) += term.grad;
      }
    *loss = static_cast<float>(total);
  });
}

void CpuBackend::kl_sparsity_penalty(float rho, float beta, ConstDenseView a, DenseView grad,
                                     float* loss) {
  check_same_shape("kl_sparsity_penalty", "a", a, "grad", grad);
  run([=] {
    kl_factors_.resize(static_cast<std::size_t>(a.cols));
    float* const factors = kl_factors_.data();
    double total = 0.0;
    const float inv_rows = 1.0f / static_cast<float>(std::max<std::int64_t>(1, a.rows));
    for (std::int64_t c = 0; c < a.cols; ++c) {
      double mean = 0.0;
      for (std::int64_t r = 0; r < a.rows; ++r) mean += a(r, c);
      const math::KlUnit unit = math::kl_sparsity_unit(rho, static_cast<float>(mean) * inv_rows);
      total += unit.value;
      factors[c] = beta * unit.grad_factor * inv_rows;
    }
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < a.rows; ++r)
      for (std::int64_t c = 0; c < a.cols; ++c) grad(r, c) += factors[c];
    *loss = static_cast<float>(beta * total);
  });
}

void CpuBackend::sum_of_squares(const float* x, std::int64_t n, float* out) {
  run([=] {
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (std::int64_t i = 0; i < n; ++i) total += static_cast<double>(x[i]) * x[i];
    *out = static_cast<float>(total);
  });
}

}  // namespace sparseae::detail
