// The cpu backend's sparse latents: TopK per row, BatchTopK over the batch, BatchTopK's
// inference threshold and AuxK's dead-step counters and backward (kernels/sparsity.cu on cuda).
// Both selections find the k-th largest key (math::selection_key) by a radix select, 8 bits a pass
// on a histogram held on the stack, as the cuda kernel does: linear in the entries and free of
// allocation, so a training step allocates nothing.
#include <array>
#include <cstdint>
#include <limits>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"
#include "math/sparsity_math.hpp"

namespace sparseae::detail {

namespace {

// Keeps the k largest of the n entries value(0..n) (largest key first, ties to the lower index)
// and writes 0 over the others through set_zero; returns the smallest kept value above 0, or
// infinity when none is.
template <typename Value, typename SetZero>
float select_largest(std::int64_t n, std::int64_t k, const Value& value, const SetZero& set_zero) {
  // The key of the k-th largest entry, 8 bits at a time from the top: `remaining` counts how many
  // entries with the prefix found so far are still to be kept.
  std::uint32_t prefix = 0;
  std::uint32_t mask = 0;
  std::int64_t remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    std::array<std::int64_t, 256> histogram{};
    for (std::int64_t i = 0; i < n; ++i) {
      const std::uint32_t key = math::selection_key(value(i));
      if ((key & mask) == prefix) ++histogram[(key >> shift) & 0xffu];
    }
    std::uint32_t bin = 255;
    while (histogram[bin] < remaining) remaining -= histogram[bin--];
    prefix |= bin << shift;
    mask |= 0xffu << shift;
  }
  // Every entry above the k-th key is kept, and the first `remaining` equal to it by index.
  float smallest_positive = std::numeric_limits<float>::infinity();
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = value(i);
    const std::uint32_t key = math::selection_key(v);
    const bool kept = key > prefix || (key == prefix && remaining-- > 0);
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
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < z.rows; ++r) {
      // A dead latent is auxiliary when fewer than aux_k dead latents outrank it (a larger key,
      // or the same key at a lower column): aux_k x cols comparisons at most, no allocation.
      for (std::int64_t c = 0; c < z.cols; ++c) {
        bool auxiliary = false;
        if (aux_k > 0 && dead_steps[c] > dead_after) {
          const std::uint32_t key = math::selection_key(pre(r, c));
          std::int64_t above = 0;
          for (std::int64_t o = 0; o < z.cols && above < aux_k; ++o) {
            if (o == c || dead_steps[o] <= dead_after) continue;
            const std::uint32_t other = math::selection_key(pre(r, o));
            if (other > key || (other == key && o < c)) ++above;
          }
          auxiliary = above < aux_k;
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
