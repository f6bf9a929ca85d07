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

// ---- the Poisson rate ----

// The Poisson loss reads the output eta as a log-rate. exp(eta) is taken as it is up to
// kPoissonLinearFrom and continued by its tangent above:
//   rate(eta) = e^eta                                   for eta <= 30
//   rate(eta) = e^30 * (1 + (eta - 30))                 for eta > 30
// which is C1 (value and slope meet at 30), convex and increasing, so the loss keeps its shape
// while neither the rate nor the loss can overflow: e^30 ~ 1.07e13 is far above any count, and
// at eta = 1e4 the rate is ~1.07e17, still far below FLT_MAX. Below, expf underflows to 0 near
// eta = -104, which is the exact rate to float precision.
constexpr float kPoissonLinearFrom = 30.0f;
// e^30 rounded to float: the slope of the continuation, a literal so that both backends use the
// same value whatever their expf rounds it to.
constexpr float kPoissonLinearSlope = 1.0686474581524463e13f;

// The rate of log-rate eta: the Poisson mean, in counts (what decoding reads).
SAE_HD float poisson_rate(float eta) {
  if (eta <= kPoissonLinearFrom) return expf(eta);
  return kPoissonLinearSlope * (1.0f + (eta - kPoissonLinearFrom));
}

// d rate / d eta.
SAE_HD float poisson_rate_slope(float eta) {
  return eta <= kPoissonLinearFrom ? expf(eta) : kPoissonLinearSlope;
}

// log Gamma(z), as the platform's lgammaf computes it, without the global signgam that glibc's
// lgammaf writes (the cpu backend evaluates it from several threads).
SAE_HD float log_gamma(float z) {
#if defined(__CUDA_ARCH__) || !defined(__GLIBC__)
  return lgammaf(z);
#else
  int sign;
  return lgammaf_r(z, &sign);
#endif
}

// ---- the element-wise loss terms ----

// The loss of one entry with output y and target x, before normalisation:
//   mse          (y - x)^2
//   mae          |y - x|
//   bce          softplus(y) - x*y: y is a logit and x lies in [0, 1]; the cross-entropy of
//                sigmoid(y), stable for any y
//   mse_cosine   its mse; the cosine part is per row (cosine_row)
//   poisson      rate(y) - x*y + lgamma(x + 1): y is a log-rate, so this is the negative
//                log-likelihood of the count x in nats (with the linear continuation of rate
//                above kPoissonLinearFrom); gradient rate'(y) - x. At x = 0 it is rate(y).
//   weighted_mse (y - x)^2 where x != 0, params.zero_weight * y^2 where x = 0
//   huber        0.5 d^2 for |d| <= delta, delta * (|d| - 0.5 delta) beyond, d = y - x and
//                delta = params.huber_delta; gradient d or delta * sign(d)
SAE_HD LossTerm loss_term(LossKind kind, float y, float x, const LossParams& params) {
  switch (kind) {
    case LossKind::mae: {
      const float d = y - x;
      return {fabsf(d), d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f)};
    }
    case LossKind::bce:
      return {softplus(y) - x * y, sigmoid(y) - x};
    case LossKind::poisson: {
      const float rate = poisson_rate(y);
      const float slope = poisson_rate_slope(y);
      if (x == 0.0f) return {rate, slope};
      return {rate - x * y + log_gamma(x + 1.0f), slope - x};
    }
    case LossKind::weighted_mse: {
      if (x == 0.0f) return {params.zero_weight * y * y, 2.0f * params.zero_weight * y};
      const float d = y - x;
      return {d * d, 2.0f * d};
    }
    case LossKind::huber: {
      const float d = y - x;
      const float delta = params.huber_delta;
      if (fabsf(d) <= delta) return {0.5f * d * d, d};
      return {delta * (fabsf(d) - 0.5f * delta), d > 0.0f ? delta : -delta};
    }
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
// logits of the scaled count, poisson outputs log-rates (the value is the rate, the mean count).
SAE_HD float decoded_value(LossKind kind, float y, float scale) {
  switch (kind) {
    case LossKind::bce:
      return sigmoid(y) * scale;
    case LossKind::poisson:
      return poisson_rate(y) * scale;
    default:
      return y * scale;
  }
}

// The count a value in data units stands for: the nearest non-negative integer (ties to even,
// as rintf rounds; negative values and NaN give 0).
SAE_HD float round_count(float value) { return value > 0.0f ? rintf(value) : 0.0f; }

// ---- decode: from a model output to a count ----
//
// decoded_value is the mean of the distribution the loss fits, in data units (mse-like losses:
// the output itself; bce: sigmoid(y) * scale; poisson: the rate). A DecodeMode turns it into a
// count:
//   round  round_count(decoded_value): the default for every loss without a count likelihood
//   mean   round_count of the predicted distribution's mean. decoded_value is that mean for every
//          loss so far, so mean and round agree today; they part for a head whose output is
//          not its mean (zero-inflated, say)
//   mode   the exact argmax of the predicted pmf; defined only for a count likelihood (poisson,
//          where it is the default). Asking for it with any other loss is an error the host
//          raises (check_decode in sparseae/metrics.hpp) before anything is decoded; should it
//          get here regardless, it falls back to round.

// The mode of Poisson(mu): P(k) / P(k-1) = mu / k, so the pmf rises while k < mu and falls once
// k > mu, and the argmax is floor(mu); mu < 1 gives 0. Tie: at an integer mu >= 1,
// P(mu) = P(mu - 1) exactly, and we take mu, the larger, so that floor(mu) is the rule
// everywhere and mode agrees with mean there (mu = 1 decodes to 1, not 0). mu that is NaN or
// negative gives 0.
SAE_HD float poisson_mode(float mu) { return mu >= 1.0f ? floorf(mu) : 0.0f; }

// The count of a decoded value (the mean in data units) under mode.
SAE_HD float count_from_value(LossKind kind, DecodeMode mode, float value) {
  if (mode == DecodeMode::mode && kind == LossKind::poisson) return poisson_mode(value);
  return round_count(value);
}

// The count an output y stands for under mode.
SAE_HD float decoded_count(LossKind kind, DecodeMode mode, float y, float scale) {
  return count_from_value(kind, mode, decoded_value(kind, y, scale));
}

}  // namespace sparseae::math
