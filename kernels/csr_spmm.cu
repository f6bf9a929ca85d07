// The first layer's sparse products for a captured step. cuSPARSE's SpMM takes the non-zero
// count on the host when its descriptor is made, and a graph would freeze it at the count of the
// batch it was captured with; these kernels find each row's entries through the row offsets on
// the device, so one graph serves every batch. The cpu backend's spmm is their twin: the same
// per-entry multiply-add, in the same entry order for a·b.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"

namespace sparseae::kernels {

namespace {

// Threads per block: one per column of the dense operand, rounded up to whole warps, at most
// kBlockThreads (wider outputs loop).
unsigned int column_threads(std::int64_t cols) {
  return static_cast<unsigned int>(
      std::clamp<std::int64_t>(detail::ceil_div(cols, detail::kWarpSize) * detail::kWarpSize,
                               detail::kWarpSize, detail::kBlockThreads));
}

// Row r of c = alpha * (row r of a) * b + beta * (row r of c), each thread one column: the row's
// entries are read by every thread of the block (broadcast loads) and b's rows coalesce.
__global__ void __launch_bounds__(detail::kBlockThreads)
    csr_rows_times_dense_kernel(float alpha, const RowOffset* row_offsets,
                                const ColIndex* col_indices, const float* values, std::int64_t rows,
                                const float* b, std::int64_t ldb, float beta, float* c,
                                std::int64_t cols, std::int64_t ldc) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const RowOffset begin = row_offsets[r];
    const RowOffset end = row_offsets[r + 1];
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      float sum = beta == 0.0f ? 0.0f : beta * c[r * ldc + j];
      for (RowOffset k = begin; k < end; ++k)
        sum += alpha * values[k] * b[static_cast<std::int64_t>(col_indices[k]) * ldb + j];
      c[r * ldc + j] = sum;
    }
  }
}

// c(k, :) += alpha * a(r, k) * b(r, :) for every entry (r, k) of a: row r's block scatters into
// the rows of c its entries name.
__global__ void __launch_bounds__(detail::kBlockThreads)
    csr_transpose_times_dense_kernel(float alpha, const RowOffset* row_offsets,
                                     const ColIndex* col_indices, const float* values,
                                     std::int64_t rows, const float* b, std::int64_t ldb, float* c,
                                     std::int64_t cols, std::int64_t ldc) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const RowOffset begin = row_offsets[r];
    const RowOffset end = row_offsets[r + 1];
    for (std::int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float in = b[r * ldb + j];
      for (RowOffset k = begin; k < end; ++k)
        atomicAdd(&c[static_cast<std::int64_t>(col_indices[k]) * ldc + j], alpha * values[k] * in);
    }
  }
}

}  // namespace

void launch_csr_rows_times_dense(float alpha, CsrView a, ConstDenseView b, float beta, DenseView c,
                                 cudaStream_t stream) {
  if (c.empty()) return;
  csr_rows_times_dense_kernel<<<detail::grid_dim(a.rows), column_threads(c.cols), 0, stream>>>(
      alpha, a.row_offsets, a.col_indices, a.values, a.rows, b.data, b.ld, beta, c.data, c.cols,
      c.ld);
  SAE_CUDA_CHECK(cudaGetLastError());
}

void launch_csr_transpose_times_dense(float alpha, CsrView a, ConstDenseView b, float beta,
                                      DenseView c, cudaStream_t stream) {
  if (c.empty()) return;
  launch_scale(c, beta, stream);
  if (a.rows == 0) return;
  csr_transpose_times_dense_kernel<<<detail::grid_dim(a.rows), column_threads(c.cols), 0, stream>>>(
      alpha, a.row_offsets, a.col_indices, a.values, a.rows, b.data, b.ld, c.data, c.cols, c.ld);
  SAE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sparseae::kernels
