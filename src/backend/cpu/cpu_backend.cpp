#include "backend/cpu/cpu_backend.hpp"

#include <cblas.h>
#include <lapacke.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <numeric>
#include <vector>

#include "backend/backend_factories.hpp"
#include "backend/constant_dispatch.hpp"
#include "backend/op_checks.hpp"
#include "math/op_math.hpp"

namespace sparseae::detail {

namespace {

constexpr std::align_val_t kAlignment{64};

CBLAS_TRANSPOSE to_cblas(Transpose t) { return t == Transpose::yes ? CblasTrans : CblasNoTrans; }

// c = beta * c, where beta == 0 writes zeros without reading c.
void scale_in_place(DenseView c, float beta) {
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < c.rows; ++r) {
    float* row = &c(r, 0);
    for (std::int64_t j = 0; j < c.cols; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
  }
}

// Runs body(begin, end) on disjoint column ranges [begin, end) of width cols, one per thread.
template <typename Body>
void for_column_blocks(std::int64_t cols, Body body) {
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads();
    const std::int64_t t = omp_get_thread_num();
    const std::int64_t begin = cols * t / threads;
    const std::int64_t end = cols * (t + 1) / threads;
    if (begin < end) body(begin, end);
  }
}

template <typename Body>
void with_activation(Activation activation, Body body) {
  using A = Activation;
  with_constant<A::identity, A::relu, A::leaky_relu, A::sigmoid, A::tanh, A::softplus>(
      activation, "activation", body);
}

template <typename Body>
void with_optimizer(OptimizerKind kind, Body body) {
  using K = OptimizerKind;
  with_constant<K::sgd, K::adam, K::adamw>(kind, "optimizer", body);
}

// m with every element rounded as an operand of precision, contiguous in storage.
ConstDenseView rounded_copy(MatmulPrecision precision, ConstDenseView m,
                            std::vector<float>& storage) {
  storage.resize(static_cast<std::size_t>(m.size()));
  const DenseView copy{storage.data(), m.rows, m.cols};
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t j = 0; j < m.cols; ++j) copy(r, j) = math::round_operand(precision, m(r, j));
  return copy;
}

// column_sums adds kSumChunk columns at a time in double, in stack arrays (it allocates nothing).
constexpr std::int64_t kSumChunk = 256;
// The bias gradient sums each column in float over blocks of kRowBlock rows, which vectorizes,
// and those block sums in double.
constexpr std::int64_t kRowBlock = 32;

}  // namespace

// One thread pool, not two: gemm splits its rows over the OpenMP threads and each slab runs
// single-threaded. OpenBLAS's OpenMP build (the one CMake prefers) does that by itself inside a
// parallel region, and its openblas_set_num_threads would also cap OpenMP's own thread count.
// The pthread build keeps a pool of its own whose idle threads spin against OpenMP's (measured:
// 60% of a training step), so it is told to use one thread.
CpuBackend::CpuBackend() {
  constexpr int kOpenBlasPthreads = 1;
  if (openblas_get_parallel() == kOpenBlasPthreads) openblas_set_num_threads(1);
}

std::string CpuBackend::description() const {
  return "cpu: " + std::to_string(omp_get_max_threads()) + " OpenMP threads, OpenBLAS " +
         openblas_get_config();
}

void* CpuBackend::allocate_bytes(std::size_t bytes) {
  refuse_in_capture("allocate_bytes");
  return ::operator new(bytes, kAlignment);
}

void CpuBackend::free_bytes(void* pointer) noexcept { ::operator delete(pointer, kAlignment); }

void CpuBackend::upload_bytes(void* destination, const void* host_source, std::size_t bytes) {
  refuse_in_capture("upload_bytes");
  if (bytes != 0) std::memcpy(destination, host_source, bytes);
}

void CpuBackend::download_bytes(void* host_destination, const void* source, std::size_t bytes) {
  refuse_in_capture("download_bytes");
  if (bytes != 0) std::memcpy(host_destination, source, bytes);
}

void CpuBackend::copy_bytes(void* destination, const void* source, std::size_t bytes) {
  run([=] {
    if (bytes != 0) std::memmove(destination, source, bytes);
  });
}

void CpuBackend::set_matmul_precision(MatmulPrecision precision) {
  precision_ = precision;
  // Rounded copies can reach the size of a densified batch; fp32 products need none.
  if (precision == MatmulPrecision::fp32)
    for (std::vector<float>& operand : rounded_operands_) std::vector<float>().swap(operand);
}

