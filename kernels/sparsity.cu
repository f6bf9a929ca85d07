// The sparse latents' kernels (Backend::topk_rows, batch_topk, threshold_latents; the cpu twin is
// src/backend/cpu/sparsity.cpp):
//   topk_rows: one block per row finds the row's k-th largest key (math::selection_key) by a radix
//     select, 8 bits a pass over a 256-bin histogram in shared memory (4 passes, no sort), then a
//     last pass keeps what lies above it and the first of its ties by column, ranked with warp
//     ballots chunk by chunk in column order;
//   batch_topk: the same select by a single block over the whole batch read row-major, with the
//     block's smallest kept positive entry folded into the threshold on the device;
//   threshold_latents: one element-wise pass;
//   latent_dead_steps (AuxK): one thread per latent, looking for a non-zero down its column;
//   auxk_backward (AuxK): one block per row, each thread ranking its columns among the row's dead
//     latents by a count (cols^2 / threads comparisons: latents are a few thousand at most), then
//     one thread per column sums the bias gradient in row order, in double, as the cpu does.
// The histograms count with shared-memory atomics: integer counts, so the result does not depend
// on their order. Nothing waits for the host.
#include <cuda_runtime.h>
#include <math_constants.h>

#include <cstdint>

#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"
#include "math/sparsity_math.hpp"

namespace sparseae::kernels {

namespace {

using detail::kWarpSize;

// Threads of a block selecting in one row (widths up to a few thousand: 4 passes of 16 loads
// each at 4096), and of the single block selecting in a whole batch.
constexpr int kRowThreads = 256;
constexpr int kBatchThreads = 1024;

// Keeps the k largest of the n entries of a segment and zeroes the rest; segment s starts at row
// s * segment_rows of z and reads entry i at row i / cols, column i % cols from there (a row:
// segment_rows 1 and n = cols; the batch: one segment of n = rows * cols). With threshold set
// (one segment), folds the smallest kept positive entry into it.
template <int kThreads>
__global__ void __launch_bounds__(kThreads)
    select_largest_kernel(float* z, std::int64_t ld, std::int64_t cols, std::int64_t segments,
                          std::int64_t segment_rows, std::int64_t n, std::uint32_t k,
                          float* threshold) {
  constexpr int kWarps = kThreads / kWarpSize;
  __shared__ std::uint32_t histogram[256];
  __shared__ std::uint32_t shared_prefix;
  __shared__ std::uint32_t shared_remaining;
  __shared__ std::uint32_t warp_ties[kWarps];
  __shared__ float warp_minima[kWarps];
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
  for (std::int64_t segment = blockIdx.x; segment < segments; segment += gridDim.x) {
    float* base = z + segment * segment_rows * ld;
    const auto at = [=](std::int64_t i) -> float& { return base[(i / cols) * ld + i % cols]; };
    // The key of the k-th largest entry, 8 bits a pass from the top; `remaining`: how many of the
    // entries that share the prefix found so far are still to be kept.
    std::uint32_t prefix = 0;
    std::uint32_t mask = 0;
    std::uint32_t remaining = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int bin = static_cast<int>(threadIdx.x); bin < 256; bin += kThreads) histogram[bin] = 0;
      __syncthreads();
      for (std::int64_t i = threadIdx.x; i < n; i += kThreads) {
        const std::uint32_t key = math::selection_key(at(i));
        if ((key & mask) == prefix) atomicAdd(&histogram[(key >> shift) & 0xffu], 1u);
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        std::uint32_t bin = 255;
        while (histogram[bin] < remaining) remaining -= histogram[bin--];
        shared_prefix = prefix | (bin << shift);
        shared_remaining = remaining;
      }
      __syncthreads();
      prefix = shared_prefix;
      remaining = shared_remaining;
      mask |= 0xffu << shift;
    }
    // Entries above the k-th key are kept, and the first `remaining` of its ties in index order:
    // a chunk of kThreads entries at a time, each tie ranked by the ties before it.
    std::uint32_t ties_before_chunk = 0;
    float smallest_positive = CUDART_INF_F;
    for (std::int64_t start = 0; start < n; start += kThreads) {
      const std::int64_t i = start + threadIdx.x;
      const bool inside = i < n;
      const float value = inside ? at(i) : 0.0f;
      const std::uint32_t key = math::selection_key(value);
      const bool tie = inside && key == prefix;
      const std::uint32_t ballot = __ballot_sync(0xffffffffu, tie);
      if (lane == 0) warp_ties[warp] = static_cast<std::uint32_t>(__popc(ballot));
      __syncthreads();
      std::uint32_t rank =
          ties_before_chunk + static_cast<std::uint32_t>(__popc(ballot & ((1u << lane) - 1u)));
      std::uint32_t chunk_ties = 0;
      for (int w = 0; w < kWarps; ++w) {
        if (w < warp) rank += warp_ties[w];
        chunk_ties += warp_ties[w];
      }
      if (inside) {
        if (key > prefix || (tie && rank < remaining)) {
          if (value > 0.0f) smallest_positive = fminf(smallest_positive, value);
        } else {
          at(i) = 0.0f;
        }
      }
      ties_before_chunk += chunk_ties;
      __syncthreads();  // warp_ties is rewritten by the next chunk
    }
    if (threshold != nullptr) {
      for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        smallest_positive =
            fminf(smallest_positive, __shfl_down_sync(0xffffffffu, smallest_positive, offset));
      if (lane == 0) warp_minima[warp] = smallest_positive;
      __syncthreads();
      if (threadIdx.x == 0) {
        float smallest = warp_minima[0];
        for (int w = 1; w < kWarps; ++w) smallest = fminf(smallest, warp_minima[w]);
        if (smallest < CUDART_INF_F) *threshold = math::updated_threshold(*threshold, smallest);
      }
    }
  }
}

