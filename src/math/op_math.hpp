#pragma once
// The per-element math of every op, written once and executed by both backends: the cuda kernels
// call these from device code and the cpu backend from its loops. Nothing here may touch memory
// beyond its arguments, so a function means the same thing on either side.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "sparseae/ops.hpp"

#if defined(__CUDACC__)
#define SAE_HD __host__ __device__ __forceinline__
#else
#define SAE_HD inline
#endif

namespace sparseae::math {

// x rounded to the nearest float whose low dropped_bits mantissa bits are zero (ties to even):
// how a reduced-precision product sees its operands. Inf and NaN pass through; a finite value
// that rounds past the largest one becomes Inf, as it does in the narrower format.
SAE_HD float round_mantissa(float x, int dropped_bits) {
#if defined(__CUDA_ARCH__)
  std::uint32_t bits = __float_as_uint(x);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
#endif
  if ((bits & 0x7f800000u) == 0x7f800000u) return x;
  const std::uint32_t mask = (1u << dropped_bits) - 1u;
  bits += (mask >> 1) + ((bits >> dropped_bits) & 1u);
  bits &= ~mask;
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

// An operand of a product in the given precision: tf32 keeps 10 of fp32's 23 mantissa bits,
// bf16 keeps 7.
SAE_HD float round_operand(MatmulPrecision precision, float x) {
  switch (precision) {
    case MatmulPrecision::tf32:
      return round_mantissa(x, 13);
    case MatmulPrecision::bf16:
      return round_mantissa(x, 16);
    case MatmulPrecision::fp32:
    default:
      return x;
  }
}

// Slope of leaky_relu for negative inputs, fixed so that the derivative can be recovered from
// the activation's output alone.
constexpr float kLeakyReluSlope = 0.01f;

SAE_HD float sigmoid(float x) {
  // Two branches keep exp() from overflowing for large |x|.
  if (x >= 0.0f) {
    const float e = expf(-x);
    return 1.0f / (1.0f + e);
  }
  const float e = expf(x);
  return e / (1.0f + e);
}

SAE_HD float softplus(float x) {
  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|), exact for large |x| in either direction.
  return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

SAE_HD float activate(Activation activation, float x) {
  switch (activation) {
    case Activation::relu:
      return x > 0.0f ? x : 0.0f;
    case Activation::leaky_relu:
      return x > 0.0f ? x : kLeakyReluSlope * x;
    case Activation::sigmoid:
      return sigmoid(x);
    case Activation::tanh:
      return tanhf(x);
    case Activation::softplus:
      return softplus(x);
    case Activation::identity:
    default:
      return x;
  }
}

// The derivative of the activation at the pre-activation z, written as a function of the output
// y = activate(z). Every supported activation allows this, so the forward pass may overwrite its
// pre-activation in place and the backward pass needs only the layer's output.
SAE_HD float derivative_from_output(Activation activation, float y) {
  switch (activation) {
    case Activation::relu:
      return y > 0.0f ? 1.0f : 0.0f;
    case Activation::leaky_relu:
      return y > 0.0f ? 1.0f : kLeakyReluSlope;
    case Activation::sigmoid:
      return y * (1.0f - y);
    case Activation::tanh:
      return 1.0f - y * y;
    case Activation::softplus:
      // d/dz log(1 + e^z) = sigmoid(z) = 1 - e^-y.
      return -expm1f(-y);
    case Activation::identity:
    default:
      return 1.0f;
  }
}

// One optimizer update of a single parameter. first and second are the moments (adam, adamw) or
// the velocity in first (sgd). bias_correction1/2 are 1 - beta^step, computed once per step.
struct OptimizerScalars {
  OptimizerKind kind;
  float learning_rate;
  float beta1;
  float beta2;
  float epsilon;
  float weight_decay;
  float momentum;
  float bias_correction1;
  float bias_correction2;
};

// kind in place of s.kind: a loop that passes a compile-time constant loses the switch and
// vectorizes.
SAE_HD void optimizer_update(OptimizerKind kind, const OptimizerScalars& s, float& param,
                             float grad, float& first, float& second) {
  switch (kind) {
    case OptimizerKind::sgd: {
      const float g = grad + s.weight_decay * param;
      first = s.momentum * first + g;
      param -= s.learning_rate * first;
      return;
    }
    case OptimizerKind::adamw:
    case OptimizerKind::adam:
    default: {
      const float g = kind == OptimizerKind::adam ? grad + s.weight_decay * param : grad;
      first = s.beta1 * first + (1.0f - s.beta1) * g;
      second = s.beta2 * second + (1.0f - s.beta2) * g * g;
      const float m_hat = first / s.bias_correction1;
      const float v_hat = second / s.bias_correction2;
      if (kind == OptimizerKind::adamw) param -= s.learning_rate * s.weight_decay * param;
      param -= s.learning_rate * m_hat / (sqrtf(v_hat) + s.epsilon);
      return;
    }
  }
}

SAE_HD void optimizer_update(const OptimizerScalars& s, float& param, float grad, float& first,
                             float& second) {
  optimizer_update(s.kind, s, param, grad, first, second);
}

// s with a step's schedule in place of the values it was made with.
SAE_HD OptimizerScalars with_step_scalars(OptimizerScalars s, const StepScalars& step) {
  s.learning_rate = step.learning_rate;
  s.bias_correction1 = step.bias_correction1;
  s.bias_correction2 = step.bias_correction2;
  return s;
}

// Factor that clips a gradient of squared norm sum_squares to max_norm: min(1, max_norm / norm).
SAE_HD float clip_scale(float max_norm, float sum_squares) {
  const float norm = sqrtf(sum_squares);
  return norm > max_norm ? max_norm / norm : 1.0f;
}

// What the optimizer does with a gradient of squared norm sum_squares: skip the step (when
// skip_nonfinite and the norm is NaN or Inf), or scale the gradient by clip_scale (max_norm > 0)
// or by 1.
struct GradientGate {
  bool skip;
  float scale;
};

SAE_HD GradientGate gradient_gate(float max_norm, bool skip_nonfinite, float sum_squares) {
  // x - x is 0 for every finite x and NaN for NaN and +-Inf: a finiteness test that reads the
  // same in host and device code.
  if (skip_nonfinite && !(sum_squares - sum_squares == 0.0f)) return {true, 0.0f};
  return {false, max_norm > 0.0f ? clip_scale(max_norm, sum_squares) : 1.0f};
}

// An entry x of a row whose squared L2 norm is sum_squares, rescaled so that the row has norm 1:
// x / sqrt(sum_squares) in double, rounded once to float. A row of zeros (sum_squares 0) has no
// direction to keep and stays zeros rather than becoming NaN.
SAE_HD float unit_norm_scaled(float x, double sum_squares) {
  return sum_squares > 0.0 ? static_cast<float>(static_cast<double>(x) / sqrt(sum_squares)) : x;
}

// SplitMix64 finaliser: a counter-based hash, so the key of element i depends only on (seed, i)
// and both backends draw the same permutation without sharing generator state.
SAE_HD std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Sort key of element i in the permutation drawn with seed: sorting 0..n-1 by (key, index) gives
// the permutation. Identical on host and device.
SAE_HD std::uint64_t permutation_key(std::uint64_t seed, std::uint64_t i) {
  return mix64(mix64(seed) ^ i);
}

// ---- library size ----

// What the first layer reads of a count x (InputTransform).
SAE_HD float transform_input(InputTransform transform, float x) {
  return transform == InputTransform::log1p ? log1pf(x) : x;
}

// The log size factor of a row whose counts sum to row_total, against the reference library size
// exp(log_reference): log(max(row_total, 1)) - log_reference. A row without counts takes a
// one-count row's factor, so that its offset stays finite (its predicted means are then small
// against a typical row's, as its target is).
SAE_HD float log_size_factor(double row_total, float log_reference) {
  return static_cast<float>(log(row_total > 1.0 ? row_total : 1.0) -
                            static_cast<double>(log_reference));
}

}  // namespace sparseae::math

namespace sparseae::math {

// The values of step (counted from 1) that change from step to step, at config's learning rate.
inline StepScalars make_step_scalars(const OptimizerConfig& config, std::int64_t step) {
  const auto t = static_cast<double>(step);
  return {config.learning_rate,
          static_cast<float>(1.0 - std::pow(static_cast<double>(config.beta1), t)),
          static_cast<float>(1.0 - std::pow(static_cast<double>(config.beta2), t))};
}

// The scalars of one optimizer step, computed once on the host for every parameter.
inline OptimizerScalars make_optimizer_scalars(const OptimizerConfig& config, std::int64_t step) {
  const StepScalars varying = make_step_scalars(config, step);
  return {config.kind,     varying.learning_rate,    config.beta1,
          config.beta2,    config.epsilon,           config.weight_decay,
          config.momentum, varying.bias_correction1, varying.bias_correction2};
}

}  // namespace sparseae::math