void CpuBackend::begin_uploads(int slot) {
  refuse_in_capture("begin_uploads");
  check_upload_slot("begin_uploads", slot);
}

void CpuBackend::upload_async(int slot, void* destination, const void* pinned_source,
                              std::size_t bytes) {
  refuse_in_capture("upload_async");
  check_upload_slot("upload_async", slot);
  upload_bytes(destination, pinned_source, bytes);
}

void CpuBackend::use_uploads(int slot) {
  refuse_in_capture("use_uploads");
  check_upload_slot("use_uploads", slot);
}

void CpuBackend::fill_zero_bytes(void* destination, std::size_t bytes) {
  run([=] { std::memset(destination, 0, bytes); });
}

void CpuBackend::gemm(Transpose transpose_a, Transpose transpose_b, float alpha,
                      ConstDenseView a, ConstDenseView b, float beta, DenseView c) {
  check_gemm(transpose_a, transpose_b, a, b, c);
  const MatmulPrecision precision = precision_;
  run([=] {
    if (c.empty()) return;
    const std::int64_t inner = op_cols(transpose_a, a);
    if (inner == 0) {
      scale_in_place(c, beta);
      return;
    }
    const bool rounded = precision != MatmulPrecision::fp32;
    const ConstDenseView a_operand = rounded ? rounded_copy(precision, a, rounded_operands_[0]) : a;
    const ConstDenseView b_operand = rounded ? rounded_copy(precision, b, rounded_operands_[1]) : b;
    if (beta == 0.0f) scale_in_place(c, 0.0f);  // BLAS may read c even when beta is 0
      // Each thread multiplies a slab of c's rows: rows of a, or columns when a is transposed.
#pragma omp parallel
    {
      const std::int64_t threads = omp_get_num_threads();
      const std::int64_t t = omp_get_thread_num();
      const std::int64_t begin = c.rows * t / threads;
      const std::int64_t end = c.rows * (t + 1) / threads;
      if (begin < end) {
        const float* a_slab = transpose_a == Transpose::yes ? a_operand.data + begin
                                                            : a_operand.data + begin * a_operand.ld;
        cblas_sgemm(CblasRowMajor, to_cblas(transpose_a), to_cblas(transpose_b),
                    static_cast<blasint>(end - begin), static_cast<blasint>(c.cols),
                    static_cast<blasint>(inner), alpha, a_slab, static_cast<blasint>(a_operand.ld),
                    b_operand.data, static_cast<blasint>(b_operand.ld), beta, c.data + begin * c.ld,
                    static_cast<blasint>(c.ld));
      }
    }
  });
}

void CpuBackend::spmm(Transpose transpose_a, float alpha, CsrView a, ConstDenseView b, float beta,
                      DenseView c) {
  check_spmm(transpose_a, a, b, c);
  run([=] {
    if (c.empty()) return;
    if (transpose_a == Transpose::no) {
#pragma omp parallel for schedule(dynamic, 64)
      for (std::int64_t r = 0; r < a.rows; ++r) {
        float* out = &c(r, 0);
        for (std::int64_t j = 0; j < c.cols; ++j) out[j] = beta == 0.0f ? 0.0f : beta * out[j];
        for (RowOffset k = a.row_offsets[r]; k < a.row_offsets[r + 1]; ++k) {
          const float v = alpha * a.values[k];
          const float* in = &b(a.col_indices[k], 0);
          for (std::int64_t j = 0; j < c.cols; ++j) out[j] += v * in[j];
        }
      }
      return;
    }
    // aᵀ·b scatters row r of b into the rows of c named by row r's column indices. c's rows are
    // cut into a few ranges per thread; each range is one task, which owns those whole rows of c
    // and skips the entries of a outside them. The scatter needs no atomics, and each row of c
    // sums in the order of a's rows whatever the cut. (Threads owning halves of every row of c
    // instead ran the op 4x slower here; a fixed number of ranges keeps the skipped entries at a
    // few scans of the batch however wide the input.)
    scale_in_place(c, beta);
    const std::int64_t ranges = std::min<std::int64_t>(c.rows, 4 * omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t range = 0; range < ranges; ++range) {
      const ColIndex first = static_cast<ColIndex>(c.rows * range / ranges);
      const ColIndex end = static_cast<ColIndex>(c.rows * (range + 1) / ranges);
      for (std::int64_t r = 0; r < a.rows; ++r) {
        const float* in = &b(r, 0);
        for (RowOffset k = a.row_offsets[r]; k < a.row_offsets[r + 1]; ++k) {
          const ColIndex column = a.col_indices[k];
          if (column < first || column >= end) continue;
          const float v = alpha * a.values[k];
          float* out = &c(column, 0);
          for (std::int64_t j = 0; j < c.cols; ++j) out[j] += v * in[j];
        }
      }
    }
  });
}

