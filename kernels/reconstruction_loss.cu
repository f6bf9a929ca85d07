// The reconstruction loss and its gradient in one launch, reading the dense output y and the CSR
// target together; the target is never densified (the dense path reads a dense target in pass 1
// and skips pass 2). One block per row (a grid-stride loop over rows
// beyond the grid limit), with the per-element math of src/math/loss_math.hpp:
//   1. threads stride over the row's columns: grad = entry_scale * zero-target gradient, and each
//      thread adds the zero-target values (and, for mse_cosine, y^2);
//   2. barrier, then threads stride over the row's non-zeros: grad at their columns is
//      overwritten with entry_scale * the full gradient, and each thread adds full - zero (and,
//      for mse_cosine, x^2 and x*y). A row's columns are distinct, so no two threads write the
//      same entry in this pass;
//   3. block_sum adds the per-thread sums in a fixed order (and is the barrier after pass 2);
//   4. mse_cosine only: grad += row_scale * y_coefficient * y over all columns, a barrier, then
//      grad += row_scale * x_coefficient * x over the non-zeros.
// Thread 0 writes row_loss[r] = entry_scale * sum + row_scale * (1 - cos), as the cpu backend.
// The loss kind is a template parameter (one instantiation per kind and target, the switch in
// math::loss_term folded away); its LossParams travel by value as a kernel argument.
#include <type_traits>

#include "kernels/kernel_common.cuh"
#include "kernels/launch.hpp"
#include "math/loss_math.hpp"