struct ThresholdOp {
  float* z;
  std::int64_t ld;
  const float* threshold;
  __device__ void operator()(std::int64_t r, std::int64_t c) const {
    float& v = z[r * ld + c];
    v = math::keep_above(v, *threshold);
  }
};

__global__ void latent_dead_steps_kernel(const float* z, std::int64_t ld, std::int64_t rows,
                                         std::int64_t cols, std::int32_t* dead_steps) {
  const std::int64_t c = detail::flat_thread_index();
  if (c >= cols) return;
  bool fired = false;
  for (std::int64_t r = 0; r < rows && !fired; ++r) fired = z[r * ld + c] != 0.0f;
  dead_steps[c] = math::next_dead_steps(dead_steps[c], fired);
}

__global__ void auxk_rows_kernel(std::int64_t aux_k, float aux_weight, std::int32_t dead_after,
                                 const std::int32_t* dead_steps, ConstDenseView pre,
                                 ConstDenseView z, DenseView dz) {
  for (std::int64_t r = blockIdx.x; r < z.rows; r += gridDim.x) {
    for (std::int64_t c = threadIdx.x; c < z.cols; c += blockDim.x) {
      // Auxiliary: dead, and fewer than aux_k dead latents outrank it (a larger key, or the same
      // key at a lower column), the cpu's rule.
      bool auxiliary = false;
      if (aux_k > 0 && dead_steps[c] > dead_after) {
        const std::uint32_t key = math::selection_key(pre.data[r * pre.ld + c]);
        std::int64_t above = 0;
        for (std::int64_t o = 0; o < z.cols && above < aux_k; ++o) {
          if (o == c || dead_steps[o] <= dead_after) continue;
          const std::uint32_t other = math::selection_key(pre.data[r * pre.ld + o]);
          if (other > key || (other == key && o < c)) ++above;
        }
        auxiliary = above < aux_k;
      }
      float& g = dz.data[r * dz.ld + c];
      g = math::auxk_gradient(g, z.data[r * z.ld + c], auxiliary, aux_weight);
    }
  }
}

__global__ void column_sums_in_row_order_kernel(ConstDenseView m, float* sums) {
  const std::int64_t c = detail::flat_thread_index();
  if (c >= m.cols) return;
  double sum = 0.0;
  for (std::int64_t r = 0; r < m.rows; ++r) sum += m.data[r * m.ld + c];
  sums[c] = static_cast<float>(sum);
}

}  // namespace

void launch_topk_rows(std::int64_t k, DenseView z, cudaStream_t stream) {
  // k == cols keeps every entry: nothing to do.
  if (z.rows == 0 || k >= z.cols) return;
  select_largest_kernel<kRowThreads><<<detail::grid_dim(z.rows), kRowThreads, 0, stream>>>(
      z.data, z.ld, z.cols, z.rows, 1, z.cols, static_cast<std::uint32_t>(k), nullptr);
  SAE_CUDA_CHECK(cudaGetLastError());
}

void launch_batch_topk(std::int64_t k, DenseView z, float* threshold, cudaStream_t stream) {
  if (z.rows == 0) return;
  select_largest_kernel<kBatchThreads>
      <<<1, kBatchThreads, 0, stream>>>(z.data, z.ld, z.cols, 1, z.rows, z.rows * z.cols,
                                        static_cast<std::uint32_t>(k * z.rows), threshold);
  SAE_CUDA_CHECK(cudaGetLastError());
}

void launch_threshold_latents(DenseView z, const float* threshold, cudaStream_t stream) {
  detail::launch_elementwise_2d(ThresholdOp{z.data, z.ld, threshold}, z.rows, z.cols, stream);
}

}  // namespace sparseae::kernels

namespace sparseae::kernels {

void launch_latent_dead_steps(ConstDenseView z, std::int32_t* dead_steps, cudaStream_t stream) {
  if (z.cols == 0) return;
  latent_dead_steps_kernel<<<detail::flat_grid(z.cols), detail::kBlockThreads, 0, stream>>>(
      z.data, z.ld, z.rows, z.cols, dead_steps);
  SAE_CUDA_CHECK(cudaGetLastError());
}

void launch_auxk_backward(std::int64_t aux_k, float aux_weight, std::int32_t dead_after,
                          const std::int32_t* dead_steps, ConstDenseView pre, ConstDenseView z,
                          DenseView dz, float* bias_grad, cudaStream_t stream) {
  if (z.cols == 0) return;
  if (z.rows > 0) {
    auxk_rows_kernel<<<detail::grid_dim(z.rows), kRowThreads, 0, stream>>>(
        aux_k, aux_weight, dead_after, dead_steps, pre, z, dz);
    SAE_CUDA_CHECK(cudaGetLastError());
  }
  column_sums_in_row_order_kernel<<<detail::flat_grid(z.cols), detail::kBlockThreads, 0, stream>>>(
      ConstDenseView(dz), bias_grad);
  SAE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sparseae::kernels