void CpuBackend::bias_activation_forward(Activation activation, ConstDenseView z,
                                         const float* bias, DenseView y) {
  check_bias_activation("bias_activation_forward", z, y);
  run([=] {
    with_activation(activation, [&](auto act) {
#pragma omp parallel for schedule(static)
      for (std::int64_t r = 0; r < y.rows; ++r) {
        float* out = y.row(r);
        const float* in = z.data != nullptr ? z.row(r) : nullptr;
        if (in != nullptr && bias != nullptr)
          for (std::int64_t j = 0; j < y.cols; ++j) out[j] = math::activate(act, in[j] + bias[j]);
        else if (in != nullptr)
          for (std::int64_t j = 0; j < y.cols; ++j) out[j] = math::activate(act, in[j]);
        else if (bias != nullptr)
          for (std::int64_t j = 0; j < y.cols; ++j) out[j] = math::activate(act, bias[j]);
        else
          std::fill(out, out + y.cols, math::activate(act, 0.0f));
      }
    });
  });
}

void CpuBackend::activation_backward(Activation activation, ConstDenseView y, ConstDenseView dy,
                                     DenseView dz, float* bias_grad) {
  check_same_shape("activation_backward", "y", y, "dy", dy);
  check_same_shape("activation_backward", "y", y, "dz", dz);
  run([=] {
    const std::int64_t blocks = (y.rows + kRowBlock - 1) / kRowBlock;
    if (bias_grad != nullptr) block_column_sums_.resize(static_cast<std::size_t>(blocks * y.cols));
    float* const block_sums = block_column_sums_.data();
    with_activation(activation, [&](auto act) {
    // Threads take whole rows: two threads writing the two halves of every row (a split by
    // columns) ran 4x slower here than one thread alone.
#pragma omp parallel
      {
#pragma omp for schedule(static)
        for (std::int64_t block = 0; block < blocks; ++block) {
          float* partial = bias_grad != nullptr ? block_sums + block * y.cols : nullptr;
          if (partial != nullptr) std::fill(partial, partial + y.cols, 0.0f);
          for (std::int64_t r = block * kRowBlock; r < std::min(y.rows, (block + 1) * kRowBlock);
               ++r) {
            const float* y_row = y.row(r);
            const float* dy_row = dy.row(r);
            float* dz_row = dz.row(r);
            // dz may be dy (in place); element j reads and writes only index j.
            if (partial != nullptr) {
#pragma omp simd
              for (std::int64_t j = 0; j < y.cols; ++j) {
                const float g = dy_row[j] * math::derivative_from_output(act, y_row[j]);
                dz_row[j] = g;
                partial[j] += g;
              }
            } else {
#pragma omp simd
              for (std::int64_t j = 0; j < y.cols; ++j)
                dz_row[j] = dy_row[j] * math::derivative_from_output(act, y_row[j]);
            }
          }
        }
        // The bias gradient: each column's block sums in block order, in double, whatever the
        // thread count.
        if (bias_grad != nullptr) {
#pragma omp for schedule(static)
          for (std::int64_t j = 0; j < y.cols; ++j) {
            double sum = 0.0;
            for (std::int64_t block = 0; block < blocks; ++block)
              sum += block_sums[block * y.cols + j];
            bias_grad[j] = static_cast<float>(sum);
          }
        }
      }
    });
  });
}

void CpuBackend::transform_values(InputTransform transform, const float* in, std::int64_t n,
                                  float* out) {
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) out[i] = math::transform_input(transform, in[i]);
  });
}

void CpuBackend::row_log_size_factors(CsrView batch, float log_reference, float* out) {
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < batch.rows; ++r) {
      double total = 0.0;
      for (RowOffset k = batch.row_offsets[r]; k < batch.row_offsets[r + 1]; ++k)
        total += batch.values[k];
      out[r] = math::log_size_factor(total, log_reference);
    }
  });
}

