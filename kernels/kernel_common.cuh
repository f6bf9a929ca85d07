#pragma once
// Launch geometry and the loop skeletons the element-wise kernels share: a grid-stride loop over
// a flat range, one over a row-major matrix, and the deterministic reductions (a block sum, a sum
// over a whole matrix, a column reduction) whose summation order depends only on the shape and
// the fixed block sizes. Every index is 64-bit; every grid dimension is clamped to what CUDA
// allows, the loops covering the rest. No reduction uses atomics, so results repeat bit for bit.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda_check.hpp"

namespace sparseae::kernels::detail {

constexpr int kWarpSize = 32;
constexpr int kBlockThreads = 256;
// The limit of gridDim.y and gridDim.z; x could go higher, but a grid-stride loop gains nothing
// from more than 65535 blocks of 256 threads.
constexpr std::int64_t kMaxGridDim = 65535;

__host__ __device__ constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

inline unsigned int grid_dim(std::int64_t blocks) {
  return static_cast<unsigned int>(std::clamp<std::int64_t>(blocks, 1, kMaxGridDim));
}

// Blocks of kBlockThreads for a flat loop over n elements (n >= 1).
inline unsigned int flat_grid(std::int64_t n) { return grid_dim(ceil_div(n, kBlockThreads)); }

__device__ __forceinline__ std::int64_t flat_thread_index() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ std::int64_t flat_thread_count() {
  return static_cast<std::int64_t>(gridDim.x) * blockDim.x;
}

// A 2-D block is one tile of kTileCols columns by kTileRows rows: each warp covers 32 consecutive
// columns of one row, so its loads and stores coalesce.
constexpr int kTileCols = kWarpSize;
constexpr int kTileRows = kBlockThreads / kTileCols;

template <typename Op>
__global__ void __launch_bounds__(kBlockThreads)
    elementwise_2d_kernel(Op op, std::int64_t rows, std::int64_t cols) {
  const std::int64_t first_col = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const std::int64_t col_stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t row_stride = static_cast<std::int64_t>(gridDim.y) * blockDim.y;
  for (std::int64_t r = static_cast<std::int64_t>(blockIdx.y) * blockDim.y + threadIdx.y; r < rows;
       r += row_stride)
    for (std::int64_t c = first_col; c < cols; c += col_stride) op(r, c);
}

// Calls op(r, c) once for each element of a rows x cols matrix, in no particular order.
template <typename Op>
void launch_elementwise_2d(const Op& op, std::int64_t rows, std::int64_t cols,
                           cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  const dim3 block(kTileCols, kTileRows);
  const dim3 grid(grid_dim(ceil_div(cols, kTileCols)), grid_dim(ceil_div(rows, kTileRows)));
  elementwise_2d_kernel<<<grid, block, 0, stream>>>(op, rows, cols);
  SAE_CUDA_CHECK(cudaGetLastError());
}

// ---- deterministic block and warp sums ----

// Sum over the 32 lanes of a warp by a fixed shuffle tree; the total lands in lane 0 (the other
// lanes hold partial sums). Every lane of the warp must call it, with no lane exited.
template <typename T>
__device__ __forceinline__ T warp_sum(T value) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
    value += __shfl_down_sync(0xffffffffu, value, offset);
  return value;
}

// Replaces values[j], in every thread of the block, by the sum of values[j] over the block: a
// warp_sum per warp, then each thread adds the kThreads / 32 warp totals in ascending warp order,
// so every thread gets the same bits and the order depends only on kThreads.
//
// The block must be one-dimensional with exactly kThreads threads, and every thread must call it
// (never from a branch that not all threads take): it contains __syncthreads(). Its first barrier
// comes after nothing but register work, so it also orders every global and shared memory access
// the block made before the call before every access after it. Consecutive calls may reuse the
// same shared memory: the first barrier keeps a fast thread from overwriting totals that a slow
// thread has yet to read.
template <int kThreads, typename T, int N>
__device__ __forceinline__ void block_sum(T (&values)[N]) {
  static_assert(kThreads % kWarpSize == 0 && kThreads <= 1024, "whole warps, at most 1024 threads");
  constexpr int kWarps = kThreads / kWarpSize;
  __shared__ T warp_totals[N][kWarps];
  const int lane = static_cast<int>(threadIdx.x % kWarpSize);
  const int warp = static_cast<int>(threadIdx.x / kWarpSize);
#pragma unroll
  for (int j = 0; j < N; ++j) values[j] = warp_sum(values[j]);
  __syncthreads();
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < N; ++j) warp_totals[j][warp] = values[j];
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < N; ++j) {
    T total = warp_totals[j][0];
    for (int w = 1; w < kWarps; ++w) total += warp_totals[j][w];
    values[j] = total;
  }
}

