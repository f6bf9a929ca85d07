// The cpu backend: memory, copies and uploads, capture and replay, and the ops that OpenBLAS and
// LAPACK run (gemm, symmetric_eigen). Every other op is in the file named like its kernels/*.cu.
#include "backend/cpu/cpu_backend.hpp"

#include <cblas.h>
#include <lapacke.h>
#include <omp.h>

#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <vector>

#include "backend/backend_factories.hpp"
#include "backend/cpu/scale.hpp"
#include "backend/op_checks.hpp"
#include "math/op_math.hpp"

namespace sparseae::detail {

namespace {

constexpr std::align_val_t kAlignment{64};

CBLAS_TRANSPOSE to_cblas(Transpose t) { return t == Transpose::yes ? CblasTrans : CblasNoTrans; }

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