// The cpu backend's activity penalties (l1, kl), the latents' quantisation and rate, and sum of
// squares (kernels/penalties.cu on cuda); the per-element math is in src/math/loss_math.hpp.
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

void CpuBackend::quantize_latents(DenseView z, const std::uint64_t* noise_seed) {
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < z.rows; ++r)
      for (std::int64_t c = 0; c < z.cols; ++c)
        z(r, c) = noise_seed == nullptr
                      ? math::latent_code(z(r, c))
                      : z(r, c) + math::latent_noise(*noise_seed,
                                                     static_cast<std::uint64_t>(r * z.cols + c));
  });
}

void CpuBackend::latent_rate_penalty(float weight, const float* prior, ConstDenseView z,
                                     DenseView grad, float* prior_grad, float* loss) {
  if (grad.data != nullptr) check_same_shape("latent_rate_penalty", "z", z, "grad", grad);
  run([=] {
    const float per_row = weight / static_cast<float>(std::max<std::int64_t>(1, z.rows));
    const std::int64_t cols = z.cols;
    double total = 0.0;
    // A column at a time, so that each element's term is evaluated once for its value, its
    // gradient and its prior's gradients.
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (std::int64_t c = 0; c < cols; ++c) {
      double location = 0.0;
      double log_scale = 0.0;
      for (std::int64_t r = 0; r < z.rows; ++r) {
        const math::RateTerm term = math::latent_rate_term(z(r, c), prior[c], prior[cols + c]);
        total += term.value;
        if (grad.data != nullptr) grad(r, c) += per_row * term.grad;
        location += term.grad_location;
        log_scale += term.grad_log_scale;
      }
      if (prior_grad == nullptr) continue;
      prior_grad[c] = static_cast<float>(static_cast<double>(per_row) * location);
      prior_grad[cols + c] = static_cast<float>(static_cast<double>(per_row) * log_scale);
    }
    *loss = static_cast<float>(static_cast<double>(per_row) * total);
  });
}

void CpuBackend::scale_values(float* x, std::int64_t n, float factor) {
  require(n >= 0, "scale_values: negative length");
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) x[i] *= factor;
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