namespace sparseae::kernels {

namespace {

constexpr int kLossThreads = detail::kBlockThreads;

// Where the targets come from: the CSR batch (zero-target pass, then the non-zeros) or, on the
// dense path, a dense batch read in the same pass as y.
struct CsrTarget {
  static constexpr bool kDense = false;
  const RowOffset* row_offsets;
  const ColIndex* col_indices;
  const float* values;
};

struct DenseTarget {
  static constexpr bool kDense = true;
  const float* data;
  std::int64_t ld;
};

template <LossKind kKind, typename Target>
__global__ void __launch_bounds__(kLossThreads)
    reconstruction_loss_kernel(const float* y, std::int64_t ld_y, std::int64_t rows,
                               std::int64_t cols, Target target, float* grad,
                               std::int64_t ld_grad, LossParams params, float entry_scale,
                               float row_scale, float* row_loss) {
  constexpr bool kCosine = kKind == LossKind::mse_cosine;
  constexpr bool kDense = Target::kDense;
  // r depends only on blockIdx, so every thread of a block runs the same iterations and reaches
  // the same barriers.
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* y_row = y + r * ld_y;
    float* grad_row = grad + r * ld_grad;

    // sums[0]: loss before normalisation; for mse_cosine also sums[1..3] = yy, xx, xy.
    double sums[kCosine ? 4 : 1] = {};
    for (std::int64_t c = threadIdx.x; c < cols; c += kLossThreads) {
      const float v = y_row[c];
      float x = 0.0f;
      if constexpr (kDense) x = target.data[r * target.ld + c];
      const math::LossTerm term = math::loss_term(kKind, v, x, params);
      sums[0] += term.value;
      grad_row[c] = entry_scale * term.grad;
      if constexpr (kCosine) {
        sums[1] += static_cast<double>(v) * v;
        sums[2] += static_cast<double>(x) * x;
        sums[3] += static_cast<double>(x) * v;
      }
    }
    if constexpr (!kDense) {
      const RowOffset begin = target.row_offsets[r];
      const RowOffset end = target.row_offsets[r + 1];
      __syncthreads();  // pass 1's writes to grad_row land before pass 2 overwrites some of them
      for (RowOffset k = begin + threadIdx.x; k < end; k += kLossThreads) {
        const std::int64_t c = target.col_indices[k];
        const float v = y_row[c];
        const float x = target.values[k];
        const math::LossTerm zero = math::loss_term(kKind, v, 0.0f, params);
        const math::LossTerm full = math::loss_term(kKind, v, x, params);
        sums[0] += static_cast<double>(full.value) - zero.value;
        grad_row[c] = entry_scale * full.grad;
        if constexpr (kCosine) {
          sums[2] += static_cast<double>(x) * x;
          sums[3] += static_cast<double>(x) * v;
        }
      }
    }
    // Also the barrier between pass 2's writes to grad_row and pass 4's read-modify-writes.
    detail::block_sum<kLossThreads>(sums);
    double loss = sums[0] * static_cast<double>(entry_scale);
    if constexpr (kCosine) {
      const math::CosineRow cosine = math::cosine_row(
          static_cast<float>(sums[1]), static_cast<float>(sums[2]), static_cast<float>(sums[3]));
      loss += static_cast<double>(row_scale) * cosine.loss;
      const float y_factor = row_scale * cosine.y_coefficient;
      const float x_factor = row_scale * cosine.x_coefficient;
      if constexpr (kDense) {
        for (std::int64_t c = threadIdx.x; c < cols; c += kLossThreads)
          grad_row[c] += y_factor * y_row[c] + x_factor * target.data[r * target.ld + c];
      } else {
        for (std::int64_t c = threadIdx.x; c < cols; c += kLossThreads)
          grad_row[c] += y_factor * y_row[c];
        __syncthreads();  // the thread that updates column c below may not be the one above
        for (RowOffset k = target.row_offsets[r] + threadIdx.x; k < target.row_offsets[r + 1];
             k += kLossThreads)
          grad_row[target.col_indices[k]] += x_factor * target.values[k];
      }
      // The next row's passes touch another row of grad; its block_sum's first barrier protects
      // the shared totals read above.
    }
    if (threadIdx.x == 0) row_loss[r] = static_cast<float>(loss);
  }
}

// The losses with kHeads > 1 outputs per entry (math::head_loss_term): y and grad hold
// rows x (kHeads * cols), head k of column c at column c + k * cols, against a rows x cols
// target. The same passes as above: pass 1 writes every head's zero-target gradient at every
// column, pass 2 (after a barrier) overwrites the heads of the non-zeros' columns with the full
// gradient, block_sum adds the per-thread sums in a fixed order.
template <LossKind kKind, int kHeads, typename Target>
__global__ void __launch_bounds__(kLossThreads)
    multi_head_loss_kernel(const float* y, std::int64_t ld_y, std::int64_t rows,
                           std::int64_t cols, Target target, float* grad, std::int64_t ld_grad,
                           float entry_scale, float* row_loss) {
  constexpr bool kDense = Target::kDense;
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* y_row = y + r * ld_y;
    float* grad_row = grad + r * ld_grad;
    double sums[1] = {0.0};
    float h[math::kMaxHeads] = {};
    for (std::int64_t c = threadIdx.x; c < cols; c += kLossThreads) {
      float x = 0.0f;
      if constexpr (kDense) x = target.data[r * target.ld + c];
#pragma unroll
      for (int k = 0; k < kHeads; ++k) h[k] = y_row[c + k * cols];
      const math::HeadTerm term = math::head_loss_term(kKind, h, x);
      sums[0] += term.value;
#pragma unroll
      for (int k = 0; k < kHeads; ++k) grad_row[c + k * cols] = entry_scale * term.grad[k];
    }
    if constexpr (!kDense) {
      const RowOffset begin = target.row_offsets[r];
      const RowOffset end = target.row_offsets[r + 1];
      __syncthreads();  // pass 1's writes to grad_row land before pass 2 overwrites some of them
      for (RowOffset i = begin + threadIdx.x; i < end; i += kLossThreads) {
        const std::int64_t c = target.col_indices[i];
#pragma unroll
        for (int k = 0; k < kHeads; ++k) h[k] = y_row[c + k * cols];
        const math::HeadTerm zero = math::head_loss_term(kKind, h, 0.0f);
        const math::HeadTerm full = math::head_loss_term(kKind, h, target.values[i]);
        sums[0] += full.value - zero.value;
#pragma unroll
        for (int k = 0; k < kHeads; ++k) grad_row[c + k * cols] = entry_scale * full.grad[k];
      }
    }
    detail::block_sum<kLossThreads>(sums);
    if (threadIdx.x == 0) row_loss[r] = static_cast<float>(sums[0] * static_cast<double>(entry_scale));
  }
}

