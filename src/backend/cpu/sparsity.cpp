// The cpu backend's sparse latents: TopK per row, BatchTopK over the batch, BatchTopK's
// inference threshold and AuxK's dead-step counters and backward (kernels/sparsity.cu on cuda).
// The three selections (TopK's, BatchTopK's and AuxK's among a row's dead latents) find the k-th
// largest key (math::selection_key) by a radix select, 8 bits a pass on a histogram held on the
// stack, as the cuda TopK kernels do (cuda's AuxK ranks each dead latent by counting instead):
// linear in the entries and free of allocation, so a training step allocates nothing.
#include <array>
#include <cstdint>
#include <limits>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"
#include "math/sparsity_math.hpp"

namespace sparseae::detail {

namespace {

// The key (math::selection_key) of the k-th largest of the entries i in [0, n) for which
// eligible(i) holds, k from 1 to their number, and how many entries with that key are kept with
// it (ties go to the lower index): found 8 bits at a time from the top, `ties` counting how many
// eligible entries with the prefix found so far are still to be kept.
struct KthLargestKey {
  std::uint32_t key = 0;
  std::int64_t ties = 0;
};

template <typename Key, typename Eligible>
KthLargestKey kth_largest_key(std::int64_t n, std::int64_t k, const Key& key_of,
                              const Eligible& eligible) {
  std::uint32_t prefix = 0;
  std::uint32_t mask = 0;
  std::int64_t remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    std::array<std::int64_t, 256> histogram{};
    for (std::int64_t i = 0; i < n; ++i) {
      if (!eligible(i)) continue;
      const std::uint32_t key = key_of(i);
      if ((key & mask) == prefix) ++histogram[(key >> shift) & 0xffu];
    }
    std::uint32_t bin = 255;
    while (histogram[bin] < remaining) remaining -= histogram[bin--];
    prefix |= bin << shift;
    mask |= 0xffu << shift;
  }
  return {prefix, remaining};
}

// Keeps the k largest of the n entries value(0..n) (largest key first, ties to the lower index)
// and writes 0 over the others through set_zero; returns the smallest kept value above 0, or
// infinity when none is.
template <typename Value, typename SetZero>
float select_largest(std::int64_t n, std::int64_t k, const Value& value, const SetZero& set_zero) {
  KthLargestKey kth = kth_largest_key(
      n, k, [&](std::int64_t i) { return math::selection_key(value(i)); },
      [](std::int64_t) { return true; });
  // Every entry above the k-th key is kept, and the first kth.ties equal to it by index.
  float smallest_positive = std::numeric_limits<float>::infinity();
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = value(i);
    const std::uint32_t key = math::selection_key(v);
    const bool kept = key > kth.key || (key == kth.key && kth.ties-- > 0);
    if (!kept)
      set_zero(i);
    else if (v > 0.0f && v < smallest_positive)
      smallest_positive = v;
  }
  return smallest_positive;
}

}  // namespace

void CpuBackend::topk_rows(std::int64_t k, DenseView z) {
  check_topk("topk_rows", k, z);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < z.rows; ++r)
      select_largest(
          z.cols, k, [&](std::int64_t c) { return z(r, c); },
          [&](std::int64_t c) { z(r, c) = 0.0f; });
  });
}

void CpuBackend::batch_topk(std::int64_t k, DenseView z, float* threshold) {
  check_topk("batch_topk", k, z);
  run([=] {
    const std::int64_t cols = z.cols;
    const float smallest_positive = select_largest(
        z.rows * cols, k * z.rows, [&](std::int64_t i) { return z(i / cols, i % cols); },
        [&](std::int64_t i) { z(i / cols, i % cols) = 0.0f; });
    if (threshold != nullptr && smallest_positive < std::numeric_limits<float>::infinity())
      *threshold = math::updated_threshold(*threshold, smallest_positive);
  });
}

void CpuBackend::threshold_latents(DenseView z, const float* threshold) {
  check_view("threshold_latents", "z", z);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < z.rows; ++r)
      for (std::int64_t c = 0; c < z.cols; ++c) z(r, c) = math::keep_above(z(r, c), *threshold);
  });
}

void CpuBackend::latent_dead_steps(ConstDenseView z, std::int32_t* dead_steps) {
  check_view("latent_dead_steps", "z", z);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t c = 0; c < z.cols; ++c) {
      bool fired = false;
      for (std::int64_t r = 0; r < z.rows && !fired; ++r) fired = z(r, c) != 0.0f;
      dead_steps[c] = math::next_dead_steps(dead_steps[c], fired);
    }
  });
}

void CpuBackend::auxk_backward(std::int64_t aux_k, float aux_weight, std::int32_t dead_after,
                               const std::int32_t* dead_steps, ConstDenseView pre, ConstDenseView z,
                               DenseView dz, float* bias_grad) {
  check_auxk(aux_k, pre, z, dz);
  run([=] {
    // The dead latents are the same in every row; when there are no more than aux_k of them,
    // each is auxiliary in every row and no row needs a selection.
    const auto dead = [=](std::int64_t c) { return dead_steps[c] > dead_after; };
    std::int64_t dead_latents = 0;
    for (std::int64_t c = 0; c < z.cols; ++c) dead_latents += dead(c);
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < z.rows; ++r) {
      // A dead latent is auxiliary when fewer than aux_k dead latents outrank it (a larger key,
      // or the same key at a lower column): those at or above the row's aux_k-th largest key.
      const auto key_of = [&](std::int64_t c) { return math::selection_key(pre(r, c)); };
      const bool every_dead = aux_k >= dead_latents;
      KthLargestKey kth;
      if (aux_k > 0 && !every_dead) kth = kth_largest_key(z.cols, aux_k, key_of, dead);
      for (std::int64_t c = 0; c < z.cols; ++c) {
        bool auxiliary = false;
        if (aux_k > 0 && dead(c)) {
          const std::uint32_t key = key_of(c);
          auxiliary = every_dead || key > kth.key || (key == kth.key && kth.ties-- > 0);
        }
        dz(r, c) = math::auxk_gradient(dz(r, c), z(r, c), auxiliary, aux_weight);
      }
    }
    // The bias gradient: each column summed in row order, in double, whatever the thread count.
#pragma omp parallel for schedule(static)
    for (std::int64_t c = 0; c < z.cols; ++c) {
      double sum = 0.0;
      for (std::int64_t r = 0; r < z.rows; ++r) sum += dz(r, c);
      bias_grad[c] = static_cast<float>(sum);
    }
  });
}

}  // namespace sparseae::detail
