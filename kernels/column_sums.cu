// Column sums and means with the deterministic column reduction of kernel_common.cuh.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"

namespace sparseae::kernels {

namespace {

struct ReadElement {
  const float* x;
  std::int64_t ld;
  __device__ float operator()(std::int64_t r, std::int64_t c) const { return x[r * ld + c]; }
};

}  // namespace

std::size_t column_reduction_workspace_bytes(std::int64_t rows, std::int64_t cols) {
  return align_workspace(detail::column_reduction_partials_bytes(rows, cols));
}

void launch_column_sums(ConstDenseView x, float scale, float* out, void* workspace,
                        cudaStream_t stream) {
  detail::launch_column_reduction(ReadElement{x.data, x.ld}, x.rows, x.cols, scale, out, workspace,
                                  stream);
}

}  // namespace sparseae::kernels
