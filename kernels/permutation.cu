// The epoch's permutation: key i = math::permutation_key(seed, i), then a radix sort of
// (key, i) pairs. The sort is stable and the values start as 0..n-1, so equal keys keep index
// order and the result is the cpu backend's (key, index) order bit for bit.
#include <cub/device/device_radix_sort.cuh>

#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"
#include "math/op_math.hpp"

namespace sparseae::kernels {

namespace {

__global__ void __launch_bounds__(detail::kBlockThreads)
    permutation_keys_kernel(std::uint64_t seed, std::int64_t n, std::uint64_t* keys,
                            std::int64_t* indices) {
  const std::int64_t stride = detail::flat_thread_count();
  for (std::int64_t i = detail::flat_thread_index(); i < n; i += stride) {
    keys[i] = math::permutation_key(seed, static_cast<std::uint64_t>(i));
    indices[i] = i;
  }
}

// Offsets into the workspace: keys in, keys out, indices in, then CUB's scratch.
struct PermutationLayout {
  std::size_t keys_out;
  std::size_t indices;
  std::size_t sort;
  std::size_t sort_bytes;
  std::size_t total;
};

PermutationLayout permutation_layout(std::int64_t n) {
  std::size_t sort_bytes = 0;
  SAE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, sort_bytes, static_cast<const std::uint64_t*>(nullptr),
      static_cast<std::uint64_t*>(nullptr), static_cast<const std::int64_t*>(nullptr),
      static_cast<std::int64_t*>(nullptr), n));
  static_assert(sizeof(std::uint64_t) == sizeof(std::int64_t));
  const std::size_t array = align_workspace(static_cast<std::size_t>(n) * sizeof(std::uint64_t));
  return {array, 2 * array, 3 * array, sort_bytes, 3 * array + align_workspace(sort_bytes)};
}

}  // namespace

std::size_t random_permutation_workspace_bytes(std::int64_t n) {
  return permutation_layout(n).total;
}

void launch_random_permutation(std::uint64_t seed, std::int64_t n, std::int64_t* out,
                               void* workspace, cudaStream_t stream) {
  if (n <= 0) return;
  const PermutationLayout layout = permutation_layout(n);
  auto* base = static_cast<unsigned char*>(workspace);
  auto* keys_in = reinterpret_cast<std::uint64_t*>(base);
  auto* keys_out = reinterpret_cast<std::uint64_t*>(base + layout.keys_out);
  auto* indices = reinterpret_cast<std::int64_t*>(base + layout.indices);
  permutation_keys_kernel<<<detail::flat_grid(n), detail::kBlockThreads, 0, stream>>>(
      seed, n, keys_in, indices);
  SAE_CUDA_CHECK(cudaGetLastError());
  std::size_t sort_bytes = layout.sort_bytes;
  SAE_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      base + layout.sort, sort_bytes, keys_in, keys_out, indices, out, n, 0,
      static_cast<int>(8 * sizeof(std::uint64_t)), stream));
}

}  // namespace sparseae::kernels
