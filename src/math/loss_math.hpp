#pragma once
// Per-element math of the reconstruction losses and activity penalties, shared by both backends
// like op_math.hpp. Every loss is split the same way, so that the sparse target is never
// densified: a zero-target term evaluated at every output entry, and the full term evaluated
// only where the target is non-zero, which replaces the zero-target term there.
#include "math/op_math.hpp"

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

// ---- count likelihoods with several outputs per entry (nb, zinb, hurdle) ----
//
// The output of entry (r, c) is K = output_heads(kind) values h[0..K), read from the output
// row at columns c, c + D, ..., c + (K-1) D. Evaluated in double (the lgamma differences of the
// negative binomial lose everything in float once the dispersion is large), on both backends.
//   nb      h0 = eta, the log-mean (mean mu = rate(eta), the Poisson rate above, continued
//           linearly above kPoissonLinearFrom); h1 = phi, the log-dispersion theta = e^phi,
//           phi clamped to [-kLogDispersionLimit, kLogDispersionLimit] (its gradient is 0
//           outside). With t = log mu - phi, the negative log-likelihood of x is
//             Z + x softplus(-t) + lgamma(x + 1) - [lgamma(x + theta) - lgamma(theta)]
//           where Z = theta softplus(t) = -theta log(theta / (theta + mu)) is the whole loss at
//           x = 0. The lgamma difference is taken from Stirling's series once theta >= 10, so
//           that it stays exact as theta grows (the Poisson limit).
//   zinb    nb's h0, h1 and h2 = s, the dropout logit, pi = sigmoid(s): x = 0 gives
//           -log(pi + (1 - pi) e^-Z) = -logsumexp(-softplus(-s), -softplus(s) - Z); x > 0 gives
//           softplus(s) + the nb loss.
//   hurdle  h0 = s, the support logit (P(x > 0) = sigmoid(s)); h1 = eta, the log-rate of a
//           zero-truncated Poisson: x = 0 gives softplus(s); x > 0 gives softplus(-s) + mu -
//           x log mu + lgamma(x + 1) + log(1 - e^-mu) (log1mexp, stable for any mu).
//   hurdle_nb  h0 = s as hurdle's; h1 = eta and h2 = phi of a zero-truncated negative binomial:
//           x = 0 gives softplus(s); x > 0 gives softplus(-s) + the nb loss + log(1 - e^-Z)
//           (ztnb_term).
// Every value is the negative log-likelihood in nats.
constexpr int kMaxHeads = 3;
constexpr double kLogDispersionLimit = 30.0;

struct HeadTerm {
  double value;
  float grad[kMaxHeads];  // d value / d h[k]
};

SAE_HD double softplus_d(double t) { return t > 0.0 ? t + log1p(exp(-t)) : log1p(exp(t)); }
SAE_HD double sigmoid_d(double t) {
  if (t >= 0.0) return 1.0 / (1.0 + exp(-t));
  const double e = exp(t);
  return e / (1.0 + e);
}

// log Gamma in double, without glibc's signgam (see log_gamma).
SAE_HD double log_gamma_d(double z) {
#if defined(__CUDA_ARCH__) || !defined(__GLIBC__)
  return lgamma(z);
#else
  int sign;
  return lgamma_r(z, &sign);
#endif
}

// The rate of log-rate eta in double, log of it, and their slopes (rate_slope = d rate / d eta,
// log_slope = d log rate / d eta).
struct RateD {
  double rate;
  double log_rate;
  double rate_slope;
  double log_slope;
};

SAE_HD RateD rate_d(float eta) {
  if (eta <= kPoissonLinearFrom) {
    const double mu = exp(static_cast<double>(eta));
    return {mu, static_cast<double>(eta), mu, 1.0};
  }
  const double slope = static_cast<double>(kPoissonLinearSlope);
  const double mu = slope * (1.0 + (static_cast<double>(eta) - kPoissonLinearFrom));
  return {mu, log(mu), slope, slope / mu};
}

// psi(z) for z > 0: the recurrence up to 10, then the asymptotic series.
SAE_HD double digamma_d(double z) {
  double result = 0.0;
  while (z < 10.0) {
    result -= 1.0 / z;
    z += 1.0;
  }
  const double inv = 1.0 / z;
  const double inv2 = inv * inv;
  return result + log(z) - 0.5 * inv -
         inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0)));
}

