// The cpu backend's optimizer_step and the decoder's unit-norm rows after it (kernels/optimizer.cu
// on cuda); the per-element update, the clipping, the skip of a non-finite step and the rescaling
// are in src/math/op_math.hpp.
#include "backend/constant_dispatch.hpp"
#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"
#include "math/op_math.hpp"

namespace sparseae::detail {

namespace {

template <typename Body>
void with_optimizer(OptimizerKind kind, Body body) {
  using K = OptimizerKind;
  with_constant<K::sgd, K::adam, K::adamw>(kind, "optimizer", body);
}

}  // namespace

void CpuBackend::optimizer_step(const OptimizerConfig& config, std::int64_t step, std::int64_t n,
                                float* params, const float* grads, float* first_moment,
                                float* second_moment, const float* grad_sum_squares,
                                const StepScalars* step_scalars) {
  check_optimizer(config, step, second_moment, grad_sum_squares);
  run([=] {
    math::OptimizerScalars scalars = math::make_optimizer_scalars(config, step);
    if (step_scalars != nullptr) scalars = math::with_step_scalars(scalars, *step_scalars);
    const bool reads_norm = config.max_grad_norm > 0.0f || config.skip_nonfinite;
    const math::GradientGate gate = math::gradient_gate(config.max_grad_norm, config.skip_nonfinite,
                                                        reads_norm ? *grad_sum_squares : 0.0f);
    if (gate.skip) return;
    const float grad_scale = gate.scale;
    with_optimizer(config.kind, [&](auto kind) {
      // kind is a compile-time constant: the update's switch folds away and the loop vectorizes.
      if (second_moment != nullptr) {
#pragma omp parallel for simd schedule(static)
        for (std::int64_t i = 0; i < n; ++i)
          math::optimizer_update(kind, scalars, params[i], grad_scale * grads[i], first_moment[i],
                                 second_moment[i]);
      } else {
#pragma omp parallel for schedule(static)
        for (std::int64_t i = 0; i < n; ++i) {
          float unused_second = 0.0f;
          math::optimizer_update(kind, scalars, params[i], grad_scale * grads[i], first_moment[i],
                                 unused_second);
        }
      }
    });
  });
}

void CpuBackend::unit_norm_rows(DenseView m) {
  check_view("unit_norm_rows", "m", m);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < m.rows; ++r) {
      double sum_squares = 0.0;
      for (std::int64_t c = 0; c < m.cols; ++c)
        sum_squares += static_cast<double>(m(r, c)) * m(r, c);
      for (std::int64_t c = 0; c < m.cols; ++c)
        m(r, c) = math::unit_norm_scaled(m(r, c), sum_squares);
    }
  });
}

}  // namespace sparseae::detail
