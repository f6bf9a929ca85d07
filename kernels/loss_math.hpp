#pragma once
// Per-element math of the reconstruction losses and activity penalties, shared by both backends
// like op_math.hpp. Every loss is split the same way, so that the sparse target is never
// densified: a zero-target term evaluated at every output entry, and the full term evaluated
// only where the target is non-zero, which replaces the zero-target term there.
#include "kernels/op_math.hpp"

namespace sparseae::math {

struct LossTerm {
  float value;
  float grad;  // d value / d output
};

// The loss of one entry with output y and target x, before normalisation. For bce, y is a logit
// and x lies in [0, 1]: softplus(y) - x*y is the cross-entropy of sigmoid(y), stable for any y.
// mse_cosine's element-wise part is its mse; the cosine part is per row (cosine_row_grad).
SAE_HD LossTerm loss_term(LossKind kind, float y, float x) {
  switch (kind) {
    case LossKind::mae: {
      const float d = y - x;
      return {fabsf(d), d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f)};
    }
    case LossKind::bce:
      return {softplus(y) - x * y, sigmoid(y) - x};
    case LossKind::mse:
    case LossKind::mse_cosine:
    default: {
      const float d = y - x;
      return {d * d, 2.0f * d};
    }
  }
}

// 1 - cos(y, x) for a row with |y|^2 = yy, |x|^2 = xx, y.x = xy, and its gradient with respect
// to y_c: -(x_c / (|y||x|) - xy * y_c / (|y|^3 |x|)). eps keeps an all-zero row finite; such a row
// has no direction, so its loss is 1 and its gradient 0.
struct CosineRow {
  float loss;
  float x_coefficient;  // gradient = x_coefficient * x_c + y_coefficient * y_c
  float y_coefficient;
};

SAE_HD CosineRow cosine_row(float yy, float xx, float xy) {
  constexpr float kEps = 1e-12f;
  const float norm_y = sqrtf(yy);
  const float norm_x = sqrtf(xx);
  if (norm_y < kEps || norm_x < kEps) return {1.0f, 0.0f, 0.0f};
  const float inv = 1.0f / (norm_y * norm_x);
  const float cosine = xy * inv;
  return {1.0f - cosine, -inv, cosine / yy};
}

// L1 activity penalty: weight * |a|, gradient weight * sign(a).
SAE_HD LossTerm l1_penalty_term(float a, float weight) {
  return {weight * fabsf(a), a > 0.0f ? weight : (a < 0.0f ? -weight : 0.0f)};
}

// KL(rho || rho_hat) for one unit of a sigmoid layer whose batch-mean activation (a probability)
// is rho_hat, and d KL / d rho_hat, which each of the unit's activations receives times
// beta / rows. rho_hat is clamped away from 0 and 1 so that a dead or saturated unit gives a
// large but finite penalty.
struct KlUnit {
  float value;
  float grad_factor;
};

SAE_HD KlUnit kl_sparsity_unit(float rho, float rho_hat) {
  constexpr float kClamp = 1e-6f;
  const float r = fminf(fmaxf(rho_hat, kClamp), 1.0f - kClamp);
  return {rho * logf(rho / r) + (1.0f - rho) * logf((1.0f - rho) / (1.0f - r)),
          -rho / r + (1.0f - rho) / (1.0f - r)};
}

}  // namespace sparseae::math

namespace sparseae::math {

// The output in data units before rounding (what mse and mae are measured on): bce outputs are
// logits of the scaled count.
SAE_HD float decoded_value(LossKind kind, float y, float scale) {
  return (kind == LossKind::bce ? sigmoid(y) : y) * scale;
}

// The count a value in data units stands for: the nearest non-negative integer.
SAE_HD float round_count(float value) { return value > 0.0f ? rintf(value) : 0.0f; }

}  // namespace sparseae::math
