// The cpu backend's reconstruction losses (kernels/reconstruction_loss.cu on cuda): the same
// row-per-task structure as the cuda kernel, with the per-element math of src/math/loss_math.hpp.
#include <algorithm>
#include <type_traits>

#include "backend/constant_dispatch.hpp"
#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"
#include "math/loss_math.hpp"

namespace sparseae::detail {

namespace {

// The losses with K > 1 outputs per entry (math::head_loss_term): y and grad are rows x (K*D)
// against a rows x D target, head k of column c at column c + k*D. Split as the single-output
// losses: every head's zero-target gradient at every entry, then the full term at the non-zeros,
// which overwrites their gradients (a dense target gives the full term in the first pass).
// Normalised by the rows x D entries of the target.
template <int kHeads, typename Target>
void multi_head_loss(LossKind kind, ConstDenseView y, Target target, DenseView grad,
                     float* row_loss) {
  constexpr bool kDense = std::is_same_v<Target, ConstDenseView>;
  const std::int64_t cols = target.cols;
  const float entry_scale =
      1.0f / static_cast<float>(std::max<std::int64_t>(1, y.rows * cols));
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < y.rows; ++r) {
    double loss = 0.0;
    float h[math::kMaxHeads] = {};
    for (std::int64_t c = 0; c < cols; ++c) {
      for (int k = 0; k < kHeads; ++k) h[k] = y(r, c + k * cols);
      float x = 0.0f;
      if constexpr (kDense) x = target(r, c);
      const math::HeadTerm term = math::head_loss_term(kind, h, x);
      loss += term.value;
      for (int k = 0; k < kHeads; ++k) grad(r, c + k * cols) = entry_scale * term.grad[k];
    }
    if constexpr (!kDense) {
      for (RowOffset i = target.row_offsets[r]; i < target.row_offsets[r + 1]; ++i) {
        const std::int64_t c = target.col_indices[i];
        for (int k = 0; k < kHeads; ++k) h[k] = y(r, c + k * cols);
        const math::HeadTerm zero = math::head_loss_term(kind, h, 0.0f);
        const math::HeadTerm full = math::head_loss_term(kind, h, target.values[i]);
        loss += full.value - zero.value;
        for (int k = 0; k < kHeads; ++k) grad(r, c + k * cols) = entry_scale * full.grad[k];
      }
    }
    row_loss[r] = static_cast<float>(loss * entry_scale);
  }
}

template <typename Target>
bool run_multi_head(LossKind kind, ConstDenseView y, Target target, DenseView grad,
                    float* row_loss) {
  switch (output_heads(kind)) {
    case 2:
      multi_head_loss<2>(kind, y, target, grad, row_loss);
      return true;
    case 3:
      multi_head_loss<3>(kind, y, target, grad, row_loss);
      return true;
    default:
      return false;
  }
}

// The losses with one output per entry; run_multi_head takes the others.
template <typename Body>
void with_single_head_loss(LossKind kind, Body body) {
  using L = LossKind;
  with_constant<L::mse, L::mae, L::bce, L::mse_cosine, L::poisson, L::weighted_mse, L::huber>(
      kind, "single-output loss", body);
}

// The losses with one output per entry, split as the cuda kernel: on a CSR target the zero-target
// term at every entry, then the full term at the non-zeros; on a dense target the full term in
// one pass. mse_cosine adds its per-row cosine term.
template <typename Target, typename Kind>
void single_head_loss(Kind kind, const LossParams& params, ConstDenseView y, Target target,
                      DenseView grad, float* row_loss) {
  constexpr bool kDense = std::is_same_v<Target, ConstDenseView>;
  constexpr bool cosine = Kind::value == LossKind::mse_cosine;
  const float entry_scale = 1.0f / static_cast<float>(std::max<std::int64_t>(1, y.size()));
  const float row_scale =
      params.cosine_weight / static_cast<float>(std::max<std::int64_t>(1, y.rows));
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < y.rows; ++r) {
    double loss = 0.0, yy = 0.0, xx = 0.0, xy = 0.0;
    const float* y_row = y.row(r);
    float* grad_row = grad.row(r);
#pragma omp simd reduction(+ : loss, yy, xx, xy)
    for (std::int64_t c = 0; c < y.cols; ++c) {
      const float v = y_row[c];
      float x = 0.0f;
      if constexpr (kDense) x = target(r, c);
      const math::LossTerm term = math::loss_term(kind, v, x, params);
      loss += term.value;
      grad_row[c] = entry_scale * term.grad;
      if constexpr (cosine) {
        yy += static_cast<double>(v) * v;
        xx += static_cast<double>(x) * x;
        xy += static_cast<double>(x) * v;
      }
    }
    if constexpr (!kDense) {
      for (RowOffset k = target.row_offsets[r]; k < target.row_offsets[r + 1]; ++k) {
        const std::int64_t c = target.col_indices[k];
        const float x = target.values[k];
        const math::LossTerm zero = math::loss_term(kind, y(r, c), 0.0f, params);
        const math::LossTerm full = math::loss_term(kind, y(r, c), x, params);
        loss += static_cast<double>(full.value) - zero.value;
        grad(r, c) = entry_scale * full.grad;
        if constexpr (cosine) {
          xx += static_cast<double>(x) * x;
          xy += static_cast<double>(x) * y(r, c);
        }
      }
    }
    loss *= entry_scale;
    if constexpr (cosine) {
      const math::CosineRow row = math::cosine_row(static_cast<float>(yy), static_cast<float>(xx),
                                                   static_cast<float>(xy));
      loss += static_cast<double>(row_scale) * row.loss;
      if constexpr (kDense) {
        for (std::int64_t c = 0; c < y.cols; ++c)
          grad(r, c) += row_scale * (row.y_coefficient * y(r, c) + row.x_coefficient * target(r, c));
      } else {
        for (std::int64_t c = 0; c < y.cols; ++c)
          grad(r, c) += row_scale * row.y_coefficient * y(r, c);
        for (RowOffset k = target.row_offsets[r]; k < target.row_offsets[r + 1]; ++k)
          grad(r, target.col_indices[k]) += row_scale * row.x_coefficient * target.values[k];
      }
    }
    row_loss[r] = static_cast<float>(loss);
  }
}

template <typename Target>
void reconstruction_loss_on(LossKind kind, const LossParams& params, ConstDenseView y,
                            Target target, DenseView grad, float* row_loss) {
  check_loss(kind, y, target, grad);
  if (!run_multi_head(kind, y, target, grad, row_loss))
    with_single_head_loss(
        kind, [&](auto single) { single_head_loss(single, params, y, target, grad, row_loss); });
}

}  // namespace

void CpuBackend::reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                     CsrView target, DenseView grad, float* row_loss) {
  run([=] { reconstruction_loss_on(kind, params, y, target, grad, row_loss); });
}

void CpuBackend::reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                     ConstDenseView target, DenseView grad, float* row_loss) {
  run([=] { reconstruction_loss_on(kind, params, y, target, grad, row_loss); });
}

}  // namespace sparseae::detail
