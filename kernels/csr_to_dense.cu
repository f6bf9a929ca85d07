// A CSR matrix written out dense: the row block the PCA's covariance multiplies by its own
// transpose (cuSPARSE SpMM needs one dense operand). One warp per row; atomicAdd makes entries
// that share a row and a column add up, as the cpu backend's loop does.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"

namespace sparseae::kernels {

namespace {

__global__ void __launch_bounds__(detail::kBlockThreads)
    csr_to_dense_kernel(const RowOffset* row_offsets, const ColIndex* col_indices,
                        const float* values, std::int64_t rows, float* out, std::int64_t ld) {
  const int lane = static_cast<int>(threadIdx.x % detail::kWarpSize);
  const std::int64_t warps = detail::flat_thread_count() / detail::kWarpSize;
  for (std::int64_t r = detail::flat_thread_index() / detail::kWarpSize; r < rows; r += warps)
    for (RowOffset k = row_offsets[r] + lane; k < row_offsets[r + 1]; k += detail::kWarpSize)
      atomicAdd(&out[r * ld + col_indices[k]], values[k]);
}

}  // namespace

void launch_csr_to_dense(CsrView a, DenseView out, cudaStream_t stream) {
  if (out.empty()) return;
  launch_scale(out, 0.0f, stream);
  if (a.nnz == 0) return;
  constexpr int kRowsPerBlock = detail::kBlockThreads / detail::kWarpSize;
  csr_to_dense_kernel<<<detail::grid_dim(detail::ceil_div(a.rows, kRowsPerBlock)),
                        detail::kBlockThreads, 0, stream>>>(a.row_offsets, a.col_indices, a.values,
                                                            a.rows, out.data, out.ld);
  SAE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sparseae::kernels