// Stirling's correction lgamma(z) - [(z - 1/2) log z - z + log(2 pi) / 2], z >= 10.
SAE_HD double stirling_correction(double z) {
  const double inv = 1.0 / z;
  const double inv2 = inv * inv;
  return inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0)));
}

// lgamma(x + theta) - lgamma(theta) and psi(x + theta) - psi(theta), x >= 0, theta = e^phi.
SAE_HD void log_gamma_ratio(double x, double theta, double phi, double* value, double* slope) {
  if (theta >= 10.0) {
    const double z = x + theta;
    const double l = log1p(x / theta);
    *value = (z - 0.5) * l + x * phi - x + stirling_correction(z) - stirling_correction(theta);
    const double iz = 1.0 / z, it = 1.0 / theta;
    *slope = l - 0.5 * (iz - it) - (iz * iz - it * it) / 12.0 +
             (iz * iz * iz * iz - it * it * it * it) / 120.0 -
             (iz * iz * iz * iz * iz * iz - it * it * it * it * it * it) / 252.0;
  } else {
    *value = log_gamma_d(x + theta) - log_gamma_d(theta);
    *slope = digamma_d(x + theta) - digamma_d(theta);
  }
}

// The negative binomial's quantities at log-mean eta and log-dispersion phi (clamped; phi_slope
// is d phi / d phi_raw, 0 outside the clamp), with t = log mu - phi.
struct NbParts {
  RateD r;
  double phi;
  double phi_slope;
  double theta;
  double t;
};

SAE_HD NbParts nb_parts(float eta, float phi_raw) {
  const double limit = kLogDispersionLimit;
  const double phi_in = static_cast<double>(phi_raw);
  NbParts p;
  p.r = rate_d(eta);
  p.phi = phi_in < -limit ? -limit : (phi_in > limit ? limit : phi_in);
  p.phi_slope = phi_in < -limit || phi_in > limit ? 0.0 : 1.0;
  p.theta = exp(p.phi);
  p.t = p.r.log_rate - p.phi;
  return p;
}

// The nb negative log-likelihood of x (any x >= 0) at log-mean eta and log-dispersion phi, and
// its derivatives with respect to eta and phi.
struct NbTerm {
  double value;
  double d_eta;
  double d_phi;
};

// From parts already at hand, so that a caller that needs them as well (ztnb_term) computes
// them once.
SAE_HD NbTerm nb_term(const NbParts& p, float x) {
  const RateD& r = p.r;
  const double theta = p.theta;
  const double t = p.t;
  const double zero = theta * softplus_d(t);           // Z
  const double share = sigmoid_d(-t);                  // theta / (theta + mu)
  const double mu_share = r.rate * share;              // dZ / dlog mu
  if (x == 0.0f) return {zero, mu_share * r.log_slope, (zero - mu_share) * p.phi_slope};
  const double xd = x;
  double ratio, ratio_slope;
  log_gamma_ratio(xd, theta, p.phi, &ratio, &ratio_slope);
  const double value = zero + xd * softplus_d(-t) + log_gamma_d(xd + 1.0) - ratio;
  const double d_log_mu = (r.rate - xd) * share;
  const double d_phi = zero - mu_share + xd * share - theta * ratio_slope;
  return {value, d_log_mu * r.log_slope, d_phi * p.phi_slope};
}

SAE_HD NbTerm nb_term(float eta, float phi_raw, float x) {
  return nb_term(nb_parts(eta, phi_raw), x);
}

// log(1 - e^-mu) for mu >= 0 given log mu: exact where mu underflows.
SAE_HD double log1mexp_d(double mu, double log_mu) {
  if (mu < 1e-10) return log_mu + log1p(-0.5 * mu);
  if (mu < 0.6931471805599453) return log(-expm1(-mu));
  return log1p(-exp(-mu));
}

// mu / (e^mu - 1), -> 1 as mu -> 0.
SAE_HD double mu_over_expm1(double mu) { return mu < 1e-10 ? 1.0 - 0.5 * mu : mu / expm1(mu); }