void CpuBackend::row_log_size_factors(ConstDenseView batch, float log_reference, float* out) {
  check_view("row_log_size_factors", "batch", batch);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < batch.rows; ++r) {
      double total = 0.0;
      for (std::int64_t c = 0; c < batch.cols; ++c) total += batch(r, c);
      out[r] = math::log_size_factor(total, log_reference);
    }
  });
}

void CpuBackend::add_row_offsets(DenseView m, const float* offsets) {
  check_view("add_row_offsets", "m", m);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < m.rows; ++r)
      for (std::int64_t c = 0; c < m.cols; ++c) m(r, c) += offsets[r];
  });
}

void CpuBackend::column_sums(ConstDenseView x, float scale, float* out) {
  check_view("column_sums", "x", x);
  run([=] {
    for_column_blocks(x.cols, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t chunk = begin; chunk < end; chunk += kSumChunk) {
        const std::int64_t width = std::min(kSumChunk, end - chunk);
        double sums[kSumChunk] = {};
        for (std::int64_t r = 0; r < x.rows; ++r) {
          const float* row = x.row(r) + chunk;
          for (std::int64_t j = 0; j < width; ++j) sums[j] += row[j];
        }
        for (std::int64_t j = 0; j < width; ++j)
          out[chunk + j] = static_cast<float>(scale * sums[j]);
      }
    });
  });
}

void CpuBackend::csr_to_dense(CsrView a, DenseView out) {
  check_csr_to_dense(a, out);
  run([=] {
#pragma omp parallel for schedule(dynamic, 64)
    for (std::int64_t r = 0; r < a.rows; ++r) {
      float* row = &out(r, 0);
      std::fill(row, row + out.cols, 0.0f);
      for (RowOffset k = a.row_offsets[r]; k < a.row_offsets[r + 1]; ++k)
        row[a.col_indices[k]] += a.values[k];
    }
  });
}

void CpuBackend::accumulate(const float* x, std::int64_t n, double* sum) {
  check_accumulate(n);
  run([=] {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) sum[i] += static_cast<double>(x[i]);
  });
}

void CpuBackend::symmetric_eigen(std::int64_t n, double* a, double* eigenvalues) {
  refuse_in_capture("symmetric_eigen");
  check_symmetric_eigen(n);
  if (n == 0) return;
  require(n <= std::numeric_limits<lapack_int>::max(),
          "symmetric_eigen: order " + std::to_string(n) + " exceeds LAPACK's index range");
  // A symmetric row-major matrix is its own column-major transpose, so LAPACK's lower triangle is
  // our upper one, and its eigenvector columns are our rows.
  const auto order = static_cast<lapack_int>(n);
  const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', order, a, order, eigenvalues);
  require(info == 0, eigen_failure_message(info, n));
}

void CpuBackend::random_permutation(std::uint64_t seed, std::int64_t n, std::int64_t* out) {
  require(n >= 0, "random_permutation: negative length");
  run([=] {
    std::vector<std::uint64_t> keys(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i)
      keys[i] = math::permutation_key(seed, static_cast<std::uint64_t>(i));
    std::iota(out, out + n, std::int64_t{0});
    std::sort(out, out + n, [&](std::int64_t x, std::int64_t y) {
      return keys[x] != keys[y] ? keys[x] < keys[y] : x < y;
    });
  });
}

std::int64_t CpuBackend::gather_rows(CsrView source, const std::int64_t* row_ids,
                                     std::int64_t count, const CsrOutput& out) {
  refuse_in_capture("gather_rows without a known nnz");
  check_gather(source, count, out);
  out.row_offsets[0] = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t row = row_ids[i];
    require(row >= 0 && row < source.rows, gather_bad_row_message(row, source.rows));
    out.row_offsets[i + 1] =
        out.row_offsets[i] + source.row_offsets[row + 1] - source.row_offsets[row];
  }
  const std::int64_t nnz = out.row_offsets[count];
  require(nnz <= out.nnz_capacity, gather_overflow_message(nnz, out.nnz_capacity));
#pragma omp parallel for schedule(dynamic, 64)
  for (std::int64_t i = 0; i < count; ++i) {
    const RowOffset begin = source.row_offsets[row_ids[i]];
    const RowOffset length = out.row_offsets[i + 1] - out.row_offsets[i];
    std::copy_n(source.col_indices + begin, length, out.col_indices + out.row_offsets[i]);
    std::copy_n(source.values + begin, length, out.values + out.row_offsets[i]);
  }
  return nnz;
}

