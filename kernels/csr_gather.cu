// Row gather in two halves, around one host read-back of the batch's nnz unless the caller knows
// it (Backend::batch_nonzeros):
//   1. lengths[i] = length of source row row_ids[i] (0 for an out-of-range id, whose least index
//      is recorded with atomicMin); an exclusive scan of count + 1 entries turns them into the
//      batch's row offsets in place; one thread copies the total and the first bad row id into
//      the status the host reads.
//   2. one warp per batch row copies its column indices and values.
#include <cub/device/device_scan.cuh>

#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"

namespace sparseae::kernels {

namespace {

__global__ void __launch_bounds__(detail::kBlockThreads)
    gather_lengths_kernel(const RowOffset* source_offsets, std::int64_t source_rows,
                          const std::int64_t* row_ids, std::int64_t count, RowOffset* lengths,
                          unsigned long long* first_bad_index) {
  const std::int64_t stride = detail::flat_thread_count();
  for (std::int64_t i = detail::flat_thread_index(); i <= count; i += stride) {
    if (i == count) {
      lengths[i] = 0;  // the scan's last input: it never reaches an output, but is read
      continue;
    }
    const std::int64_t row = row_ids[i];
    if (row >= 0 && row < source_rows) {
      lengths[i] = source_offsets[row + 1] - source_offsets[row];
    } else {
      lengths[i] = 0;
      atomicMin(first_bad_index, static_cast<unsigned long long>(i));
    }
  }
}

__global__ void gather_status_kernel(const RowOffset* offsets, const std::int64_t* row_ids,
                                     std::int64_t count, GatherStatus* status) {
  status->nnz = offsets[count];
  if (status->first_bad_index != kNoBadIndex) status->bad_row = row_ids[status->first_bad_index];
}

__global__ void __launch_bounds__(detail::kBlockThreads)
    gather_copy_kernel(const RowOffset* source_offsets, const ColIndex* source_cols,
                       const float* source_values, const std::int64_t* row_ids, std::int64_t count,
                       const RowOffset* offsets, RowOffset capacity, ColIndex* cols,
                       float* values) {
  const int lane = static_cast<int>(threadIdx.x % detail::kWarpSize);
  const std::int64_t warps = detail::flat_thread_count() / detail::kWarpSize;
  for (std::int64_t i = detail::flat_thread_index() / detail::kWarpSize; i < count; i += warps) {
    const RowOffset to = offsets[i];
    // An out-of-range id has length 0 (the lengths kernel): its source offset is never read.
    // Writes stop at the capacity, which the host checked only against the nnz it was given.
    const RowOffset end = offsets[i + 1] < capacity ? offsets[i + 1] : capacity;
    const RowOffset length = end - to;
    if (length <= 0) continue;
    const RowOffset from = source_offsets[row_ids[i]];
    for (RowOffset k = lane; k < length; k += detail::kWarpSize) {
      cols[to + k] = source_cols[from + k];
      values[to + k] = source_values[from + k];
    }
  }
}

}  // namespace

std::size_t gather_workspace_bytes(std::int64_t count) {
  std::size_t scan_bytes = 0;
  SAE_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes,
                                               static_cast<RowOffset*>(nullptr), count + 1));
  return align_workspace(scan_bytes);
}

void launch_gather_offsets(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                           RowOffset* out_row_offsets, GatherStatus* status, void* workspace,
                           cudaStream_t stream) {
  // All ones: first_bad_index = kNoBadIndex; nnz and bad_row are written before they are read.
  SAE_CUDA_CHECK(cudaMemsetAsync(status, 0xFF, sizeof(GatherStatus), stream));
  gather_lengths_kernel<<<detail::flat_grid(count + 1), detail::kBlockThreads, 0, stream>>>(
      source.row_offsets, source.rows, row_ids, count, out_row_offsets, &status->first_bad_index);
  SAE_CUDA_CHECK(cudaGetLastError());
  std::size_t scan_bytes = gather_workspace_bytes(count);
  SAE_CUDA_CHECK(
      cub::DeviceScan::ExclusiveSum(workspace, scan_bytes, out_row_offsets, count + 1, stream));
  gather_status_kernel<<<1, 1, 0, stream>>>(out_row_offsets, row_ids, count, status);
  SAE_CUDA_CHECK(cudaGetLastError());
}

void launch_gather_copy(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                        const CsrOutput& out, cudaStream_t stream) {
  if (count <= 0) return;
  constexpr int kRowsPerBlock = detail::kBlockThreads / detail::kWarpSize;
  gather_copy_kernel<<<detail::grid_dim(detail::ceil_div(count, kRowsPerBlock)),
                       detail::kBlockThreads, 0, stream>>>(
      source.row_offsets, source.col_indices, source.values, row_ids, count, out.row_offsets,
      out.nnz_capacity, out.col_indices, out.values);
  SAE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace sparseae::kernels