// log Z, Z = theta softplus(t) = -log NB(0): exact where softplus(t) ~ e^t underflows.
SAE_HD double nb_log_zero(const NbParts& p) {
  return p.phi + (p.t < -30.0 ? p.t : log(softplus_d(p.t)));
}

// The zero-truncated negative binomial of the hurdle_nb value part: the nb loss of x > 0 plus
// log(1 - NB(0)) = log(1 - e^-Z). With q = mu share / Z = d log Z / d log mu (in (0, 1]) and
// m = Z / (e^Z - 1), d log(1 - e^-Z) = m (d log Z), so the truncation adds m q to the log-mean's
// derivative and m (1 - q) to the log-dispersion's; both stay finite as Z underflows.
SAE_HD NbTerm ztnb_term(float eta, float phi_raw, float x) {
  const NbParts p = nb_parts(eta, phi_raw);
  const NbTerm nb = nb_term(p, x);
  const double log_zero = nb_log_zero(p);
  const double zero = exp(log_zero);
  const double q = exp(p.r.log_rate - softplus_d(p.t) - log_zero);
  const double m = mu_over_expm1(zero);
  return {nb.value + log1mexp_d(zero, log_zero), nb.d_eta + m * q * p.r.log_slope,
          nb.d_phi + m * (1.0 - q) * p.phi_slope};
}

