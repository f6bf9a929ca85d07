// The dense path's batch gather: out row i = source row row_ids[i]. Each warp of a 2-D tile copies
// 32 consecutive columns of one row, so reads and writes coalesce.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"

namespace sparseae::kernels {

namespace {

struct GatherDenseRow {
  const float* source;
  std::int64_t source_ld;
  std::int64_t source_rows;
  const std::int64_t* row_ids;
  float* out;
  std::int64_t out_ld;

  __device__ void operator()(std::int64_t i, std::int64_t c) const {
    const std::int64_t row = row_ids[i];
    // An id out of range (which the host could only catch by waiting) gives a zero row.
    out[i * out_ld + c] = row >= 0 && row < source_rows ? source[row * source_ld + c] : 0.0f;
  }
};

}  // namespace

void launch_gather_dense_rows(ConstDenseView source, const std::int64_t* row_ids,
                              std::int64_t count, DenseView out, cudaStream_t stream) {
  detail::launch_elementwise_2d(
      GatherDenseRow{source.data, source.ld, source.rows, row_ids, out.data, out.ld}, count,
      source.cols, stream);
}

}  // namespace sparseae::kernels