// ---- deterministic sum over a whole matrix ----
// A grid-stride loop over the rows x cols elements in row-major order: thread t of the grid adds
// elements t, t + T, t + 2T, ... (T threads in all) in ascending order, each block adds its
// threads' sums with block_sum, and then either the one block writes the total or each block
// writes a partial and one more block (sum_partials_kernel) adds the partials with the same
// scheme. The grid size depends only on rows * cols, so the order does too. Sums are in double,
// as the cpu backend keeps them.
constexpr std::int64_t kMaxSumBlocks = 1024;

inline unsigned int matrix_sum_blocks(std::int64_t rows, std::int64_t cols) {
  return static_cast<unsigned int>(
      std::clamp<std::int64_t>(ceil_div(rows * cols, kBlockThreads), 1, kMaxSumBlocks));
}

inline std::size_t matrix_sum_partials_bytes(std::int64_t rows, std::int64_t cols) {
  const unsigned int blocks = matrix_sum_blocks(rows, cols);
  return blocks <= 1 ? 0 : static_cast<std::size_t>(blocks) * sizeof(double);
}

// element(r, c) returns the value to add (and may write an output of its own). The position
// (r, c) of flat index i = r * cols + c advances by the grid stride without a division per
// element.
template <typename Element>
__global__ void __launch_bounds__(kBlockThreads)
    matrix_sum_kernel(Element element, std::int64_t rows, std::int64_t cols, double* partials,
                      float* out) {
  const std::int64_t n = rows * cols;
  std::int64_t i = flat_thread_index();
  double sum = 0.0;
  if (i < n) {  // cols >= 1 here; a branch without barriers
    const std::int64_t stride = flat_thread_count();
    const std::int64_t stride_rows = stride / cols;
    const std::int64_t stride_cols = stride - stride_rows * cols;
    std::int64_t r = i / cols;
    std::int64_t c = i - r * cols;
    for (; i < n; i += stride) {
      sum += element(r, c);
      r += stride_rows;
      c += stride_cols;
      if (c >= cols) {
        c -= cols;
        ++r;
      }
    }
  }
  double total[1] = {sum};
  block_sum<kBlockThreads>(total);
  if (threadIdx.x == 0) {
    if (gridDim.x == 1)
      *out = static_cast<float>(total[0]);
    else
      partials[blockIdx.x] = total[0];
  }
}

// One block of kBlockThreads: *out = the sum of partials[0..count). A template so that including
// this header in several files does not define the kernel's host stub in each of them.
template <typename Partial>
__global__ void __launch_bounds__(kBlockThreads)
    sum_partials_kernel(const Partial* partials, std::int64_t count, float* out) {
  Partial sum = 0;
  for (std::int64_t k = threadIdx.x; k < count; k += kBlockThreads) sum += partials[k];
  Partial total[1] = {sum};
  block_sum<kBlockThreads>(total);
  if (threadIdx.x == 0) *out = static_cast<float>(total[0]);
}

// Runs element over a rows x cols matrix and writes *out = the sum of what it returns, or 0 when
// the matrix is empty (*out is always written). workspace holds
// matrix_sum_partials_bytes(rows, cols) bytes. Two launches at most, no host synchronisation.
template <typename Element>
void launch_matrix_sum(const Element& element, std::int64_t rows, std::int64_t cols, float* out,
                       void* workspace, cudaStream_t stream) {
  const unsigned int blocks = matrix_sum_blocks(rows, cols);
  auto* partials = static_cast<double*>(workspace);
  // With rows * cols == 0 the one block adds nothing and writes 0, as the cpu backend does.
  matrix_sum_kernel<<<blocks, kBlockThreads, 0, stream>>>(element, rows, cols, partials, out);
  SAE_CUDA_CHECK(cudaGetLastError());
  if (blocks == 1) return;
  sum_partials_kernel<<<1, kBlockThreads, 0, stream>>>(static_cast<const double*>(partials),
                                                       static_cast<std::int64_t>(blocks), out);
  SAE_CUDA_CHECK(cudaGetLastError());
}

// ---- deterministic column reduction ----
// The rows are split into row_blocks blocks of rows_per_block rows. Block (x, y) of the grid
// walks column tile x over row block y: thread (tx, ty) adds rows ty, ty + kTileRows, ... of its
// column in ascending order, then thread ty == 0 adds the kTileRows partial sums in ascending ty.
// With one row block that sum is final; otherwise it goes to partials[col * row_blocks + y] and a
// second kernel gives each column one warp, whose lanes add the partials in a fixed order before
// a fixed shuffle tree. No atomics anywhere: the result depends only on the shape, and repeats
// bit for bit. Sums are kept in double, as the cpu backend keeps them.
//
// Small batches still spread over many blocks (at least kMinRowsPerBlock rows each); huge inputs
// stop at kMaxRowBlocks so the partials stay small (8 KiB per column).
constexpr std::int64_t kMinRowsPerBlock = 32;
constexpr std::int64_t kMaxRowBlocks = 1024;