SAE_HD HeadTerm head_loss_term(LossKind kind, const float* h, float x) {
  HeadTerm out{0.0, {0.0f, 0.0f, 0.0f}};
  switch (kind) {
    case LossKind::nb: {
      const NbTerm nb = nb_term(h[0], h[1], x);
      out.value = nb.value;
      out.grad[0] = static_cast<float>(nb.d_eta);
      out.grad[1] = static_cast<float>(nb.d_phi);
      return out;
    }
    case LossKind::zinb: {
      const NbTerm nb = nb_term(h[0], h[1], x);
      const double s = h[2];
      if (x != 0.0f) {
        out.value = softplus_d(s) + nb.value;
        out.grad[0] = static_cast<float>(nb.d_eta);
        out.grad[1] = static_cast<float>(nb.d_phi);
        out.grad[2] = static_cast<float>(sigmoid_d(s));
        return out;
      }
      const double a = -softplus_d(-s);           // log pi
      const double b = -softplus_d(s) - nb.value;  // log (1 - pi) + log NB(0)
      const double m = a > b ? a : b;
      const double lse = m + log(exp(a - m) + exp(b - m));
      const double w = exp(b - lse);  // P(the zero came from the nb part)
      out.value = -lse;
      out.grad[0] = static_cast<float>(w * nb.d_eta);
      out.grad[1] = static_cast<float>(w * nb.d_phi);
      out.grad[2] = static_cast<float>(w - sigmoid_d(-s));
      return out;
    }
    case LossKind::hurdle_nb: {
      const double s = h[0];
      if (x == 0.0f) {
        out.value = softplus_d(s);
        out.grad[0] = static_cast<float>(sigmoid_d(s));
        return out;
      }
      const NbTerm value = ztnb_term(h[1], h[2], x);
      out.value = softplus_d(-s) + value.value;
      out.grad[0] = static_cast<float>(-sigmoid_d(-s));
      out.grad[1] = static_cast<float>(value.d_eta);
      out.grad[2] = static_cast<float>(value.d_phi);
      return out;
    }
    case LossKind::hurdle:
    default: {
      const double s = h[0];
      if (x == 0.0f) {
        out.value = softplus_d(s);
        out.grad[0] = static_cast<float>(sigmoid_d(s));
        return out;
      }
      const RateD r = rate_d(h[1]);
      const double xd = x;
      out.value = softplus_d(-s) + r.rate - xd * r.log_rate + log_gamma_d(xd + 1.0) +
                  log1mexp_d(r.rate, r.log_rate);
      out.grad[0] = static_cast<float>(-sigmoid_d(-s));
      out.grad[1] = static_cast<float>(r.rate_slope +
                                       r.log_slope * (mu_over_expm1(r.rate) - xd));
      return out;
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

// ---- the latents' code length (TrainConfig::rate_lambda; lossless mode's integer codes) ----
//
// A rate-aware model stores each latent dimension j as an integer k under a factorised prior: a
// logistic density with location mu_j and scale s_j = e^{b_j}, whose mass on [k - 1/2, k + 1/2]
// is the integer's probability. Training replaces rounding by uniform noise in [-1/2, 1/2) (the
// relaxation of learned compression, Balle et al. 2017): the density of the noisy latent z is
// that same mass on [z - 1/2, z + 1/2], so -log of it is the latent's code length in nats and
// its gradient reaches the encoder, mu and b. With c = (z - mu + 1/2) / s and
// a = (z - mu - 1/2) / s, sigma(c) - sigma(a) = sigma(c) sigma(-a) (1 - e^{-1/s}), so
//   -log p = softplus(-c) + softplus(a) - log(1 - e^{-1/s})
// which is finite for any z, however far in the tails. b is clamped to
// [-kLatentLogScaleLimit, kLatentLogScaleLimit] (its gradient is 0 outside).
constexpr float kLatentLogScaleLimit = 8.0f;

// The largest magnitude of an integer latent code: rounded latents are clamped to it (NaN to
// -kMaxLatentCode), so that every code float32 holds is an integer the coder can store.
constexpr float kMaxLatentCode = 16777216.0f;

struct RateTerm {
  float value;           // -log p in nats
  float grad;            // d value / d z
  float grad_location;   // d value / d mu
  float grad_log_scale;  // d value / d b
};

SAE_HD RateTerm latent_rate_term(float z, float location, float log_scale) {
  const bool clamped = log_scale < -kLatentLogScaleLimit || log_scale > kLatentLogScaleLimit;
  const double b = fmin(fmax(static_cast<double>(log_scale), -kLatentLogScaleLimit),
                        static_cast<double>(kLatentLogScaleLimit));
  const double inv_scale = exp(-b);
  const double centred = static_cast<double>(z) - static_cast<double>(location);
  const double c = (centred + 0.5) * inv_scale;
  const double a = (centred - 0.5) * inv_scale;
  const double width_term =
      inv_scale > 0.6931471805599453 ? log1p(-exp(-inv_scale)) : log(-expm1(-inv_scale));
  const double value = softplus_d(-c) + softplus_d(a) - width_term;
  const double sig_neg_c = sigmoid_d(-c);
  const double sig_a = sigmoid_d(a);
  const double grad = (sig_a - sig_neg_c) * inv_scale;
  const double grad_b = c * sig_neg_c - a * sig_a + mu_over_expm1(inv_scale);
  return {static_cast<float>(value), static_cast<float>(grad), static_cast<float>(-grad),
          clamped ? 0.0f : static_cast<float>(grad_b)};
}

// Uniform in [-1/2, 1/2) from (seed, index): the noise that stands in for rounding while
// training, identical on both backends (24 bits of the hash, exact in float).
SAE_HD float latent_noise(std::uint64_t seed, std::uint64_t index) {
  return static_cast<float>(mix64(seed ^ mix64(index)) >> 40) * (1.0f / 16777216.0f) - 0.5f;
}

// The integer code of a latent: rounded to nearest (ties to even), clamped to kMaxLatentCode;
// + 0 turns a -0 into 0, so that codes print and hash as the integers they are.
SAE_HD float latent_code(float z) {
  return fminf(fmaxf(rintf(z), -kMaxLatentCode), kMaxLatentCode) + 0.0f;
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

// ---- decode of the losses with several outputs per entry ----
//
// h holds the entry's K = output_heads(kind) outputs (see head_loss_term). The mean:
//   nb      mu
//   zinb    (1 - pi) mu
//   hurdle  P(x > 0) E[x | x > 0] = sigmoid(s) mu / (1 - e^-mu)
//   hurdle_nb  sigmoid(s) mu / (1 - NB(0)) = sigmoid(s) mu / (1 - e^-Z)
// and the mode (DecodeMode::mode):
//   nb      the exact argmax of the pmf: P(k) / P(k-1) = (k - 1 + theta) mu / (k (theta + mu))
//           exceeds 1 exactly while k < (theta - 1) mu / theta, so the mode is
//           floor((theta - 1) mu / theta) for theta > 1 and 0 otherwise (a tie at an integer
//           takes the larger count, as poisson_mode)
//   zinb    the nb mode m, or 0 where P(0) = pi + (1 - pi) NB(0) exceeds (1 - pi) NB(m)
//   hurdle  0 where the support probability sigmoid(s) is below the threshold (head_count's
//           hurdle_threshold: kHurdleSupportThreshold unless the model chose another on its
//           validation rows), else the zero-truncated Poisson's mode max(1, floor(mu)). Only
//           mode reads the threshold; mean and round decode the mean above.
//   hurdle_nb  as hurdle, with the zero-truncated nb's mode: the nb mode, or 1 where that is 0
//           (the pmf of a negative binomial falls from its mode on both sides, so truncating
//           below 1 leaves 1 the argmax when the mode was 0)
constexpr double kHurdleSupportThreshold = kDefaultHurdleThreshold;

SAE_HD double nb_dispersion(float phi) {
  const double p = phi;
  return exp(p < -kLogDispersionLimit ? -kLogDispersionLimit
                                      : (p > kLogDispersionLimit ? kLogDispersionLimit : p));
}

SAE_HD double nb_mode(double mu, double theta) {
  if (!(theta > 1.0) || !(mu > 0.0)) return 0.0;
  return floor((theta - 1.0) * mu / theta);
}

// z / (1 - e^-z), -> 1 as z -> 0: the mean of a zero-truncated distribution over its untruncated
// mean, for the zero probability e^-z.
SAE_HD double truncation_factor(double z) { return z < 1e-10 ? 1.0 + 0.5 * z : z / -expm1(-z); }

SAE_HD float head_mean(LossKind kind, const float* h, float scale) {
  switch (kind) {
    case LossKind::nb:
      return static_cast<float>(rate_d(h[0]).rate * scale);
    case LossKind::zinb:
      return static_cast<float>(sigmoid_d(-static_cast<double>(h[2])) * rate_d(h[0]).rate * scale);
    case LossKind::hurdle: {
      const double mu = rate_d(h[1]).rate;
      return static_cast<float>(sigmoid_d(h[0]) * truncation_factor(mu) * scale);
    }
    case LossKind::hurdle_nb: {
      // mu / (1 - e^-Z) = (mu / Z) (Z / (1 - e^-Z)), mu / Z from the logs so that it stays
      // finite where both underflow.
      const NbParts p = nb_parts(h[1], h[2]);
      const double log_zero = nb_log_zero(p);
      return static_cast<float>(sigmoid_d(h[0]) * exp(p.r.log_rate - log_zero) *
                                truncation_factor(exp(log_zero)) * scale);
    }
    default:
      return decoded_value(kind, h[0], scale);
  }
}

SAE_HD float head_count(LossKind kind, DecodeMode mode, const float* h, float scale,
                        double hurdle_threshold = kHurdleSupportThreshold) {
  if (mode != DecodeMode::mode) return round_count(head_mean(kind, h, scale));
  switch (kind) {
    case LossKind::nb:
      return static_cast<float>(nb_mode(rate_d(h[0]).rate, nb_dispersion(h[1])));
    case LossKind::zinb: {
      const double m = nb_mode(rate_d(h[0]).rate, nb_dispersion(h[1]));
      if (m == 0.0) return 0.0f;
      const float mf = static_cast<float>(m);
      const double s = h[2];
      const double log_p0 = -head_loss_term(LossKind::zinb, h, 0.0f).value;
      const double log_pm = -softplus_d(s) - nb_term(h[0], h[1], mf).value;
      return log_p0 > log_pm ? 0.0f : mf;
    }
    case LossKind::hurdle: {
      if (sigmoid_d(h[0]) < hurdle_threshold) return 0.0f;
      const double mu = rate_d(h[1]).rate;
      return static_cast<float>(mu >= 1.0 ? floor(mu) : 1.0);
    }
    case LossKind::hurdle_nb: {
      if (sigmoid_d(h[0]) < hurdle_threshold) return 0.0f;
      const double m = nb_mode(rate_d(h[1]).rate, nb_dispersion(h[2]));
      return static_cast<float>(m >= 1.0 ? m : 1.0);
    }
    default:
      return count_from_value(kind, mode, decoded_value(kind, h[0], scale));
  }
}

}  // namespace sparseae::math
