// Library-size handling: the input transform of the first layer's values, the per-row log size
// factors of a batch, and their addition to the log-mean head of the output layer. The math is
// math::transform_input and math::log_size_factor, shared with the cpu backend.
#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"
#include "math/op_math.hpp"

namespace sparseae::kernels {

namespace {

struct TransformOp {
  InputTransform transform;
  const float* in;
  float* out;
  __device__ void operator()(std::int64_t, std::int64_t i) const {
    out[i] = math::transform_input(transform, in[i]);
  }
};

struct AddRowOffsetOp {
  float* m;
  std::int64_t ld;
  const float* offsets;
  __device__ void operator()(std::int64_t r, std::int64_t c) const { m[r * ld + c] += offsets[r]; }
};

// One thread per row, its entries summed in column order in float64: the cpu backend's order, so
// both give the same factor.
__global__ void csr_log_size_factors_kernel(CsrView batch, float log_reference, float* out) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       r < batch.rows; r += stride) {
    double total = 0.0;
    for (RowOffset k = batch.row_offsets[r]; k < batch.row_offsets[r + 1]; ++k)
      total += batch.values[k];
    out[r] = math::log_size_factor(total, log_reference);
  }
}

__global__ void dense_log_size_factors_kernel(ConstDenseView batch, float log_reference,
                                              float* out) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       r < batch.rows; r += stride) {
    double total = 0.0;
    for (std::int64_t c = 0; c < batch.cols; ++c) total += batch.data[r * batch.ld + c];
    out[r] = math::log_size_factor(total, log_reference);
  }
}

}  // namespace

void launch_transform_values(InputTransform transform, const float* in, std::int64_t n, float* out,
                             cudaStream_t stream) {
  detail::launch_elementwise_2d(TransformOp{transform, in, out}, 1, n, stream);
}

void launch_row_log_size_factors(CsrView batch, float log_reference, float* out,
                                 cudaStream_t stream) {
  if (batch.rows == 0) return;
  csr_log_size_factors_kernel<<<detail::flat_grid(batch.rows), detail::kBlockThreads, 0, stream>>>(
      batch, log_reference, out);
  SAE_CUDA_CHECK(cudaGetLastError());
}

void launch_row_log_size_factors(ConstDenseView batch, float log_reference, float* out,
                                 cudaStream_t stream) {
  if (batch.rows == 0) return;
  dense_log_size_factors_kernel<<<detail::flat_grid(batch.rows), detail::kBlockThreads, 0,
                                  stream>>>(batch, log_reference, out);
  SAE_CUDA_CHECK(cudaGetLastError());
}

void launch_add_row_offsets(DenseView m, const float* offsets, cudaStream_t stream) {
  detail::launch_elementwise_2d(AddRowOffsetOp{m.data, m.ld, offsets}, m.rows, m.cols, stream);
}

}  // namespace sparseae::kernels
