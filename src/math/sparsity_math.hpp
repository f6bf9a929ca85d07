#pragma once
// The per-element math of the sparse latents (ModelConfig::latent_sparsity): the order in which
// TopK and BatchTopK select entries, BatchTopK's inference threshold and its running estimate.
// Both backends select by the same keys, so that they keep the same entries, ties included.
#include <cstdint>
#include <cstring>

#include "math/op_math.hpp"

namespace sparseae::math {

// An unsigned key whose order is the order of the floats: the sign bit flipped for non-negative
// values, every bit for negative ones. -0 sorts just below +0, and the keys of distinct floats
// differ, so "the k largest, ties to the lower index" is one well-defined set on every backend
// (comparing floats directly would let -0 and +0 tie).
SAE_HD std::uint32_t selection_key(float value) {
#if defined(__CUDA_ARCH__)
  const std::uint32_t bits = __float_as_uint(value);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
#endif
  return (bits & 0x80000000u) != 0u ? ~bits : bits | 0x80000000u;
}

// BatchTopK at inference: an entry is kept when it lies above the threshold its training
// estimated (Bussmann et al. 2024, "BatchTopK sparse autoencoders": z * (z > theta)).
SAE_HD float keep_above(float value, float threshold) { return value > threshold ? value : 0.0f; }

// A BatchTopK threshold not yet estimated (no training step has kept a positive entry): below
// every output of the relu that follows the selection, so such a model keeps all of them.
constexpr float kThresholdUnset = -1.0f;

// The weight of a batch in the running estimate: an exponential moving average over about
// 1 / kThresholdRate = 100 steps, long enough to smooth one batch's draw, short enough to follow
// the codes as training moves them.
constexpr float kThresholdRate = 0.01f;

// The running estimate after a batch whose smallest kept positive entry is batch_minimum: the
// batch's own value the first time, then the moving average. The smallest kept entry is the
// threshold that would have kept exactly that batch's selection with keep_above.
SAE_HD float updated_threshold(float current, float batch_minimum) {
  return current < 0.0f ? batch_minimum : current + kThresholdRate * (batch_minimum - current);
}

// AuxK's dead-step counter of a latent after a training batch: 0 when the latent fired in it
// (some row's selected code holds it non-zero), else one more, saturating rather than wrapping
// over a run of more than 2^31 steps.
SAE_HD std::int32_t next_dead_steps(std::int32_t current, bool fired) {
  return fired ? 0 : (current < 0x7fffffff ? current + 1 : current);
}

// The gradient entering a TopK latent's pre-activation with AuxK: the main loss's dz where the
// latent was selected (z > 0, the relu's derivative), aux_weight times it on a row's auxiliary
// dead latent, straight through the selection (for a linear decoder and mse, AuxK's gradient on a
// dead latent at z = 0 is the main loss's, had the latent been selected), and 0 elsewhere.
SAE_HD float auxk_gradient(float dz, float z, bool auxiliary, float aux_weight) {
  return z > 0.0f ? dz : (auxiliary ? aux_weight * dz : 0.0f);
}

}  // namespace sparseae::math