void CpuBackend::batch_nonzeros(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                                std::int64_t batch_rows, std::int64_t* nnz_per_batch) {
  refuse_in_capture("batch_nonzeros");
  check_batch_nonzeros(count, batch_rows);
  for (std::int64_t first = 0; first < count; first += batch_rows) {
    std::int64_t nnz = 0;
    for (std::int64_t i = first; i < std::min(count, first + batch_rows); ++i) {
      const std::int64_t row = row_ids[i];
      require(row >= 0 && row < source.rows, gather_bad_row_message(row, source.rows));
      nnz += source.row_offsets[row + 1] - source.row_offsets[row];
    }
    nnz_per_batch[first / batch_rows] = nnz;
  }
}

void CpuBackend::gather_rows(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                             std::int64_t max_nnz, const CsrOutput& out) {
  require(max_nnz <= out.nnz_capacity, gather_overflow_message(max_nnz, out.nnz_capacity));
  run([=] {
    const std::int64_t gathered = gather_rows(source, row_ids, count, out);
    require(gathered <= max_nnz, "gather_rows: the batch has " + std::to_string(gathered) +
                                     " non-zeros, more than the " + std::to_string(max_nnz) +
                                     " given");
  });
}

void CpuBackend::gather_dense_rows(ConstDenseView source, const std::int64_t* row_ids,
                                   std::int64_t count, DenseView out) {
  check_dense_gather(source, count, out);
  run([=] {
    for (std::int64_t i = 0; i < count; ++i)
      require(row_ids[i] >= 0 && row_ids[i] < source.rows,
              gather_bad_row_message(row_ids[i], source.rows));
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < count; ++i)
      std::copy_n(&source(row_ids[i], 0), source.cols, &out(i, 0));
  });
}

void CpuBackend::optimizer_step(const OptimizerConfig& config, std::int64_t step, std::int64_t n,
                                float* params, const float* grads, float* first_moment,
                                float* second_moment, const float* grad_sum_squares,
                                const StepScalars* step_scalars) {
  check_optimizer(config, step, second_moment, grad_sum_squares);
  run([=] {
    math::OptimizerScalars scalars = math::make_optimizer_scalars(config, step);
    if (step_scalars != nullptr) scalars = math::with_step_scalars(scalars, *step_scalars);
    const bool reads_norm = config.max_grad_norm > 0.0f || config.skip_nonfinite;
    const math::GradientGate gate = math::gradient_gate(config.max_grad_norm, config.skip_nonfinite,
                                                        reads_norm ? *grad_sum_squares : 0.0f);
    if (gate.skip) return;
    const float grad_scale = gate.scale;
    with_optimizer(config.kind, [&](auto kind) {
      // kind is a compile-time constant: the update's switch folds away and the loop vectorizes.
      if (second_moment != nullptr) {
#pragma omp parallel for simd schedule(static)
        for (std::int64_t i = 0; i < n; ++i)
          math::optimizer_update(kind, scalars, params[i], grad_scale * grads[i], first_moment[i],
                                 second_moment[i]);
      } else {
#pragma omp parallel for schedule(static)
        for (std::int64_t i = 0; i < n; ++i) {
          float unused_second = 0.0f;
          math::optimizer_update(kind, scalars, params[i], grad_scale * grads[i], first_moment[i],
                                 unused_second);
        }
      }
    });
  });
}

namespace {

struct RecordedOps final : CapturedOps {
  std::vector<std::function<void()>> calls;
};

}  // namespace

void CpuBackend::refuse_in_capture(const char* op) const {
  if (recording_ != nullptr) throw Error(capture_refusal_message("cpu", op));
}

std::unique_ptr<CapturedOps> CpuBackend::capture(const std::function<void()>& ops) {
  refuse_in_capture("capture");
  auto recorded = std::make_unique<RecordedOps>();
  recording_ = &recorded->calls;
  try {
    ops();
  } catch (...) {
    recording_ = nullptr;
    throw;
  }
  recording_ = nullptr;
  return recorded;
}

void CpuBackend::replay(const CapturedOps& ops) {
  refuse_in_capture("replay");
  for (const std::function<void()>& call : static_cast<const RecordedOps&>(ops).calls) call();
}

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace sparseae::detail
