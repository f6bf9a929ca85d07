#pragma once
// The per-element math of lossless mode's decoder: one output of one layer, computed the same
// way bit for bit on the host and on the device, so that the reconstruction compress codes the
// residual against is the one decompress rebuilds, whichever backend each runs on.
//
// What makes it deterministic:
//   - a fixed summation order per output (input 0, 1, ..., in - 1, then the row offset, then the
//     bias), independent of the batch and of any library's algorithm choice;
//   - every addition, product and quotient rounded on its own: on the device through the _rn
//     intrinsics, which nvcc never contracts into an FMA; on the host by compiling the one
//     translation unit that runs this (src/backend/cpu/deterministic_decode.cpp) with
//     -ffp-contract=off;
//   - the activations' exp and log built from those basic operations (IEEE 754 rounds each
//     correctly on both sides) rather than from expf / log1pf, whose CUDA and glibc versions
//     differ in the last bits. Subnormal results are flushed to zero by hand, so that the
//     device's flush-to-zero setting does not matter.
#include <cstring>

#include "math/op_math.hpp"
#include "sparseae/ops.hpp"

namespace sparseae::math::deterministic {

SAE_HD float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

SAE_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

SAE_HD float div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

// 2^k for k in [-126, 127], exactly.
SAE_HD float power_of_two(int k) {
  const int bits = (k + 127) << 23;
#if defined(__CUDA_ARCH__)
  return __int_as_float(bits);
#else
  float result;
  std::memcpy(&result, &bits, sizeof result);
  return result;
#endif
}

// e^x, within 2 ulp, 0 below e^-87 (where float turns subnormal), +inf above 88.7.
SAE_HD float exp(float x) {
  if (x != x) return x;
  if (x > 88.72f) return INFINITY;
  if (x < -87.0f) return 0.0f;
  // x = k ln 2 + r, |r| <= ln 2 / 2; ln 2 split so that k * ln2_high is exact for |k| <= 128.
  const float ln2_high = 0.693145751953125f;
  const float ln2_low = 1.428606765330187e-06f;
  const float k = rintf(mul(x, 1.4426950408889634f));
  const float r = add(add(x, -mul(k, ln2_high)), -mul(k, ln2_low));
  // Taylor series of e^r to r^7: the remainder is below 2^-25 for |r| <= 0.347.
  float p = 1.0f / 5040.0f;
  p = add(mul(p, r), 1.0f / 720.0f);
  p = add(mul(p, r), 1.0f / 120.0f);
  p = add(mul(p, r), 1.0f / 24.0f);
  p = add(mul(p, r), 1.0f / 6.0f);
  p = add(mul(p, r), 0.5f);
  p = add(mul(p, r), 1.0f);
  p = add(mul(p, r), 1.0f);
  // k in [-126, 128]: 2^k in two factors keeps each a normal float.
  const int ki = static_cast<int>(k);
  return mul(mul(p, power_of_two(ki / 2)), power_of_two(ki - ki / 2));
}

// log(1 + u) for u in [0, 1]: 2 atanh(s), s = u / (2 + u) <= 1/3, by its odd series to s^17.
SAE_HD float log1p_unit(float u) {
  const float s = div(u, add(2.0f, u));
  const float s2 = mul(s, s);
  float p = 1.0f / 17.0f;
  p = add(mul(p, s2), 1.0f / 15.0f);
  p = add(mul(p, s2), 1.0f / 13.0f);
  p = add(mul(p, s2), 1.0f / 11.0f);
  p = add(mul(p, s2), 1.0f / 9.0f);
  p = add(mul(p, s2), 1.0f / 7.0f);
  p = add(mul(p, s2), 1.0f / 5.0f);
  p = add(mul(p, s2), 1.0f / 3.0f);
  p = add(mul(p, s2), 1.0f);
  return mul(2.0f, mul(s, p));
}

SAE_HD float sigmoid(float x) {
  if (x >= 0.0f) return div(1.0f, add(1.0f, exp(-x)));
  const float e = exp(x);
  return div(e, add(1.0f, e));
}

// The activations of op_math.hpp's activate, from the functions above.
SAE_HD float activate(Activation activation, float x) {
  switch (activation) {
    case Activation::relu:
      return x > 0.0f ? x : 0.0f;
    case Activation::leaky_relu:
      return x > 0.0f ? x : mul(kLeakyReluSlope, x);
    case Activation::sigmoid:
      return sigmoid(x);
    case Activation::tanh: {
      // tanh|x| = 1 - 2 / (e^2|x| + 1), the sign restored.
      const float a = fabsf(x);
      const float t = add(1.0f, -div(2.0f, add(exp(add(a, a)), 1.0f)));
      return x < 0.0f ? -t : t;
    }
    case Activation::softplus:
      return add(fmaxf(x, 0.0f), log1p_unit(exp(-fabsf(x))));
    case Activation::identity:
    default:
      return x;
  }
}

// The end of output j of the layer: its weighted sum, plus the row offset where the layer adds
// one, plus the bias, activated.
SAE_HD float finish_output(const DeterministicLayer& layer, float sum, float row_offset,
                           std::int64_t j) {
  if (j >= layer.offset_begin && j < layer.offset_end) sum = add(sum, row_offset);
  return activate(layer.activation, add(sum, layer.bias[j]));
}

SAE_HD bool bias_only(const DeterministicLayer& layer, std::int64_t j) {
  return j >= layer.bias_only_begin && j < layer.bias_only_end;
}

// Output column j of the layer for one input row (in_row[0..layer.in)) whose row offset is
// row_offset.
SAE_HD float layer_output(const DeterministicLayer& layer, const float* in_row, float row_offset,
                          std::int64_t j) {
  if (bias_only(layer, j)) return activate(layer.activation, add(0.0f, layer.bias[j]));
  float sum = 0.0f;
  if (layer.transposed_weight) {
    const float* w = layer.weights + j * layer.in;
    for (std::int64_t i = 0; i < layer.in; ++i) sum = add(sum, mul(in_row[i], w[i]));
  } else {
    const std::int64_t column =
        j < layer.bias_only_begin ? j : j - (layer.bias_only_end - layer.bias_only_begin);
    const float* w = layer.weights + column;
    for (std::int64_t i = 0; i < layer.in; ++i)
      sum = add(sum, mul(in_row[i], w[i * layer.weight_cols]));
  }
  return finish_output(layer, sum, row_offset, j);
}

// Outputs side by side, for the host (one output's adds wait on each other; the adds of
// different outputs do not, so the vector unit's lanes take kOutputLanes chains at once).
constexpr std::int64_t kOutputLanes = 16;

// Whether outputs j0 .. j0 + kOutputLanes - 1 can be computed by layer_output_lanes: all inside
// the layer and all weighted (none bias-only), on one side of the bias-only range, so that their
// weight columns are consecutive.
inline bool lanes_fit(const DeterministicLayer& layer, std::int64_t j0) {
  const std::int64_t end = j0 + kOutputLanes;
  return end <= layer.out && (end <= layer.bias_only_begin || j0 >= layer.bias_only_end);
}

// out[l] = layer_output(layer, in_row, row_offset, j0 + l) for l < kOutputLanes, bit for bit:
// each output's products are summed in the same order, each rounded on its own, only the
// outputs' chains interleaved. Where lanes_fit(layer, j0).
inline void layer_output_lanes(const DeterministicLayer& layer, const float* in_row,
                               float row_offset, std::int64_t j0, float* out) {
  float sum[kOutputLanes] = {};
  if (layer.transposed_weight) {
    const float* w = layer.weights + j0 * layer.in;
    for (std::int64_t i = 0; i < layer.in; ++i)
      for (std::int64_t l = 0; l < kOutputLanes; ++l)
        sum[l] = add(sum[l], mul(in_row[i], w[l * layer.in + i]));
  } else {
    const std::int64_t column =
        j0 < layer.bias_only_begin ? j0 : j0 - (layer.bias_only_end - layer.bias_only_begin);
    for (std::int64_t i = 0; i < layer.in; ++i) {
      const float* w = layer.weights + i * layer.weight_cols + column;
      for (std::int64_t l = 0; l < kOutputLanes; ++l) sum[l] = add(sum[l], mul(in_row[i], w[l]));
    }
  }
  for (std::int64_t l = 0; l < kOutputLanes; ++l)
    out[l] = finish_output(layer, sum[l], row_offset, j0 + l);
}

}  // namespace sparseae::math::deterministic