template <LossKind kKind, int kHeads, typename Target>
void launch_multi_head_loss(ConstDenseView y, std::int64_t cols, Target target, DenseView grad,
                            float* row_loss, cudaStream_t stream) {
  const float entry_scale = 1.0f / static_cast<float>(std::max<std::int64_t>(1, y.rows * cols));
  multi_head_loss_kernel<kKind, kHeads>
      <<<detail::grid_dim(y.rows), kLossThreads, 0, stream>>>(
          y.data, y.ld, y.rows, cols, target, grad.data, grad.ld, entry_scale, row_loss);
  SAE_CUDA_CHECK(cudaGetLastError());
}

template <LossKind kKind, typename Target>
void launch_loss(ConstDenseView y, Target target, DenseView grad, const LossParams& params,
                 float entry_scale, float row_scale, float* row_loss, cudaStream_t stream) {
  reconstruction_loss_kernel<kKind><<<detail::grid_dim(y.rows), kLossThreads, 0, stream>>>(
      y.data, y.ld, y.rows, y.cols, target, grad.data, grad.ld, params, entry_scale, row_scale,
      row_loss);
  SAE_CUDA_CHECK(cudaGetLastError());
}

template <typename Target>
void launch_for_kind(LossKind kind, const LossParams& params, ConstDenseView y, Target target,
                     DenseView grad, float* row_loss, cudaStream_t stream) {
  // No rows: nothing to write. No columns: every row still gets its row_loss (0, or
  // row_scale * 1 for mse_cosine, whose all-zero rows have cosine loss 1), as on the cpu.
  if (y.rows == 0) return;
  // The cpu backend's normalisation, computed the same way.
  const float entry_scale = 1.0f / static_cast<float>(std::max<std::int64_t>(1, y.size()));
  const float row_scale =
      params.cosine_weight / static_cast<float>(std::max<std::int64_t>(1, y.rows));
  const auto launch = [&](auto kind_constant) {
    launch_loss<decltype(kind_constant)::value>(y, target, grad, params, entry_scale, row_scale,
                                                row_loss, stream);
  };
  // y holds output_heads(kind) outputs per target column (checked by the backend).
  const std::int64_t target_cols = y.cols / output_heads(kind);
  switch (kind) {
    case LossKind::nb:
      return launch_multi_head_loss<LossKind::nb, output_heads(LossKind::nb)>(
          y, target_cols, target, grad, row_loss, stream);
    case LossKind::zinb:
      return launch_multi_head_loss<LossKind::zinb, output_heads(LossKind::zinb)>(
          y, target_cols, target, grad, row_loss, stream);
    case LossKind::hurdle:
      return launch_multi_head_loss<LossKind::hurdle, output_heads(LossKind::hurdle)>(
          y, target_cols, target, grad, row_loss, stream);
    case LossKind::hurdle_nb:
      return launch_multi_head_loss<LossKind::hurdle_nb, output_heads(LossKind::hurdle_nb)>(
          y, target_cols, target, grad, row_loss, stream);
    case LossKind::mae:
      return launch(std::integral_constant<LossKind, LossKind::mae>{});
    case LossKind::bce:
      return launch(std::integral_constant<LossKind, LossKind::bce>{});
    case LossKind::mse_cosine:
      return launch(std::integral_constant<LossKind, LossKind::mse_cosine>{});
    case LossKind::poisson:
      return launch(std::integral_constant<LossKind, LossKind::poisson>{});
    case LossKind::weighted_mse:
      return launch(std::integral_constant<LossKind, LossKind::weighted_mse>{});
    case LossKind::huber:
      return launch(std::integral_constant<LossKind, LossKind::huber>{});
    case LossKind::mse:
    default:
      return launch(std::integral_constant<LossKind, LossKind::mse>{});
  }
}

}  // namespace

void launch_reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                CsrView target, DenseView grad, float* row_loss,
                                cudaStream_t stream) {
  launch_for_kind(kind, params, y,
                  CsrTarget{target.row_offsets, target.col_indices, target.values}, grad, row_loss,
                  stream);
}

void launch_reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                ConstDenseView target, DenseView grad, float* row_loss,
                                cudaStream_t stream) {
  launch_for_kind(kind, params, y, DenseTarget{target.data, target.ld}, grad, row_loss,
                  stream);
}

}  // namespace sparseae::kernels