struct ColumnReductionGrid {
  std::int64_t rows_per_block;
  std::int64_t row_blocks;  // 0 when rows == 0; never above kMaxRowBlocks
};

inline ColumnReductionGrid column_reduction_grid(std::int64_t rows) {
  const std::int64_t rows_per_block = std::max(kMinRowsPerBlock, ceil_div(rows, kMaxRowBlocks));
  return {rows_per_block, ceil_div(rows, rows_per_block)};
}

inline std::size_t column_reduction_partials_bytes(std::int64_t rows, std::int64_t cols) {
  const std::int64_t row_blocks = column_reduction_grid(rows).row_blocks;
  if (row_blocks <= 1) return 0;
  return static_cast<std::size_t>(cols) * static_cast<std::size_t>(row_blocks) * sizeof(double);
}

// element(r, c) returns the value to sum (and may write an output of its own). out == nullptr
// skips the reduction, leaving only element's side effects.
template <typename Element>
__global__ void __launch_bounds__(kBlockThreads)
    column_reduction_kernel(Element element, std::int64_t rows, std::int64_t cols,
                            std::int64_t rows_per_block, std::int64_t row_blocks, float scale,
                            float* out, double* partials) {
  __shared__ double tile_sums[kTileRows][kTileCols];
  const std::int64_t row_begin = static_cast<std::int64_t>(blockIdx.y) * rows_per_block;
  const std::int64_t row_end =
      rows - row_begin < rows_per_block ? rows : row_begin + rows_per_block;
  const std::int64_t tiles = ceil_div(cols, kTileCols);
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const std::int64_t c = tile * kTileCols + threadIdx.x;
    double sum = 0.0;
    if (c < cols)
      for (std::int64_t r = row_begin + threadIdx.y; r < row_end; r += kTileRows)
        sum += element(r, c);
    if (out == nullptr) continue;  // the same for the whole block, so no barrier is skipped
    tile_sums[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
      double total = 0.0;
      for (int k = 0; k < kTileRows; ++k) total += tile_sums[k][threadIdx.x];
      if (row_blocks == 1)
        out[c] = static_cast<float>(static_cast<double>(scale) * total);
      else
        partials[c * row_blocks + blockIdx.y] = total;
    }
    __syncthreads();  // tile_sums is rewritten for the next tile
  }
}

// A template (on the partials' type) so that including this header in several files does not
// define the kernel's host stub in each of them.
template <typename Partial>
__global__ void __launch_bounds__(kBlockThreads)
    column_reduction_finish_kernel(const Partial* partials, std::int64_t row_blocks,
                                   std::int64_t cols, float scale, float* out) {
  const int lane = static_cast<int>(threadIdx.x % kWarpSize);
  const std::int64_t warps = flat_thread_count() / kWarpSize;
  // c is the same for all lanes of a warp, so every lane takes part in each shuffle.
  for (std::int64_t c = flat_thread_index() / kWarpSize; c < cols; c += warps) {
    Partial sum = 0;
    for (std::int64_t k = lane; k < row_blocks; k += kWarpSize) sum += partials[c * row_blocks + k];
    sum = warp_sum(sum);
    if (lane == 0) out[c] = static_cast<float>(static_cast<double>(scale) * sum);
  }
}

// Runs element over a rows x cols matrix and, when out is not null, writes
// out[c] = scale * (sum over r of element(r, c)). workspace holds
// column_reduction_partials_bytes(rows, cols) bytes.
template <typename Element>
void launch_column_reduction(const Element& element, std::int64_t rows, std::int64_t cols,
                             float scale, float* out, void* workspace, cudaStream_t stream) {
  if (cols == 0) return;
  const ColumnReductionGrid shape = column_reduction_grid(rows);
  auto* partials = static_cast<double*>(workspace);
  if (shape.row_blocks > 0) {
    const dim3 block(kTileCols, kTileRows);
    const dim3 grid(grid_dim(ceil_div(cols, kTileCols)),
                    static_cast<unsigned int>(shape.row_blocks));
    column_reduction_kernel<<<grid, block, 0, stream>>>(element, rows, cols, shape.rows_per_block,
                                                        shape.row_blocks, scale, out, partials);
    SAE_CUDA_CHECK(cudaGetLastError());
  }
  if (out == nullptr || shape.row_blocks == 1) return;
  // With rows == 0 (no row blocks, no partials) this writes scale * 0, as the cpu backend does.
  column_reduction_finish_kernel<<<grid_dim(ceil_div(cols, kBlockThreads / kWarpSize)),
                                   kBlockThreads, 0, stream>>>(partials, shape.row_blocks, cols,
                                                               scale, out);
  SAE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sparseae::kernels::detail
