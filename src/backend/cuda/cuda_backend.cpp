#include "backend/cuda/cuda_backend.hpp"

#include <library_types.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend_factories.hpp"
#include "backend/op_checks.hpp"
#include "kernels/cuda_check.hpp"
#include "kernels/launch.hpp"
#include "math/op_math.hpp"
#include "sparseae/error.hpp"

namespace sparseae::detail {

namespace {

constexpr std::int64_t kMaxInt32 = std::numeric_limits<std::int32_t>::max();

// 13000 -> "13.0": the encoding of cudaRuntimeGetVersion and cudaDriverGetVersion.
std::string cuda_version_text(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

std::string device_summary(const cudaDeviceProp& properties) {
  char memory[32];
  std::snprintf(memory, sizeof(memory), "%.1f GiB",
                static_cast<double>(properties.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return std::string(properties.name) + " (sm_" + std::to_string(properties.major) +
         std::to_string(properties.minor) + ", " + std::to_string(properties.multiProcessorCount) +
         " SMs, " + memory + ")";
}

template <typename GetProperty>
std::string library_version(GetProperty get_property) {
  int major = 0;
  int minor = 0;
  int patch = 0;
  if (get_property(MAJOR_VERSION, &major) != 0 || get_property(MINOR_VERSION, &minor) != 0 ||
      get_property(PATCH_LEVEL, &patch) != 0)
    return "unknown";
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

std::string runtime_and_driver_versions() {
  int runtime = 0;
  int driver = 0;
  const bool have_runtime = cudaRuntimeGetVersion(&runtime) == cudaSuccess;
  const bool have_driver = cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0;
  static_cast<void>(cudaGetLastError());  // a failed query is not a launch error
  return "runtime " + (have_runtime ? cuda_version_text(runtime) : std::string("unknown")) +
         ", driver " + (have_driver ? cuda_version_text(driver) : std::string("none"));
}

cublasOperation_t to_cublas(Transpose t) { return t == Transpose::yes ? CUBLAS_OP_T : CUBLAS_OP_N; }

// a with the int32 copy of its row offsets. The casts only satisfy the mutable descriptor
// (CsrDescriptor): cuSPARSE's SpMM reads a.
CsrDescriptor make_csr_descriptor(const CsrView& a, std::int32_t* row_offsets) {
  cusparseSpMatDescr_t descriptor = nullptr;
  SAE_CUSPARSE_CHECK(cusparseCreateCsr(&descriptor, a.rows, a.cols, a.nnz, row_offsets,
                                       const_cast<ColIndex*>(a.col_indices),
                                       const_cast<float*>(a.values), CUSPARSE_INDEX_32I,
                                       CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F));
  return CsrDescriptor(descriptor);
}

void set_csr_pointers(const CsrDescriptor& descriptor, const CsrView& a,
                      std::int32_t* row_offsets) {
  SAE_CUSPARSE_CHECK(cusparseCsrSetPointers(descriptor.get(), row_offsets,
                                            const_cast<ColIndex*>(a.col_indices),
                                            const_cast<float*>(a.values)));
}

// The cast as in make_csr_descriptor: cuSPARSE writes only through the output's descriptor.
DenseDescriptor make_dense_descriptor(ConstDenseView m) {
  cusparseDnMatDescr_t descriptor = nullptr;
  SAE_CUSPARSE_CHECK(cusparseCreateDnMat(&descriptor, m.rows, m.cols, m.ld,
                                         const_cast<float*>(m.data), CUDA_R_32F,
                                         CUSPARSE_ORDER_ROW));
  return DenseDescriptor(descriptor);
}

void set_dense_values(const DenseDescriptor& descriptor, const float* values) {
  SAE_CUSPARSE_CHECK(cusparseDnMatSetValues(descriptor.get(), const_cast<float*>(values)));
}

using LtPreference = UniqueHandle<cublasLtMatmulPreference_t, &cublasLtMatmulPreferenceDestroy>;

// A row-major rows x cols fp32 matrix as cublasLt sees it: column-major cols x rows.
LtLayout lt_layout_of_row_major(std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  cublasLtMatrixLayout_t layout = nullptr;
  SAE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, CUDA_R_32F, static_cast<std::uint64_t>(cols),
                                              static_cast<std::uint64_t>(rows), ld));
  return LtLayout(layout);
}

template <typename Value>
void set_lt_attribute(cublasLtMatmulDesc_t descriptor, cublasLtMatmulDescAttributes_t attribute,
                      const Value& value) {
  SAE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(descriptor, attribute, &value, sizeof value));
}

// The largest power of two (at most 256) that divides the address: what cublasLt may assume.
std::uint32_t pointer_alignment(const void* pointer) {
  const auto address = reinterpret_cast<std::uintptr_t>(pointer);
  std::uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

cublasComputeType_t lt_compute_type(MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::tf32:
      return CUBLAS_COMPUTE_32F_FAST_TF32;
    case MatmulPrecision::bf16:
      return CUBLAS_COMPUTE_32F_FAST_16BF;
    case MatmulPrecision::fp32:
    default:
      return CUBLAS_COMPUTE_32F;
  }
}

}  // namespace

DeviceMemory allocate_device(std::size_t bytes) {
  void* pointer = nullptr;
  SAE_CUDA_CHECK(cudaMalloc(&pointer, bytes));
  return DeviceMemory(pointer);
}

void* Workspace::reserve(std::size_t bytes, cudaStream_t stream) {
  if (bytes <= capacity_) return memory_.get();
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  SAE_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone)
    throw Error(
        "cuda backend: scratch memory would grow inside a captured step (run the ops once "
        "before capturing them)");
  SAE_CUDA_CHECK(cudaStreamSynchronize(stream));
  memory_.reset();  // before allocating the larger block, so the two never coexist
  capacity_ = 0;
  // Rounded up to cudaMalloc's own 2 MiB granularity: a slightly larger request later costs
  // nothing.
  constexpr std::size_t kGranularity = std::size_t{2} << 20;
  const std::size_t capacity = (bytes + kGranularity - 1) / kGranularity * kGranularity;
  memory_ = allocate_device(capacity);
  capacity_ = capacity;
  ++generation_;
  return memory_.get();
}

CudaBackend::CudaBackend() {
  int device = 0;
  SAE_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp properties{};
  SAE_CUDA_CHECK(cudaGetDeviceProperties(&properties, device));

  cudaStream_t stream = nullptr;
  SAE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_ = CudaStream(stream);

  // cuBLAS gets a workspace of its own so that it never allocates during a step (which a CUDA
  // graph capture would forbid); NVIDIA recommends 32 MiB from Hopper on, 4 MiB before.
  const std::size_t cublas_workspace_bytes = std::size_t{properties.major >= 9 ? 32u : 4u} << 20;
  cublas_workspace_ = allocate_device(cublas_workspace_bytes);
  cublas_workspace_bytes_ = cublas_workspace_bytes;
  cublasHandle_t cublas = nullptr;
  SAE_CUBLAS_CHECK(cublasCreate(&cublas));
  cublas_ = CublasHandle(cublas);
  SAE_CUBLAS_CHECK(cublasSetStream(cublas, stream));
  // After cublasSetStream, which resets the handle to cuBLAS's internal workspace pool.
  SAE_CUBLAS_CHECK(cublasSetWorkspace(cublas, cublas_workspace_.get(), cublas_workspace_bytes));
  // Full fp32: the default math mode never trades mantissa bits (no TF32), so sgemm stays
  // comparable with the cpu backend.
  SAE_CUBLAS_CHECK(cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));

  cublasLtHandle_t cublas_lt = nullptr;
  SAE_CUBLAS_CHECK(cublasLtCreate(&cublas_lt));
  cublas_lt_ = CublasLtHandle(cublas_lt);

  cusparseHandle_t cusparse = nullptr;
  SAE_CUSPARSE_CHECK(cusparseCreate(&cusparse));
  cusparse_ = CusparseHandle(cusparse);
  SAE_CUSPARSE_CHECK(cusparseSetStream(cusparse, stream));

  gather_status_ = allocate_device(sizeof(kernels::GatherStatus));
  void* pinned = nullptr;
  SAE_CUDA_CHECK(cudaMallocHost(&pinned, sizeof(kernels::GatherStatus)));
  gather_status_host_ = PinnedMemory(pinned);

  cudaStream_t copy_stream = nullptr;
  SAE_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
  copy_stream_ = CudaStream(copy_stream);
  const auto make_event = [] {
    cudaEvent_t event = nullptr;
    SAE_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    return CudaEvent(event);
  };
  compute_mark_ = make_event();
  for (CudaEvent& event : uploaded_) event = make_event();

  description_ = "cuda: device " + std::to_string(device) + " " + device_summary(properties) +
                 "; " + runtime_and_driver_versions() + ", cuBLAS " +
                 library_version(cublasGetProperty) + ", cuSPARSE " +
                 library_version(cusparseGetProperty);
}

CudaBackend::~CudaBackend() {
  // The members free memory that queued work may still read or write.
  static_cast<void>(cudaStreamSynchronize(copy_stream_.get()));
  static_cast<void>(cudaStreamSynchronize(stream()));
}

// ---- memory ----

void* CudaBackend::allocate_bytes(std::size_t bytes) {
  refuse_in_capture("allocate_bytes");
  if (bytes == 0) return nullptr;
  void* pointer = nullptr;
  const cudaError_t status = cudaMalloc(&pointer, bytes);
  if (status == cudaErrorMemoryAllocation) {
    static_cast<void>(cudaGetLastError());  // clears the error so later calls do not see it
    std::size_t free_bytes = 0, total_bytes = 0;
    static_cast<void>(cudaMemGetInfo(&free_bytes, &total_bytes));
    constexpr double kMiB = 1024.0 * 1024.0;
    char message[160];
    std::snprintf(message, sizeof message,
                  "cuda: out of device memory: asked for %.1f MiB with %.1f MiB free of %.1f MiB",
                  static_cast<double>(bytes) / kMiB, static_cast<double>(free_bytes) / kMiB,
                  static_cast<double>(total_bytes) / kMiB);
    throw OutOfDeviceMemory(message);
  }
  SAE_CUDA_CHECK(status);
  return pointer;
}

void CudaBackend::free_bytes(void* pointer) noexcept {
  // cudaFree waits for the device, so queued work on the buffer finishes first.
  if (pointer != nullptr) static_cast<void>(cudaFree(pointer));
}

void CudaBackend::upload_bytes(void* destination, const void* host_source, std::size_t bytes) {
  refuse_in_capture("upload_bytes");
  if (bytes == 0) return;
  SAE_CUDA_CHECK(
      cudaMemcpyAsync(destination, host_source, bytes, cudaMemcpyHostToDevice, stream()));
  // The caller may free or reuse host_source as soon as this returns.
  SAE_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void CudaBackend::download_bytes(void* host_destination, const void* source, std::size_t bytes) {
  refuse_in_capture("download_bytes");
  if (bytes == 0) return;
  SAE_CUDA_CHECK(
      cudaMemcpyAsync(host_destination, source, bytes, cudaMemcpyDeviceToHost, stream()));
  SAE_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void CudaBackend::copy_bytes(void* destination, const void* source, std::size_t bytes) {
  if (bytes == 0 || destination == source) return;
  const auto to = reinterpret_cast<std::uintptr_t>(destination);
  const auto from = reinterpret_cast<std::uintptr_t>(source);
  if (to < from + bytes && from < to + bytes) {
    // cudaMemcpy does not allow overlap; the cpu backend's memmove does. Go through scratch.
    void* scratch = workspace_.reserve(bytes, stream());
    SAE_CUDA_CHECK(cudaMemcpyAsync(scratch, source, bytes, cudaMemcpyDeviceToDevice, stream()));
    SAE_CUDA_CHECK(
        cudaMemcpyAsync(destination, scratch, bytes, cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  SAE_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToDevice, stream()));
}

void CudaBackend::fill_zero_bytes(void* destination, std::size_t bytes) {
  if (bytes == 0) return;
  SAE_CUDA_CHECK(cudaMemsetAsync(destination, 0, bytes, stream()));
}

void CudaBackend::synchronize() {
  refuse_in_capture("synchronize");
  SAE_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

std::size_t CudaBackend::device_memory_used() const {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  SAE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return total_bytes - free_bytes;
}

std::size_t CudaBackend::device_memory_free() const {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  SAE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes;
}

void CudaBackend::set_matmul_precision(MatmulPrecision precision) {
  // bf16 is a compute type of cublasGemmEx (gemm below), not a math mode.
  SAE_CUBLAS_CHECK(cublasSetMathMode(cublas_.get(), precision == MatmulPrecision::tf32
                                                        ? CUBLAS_TF32_TENSOR_OP_MATH
                                                        : CUBLAS_DEFAULT_MATH));
  precision_ = precision;
}

void* CudaBackend::allocate_pinned_bytes(std::size_t bytes) {
  refuse_in_capture("allocate_pinned_bytes");
  if (bytes == 0) return nullptr;
  void* pointer = nullptr;
  SAE_CUDA_CHECK(cudaMallocHost(&pointer, bytes));
  return pointer;
}

void CudaBackend::free_pinned_bytes(void* pointer) noexcept {
  if (pointer == nullptr) return;
  // cudaFreeHost does not wait for copies still reading the memory.
  static_cast<void>(cudaStreamSynchronize(copy_stream_.get()));
  static_cast<void>(cudaFreeHost(pointer));
}

void CudaBackend::begin_uploads(int slot) {
  refuse_in_capture("begin_uploads");
  check_upload_slot("begin_uploads", slot);
  SAE_CUDA_CHECK(cudaEventSynchronize(uploaded_[slot].get()));
  SAE_CUDA_CHECK(cudaEventRecord(compute_mark_.get(), stream()));
  SAE_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_.get(), compute_mark_.get(), 0));
}

void CudaBackend::upload_async(int slot, void* destination, const void* pinned_source,
                               std::size_t bytes) {
  refuse_in_capture("upload_async");
  check_upload_slot("upload_async", slot);
  if (bytes == 0) return;
  SAE_CUDA_CHECK(cudaMemcpyAsync(destination, pinned_source, bytes, cudaMemcpyHostToDevice,
                                 copy_stream_.get()));
}

void CudaBackend::use_uploads(int slot) {
  refuse_in_capture("use_uploads");
  check_upload_slot("use_uploads", slot);
  SAE_CUDA_CHECK(cudaEventRecord(uploaded_[slot].get(), copy_stream_.get()));
  SAE_CUDA_CHECK(cudaStreamWaitEvent(stream(), uploaded_[slot].get(), 0));
}

// ---- dense and sparse products ----

void CudaBackend::gemm(Transpose transpose_a, Transpose transpose_b, float alpha, ConstDenseView a,
                       ConstDenseView b, float beta, DenseView c) {
  check_gemm(transpose_a, transpose_b, a, b, c);
  if (c.empty()) return;
  const std::int64_t inner = op_cols(transpose_a, a);
  if (inner == 0) {
    kernels::launch_scale(c, beta, stream());
    return;
  }
  // Row-major c = op(a) op(b) is column-major cᵀ = op(b)ᵀ op(a)ᵀ, and a row-major matrix read as
  // column-major is its transpose: so pass b before a with the same op flags and swapped m, n.
  // With beta == 0 cuBLAS does not read c.
  if (precision_ == MatmulPrecision::bf16) {
    // fp32 in memory, the operands rounded to bfloat16 on the tensor cores, fp32 accumulation.
    SAE_CUBLAS_CHECK(cublasGemmEx_64(cublas_.get(), to_cublas(transpose_b), to_cublas(transpose_a),
                                     c.cols, c.rows, inner, &alpha, b.data, CUDA_R_32F, b.ld,
                                     a.data, CUDA_R_32F, a.ld, &beta, c.data, CUDA_R_32F, c.ld,
                                     CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT));
    return;
  }
  SAE_CUBLAS_CHECK(cublasSgemm_64(cublas_.get(), to_cublas(transpose_b), to_cublas(transpose_a),
                                  c.cols, c.rows, inner, &alpha, b.data, b.ld, a.data, a.ld, &beta,
                                  c.data, c.ld));
}

void CudaBackend::gemm_bias_activation(Activation activation, Transpose transpose_a,
                                       Transpose transpose_b, ConstDenseView a, ConstDenseView b,
                                       const float* bias, DenseView y) {
  const bool in_epilogue = activation == Activation::identity || activation == Activation::relu;
  const std::int64_t inner = op_cols(transpose_a, a);
  // An operand with one row or column makes cublasLt's heuristic answer
  // CUBLAS_STATUS_INVALID_VALUE (PyTorch's addmm, aten/src/ATen/native/cuda/Blas.cpp, keeps such
  // shapes off cublasLt for that reason): a one-column layer, a one-row batch or an inner
  // dimension of 1 takes the separate path, as do empty shapes.
  const bool any_dimension_one = y.rows == 1 || y.cols == 1 || inner == 1;
  if (!in_epilogue || y.empty() || inner == 0 || any_dimension_one) {
    Backend::gemm_bias_activation(activation, transpose_a, transpose_b, a, b, bias, y);
    return;
  }
  check_gemm(transpose_a, transpose_b, a, b, y);
  const bool relu = activation == Activation::relu;
  const cublasLtEpilogue_t epilogue =
      bias != nullptr ? (relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                      : (relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT);
  const std::uint32_t align_b = pointer_alignment(b.data);
  const std::uint32_t align_a = pointer_alignment(a.data);
  const std::uint32_t align_y = pointer_alignment(y.data);
  const LtPlanKey key{static_cast<std::int64_t>(transpose_a),
                      static_cast<std::int64_t>(transpose_b),
                      a.rows,
                      a.cols,
                      a.ld,
                      b.rows,
                      b.cols,
                      b.ld,
                      y.ld,
                      static_cast<std::int64_t>(epilogue),
                      static_cast<std::int64_t>(precision_),
                      align_a,
                      align_b,
                      align_y,
                      bias != nullptr ? pointer_alignment(bias) : 0};
  auto found = lt_plans_.find(key);
  if (found == lt_plans_.end()) {
    LtPlan plan;
    cublasLtMatmulDesc_t raw_descriptor = nullptr;
    SAE_CUBLAS_CHECK(
        cublasLtMatmulDescCreate(&raw_descriptor, lt_compute_type(precision_), CUDA_R_32F));
    plan.descriptor = LtMatmulDescriptor(raw_descriptor);
    // As in gemm: row-major y = op(a) op(b) is column-major yᵀ = op(b)ᵀ op(a)ᵀ, so cublasLt's A
    // is b and its B is a; the bias runs along yᵀ's rows, which are y's columns.
    set_lt_attribute(plan.descriptor.get(), CUBLASLT_MATMUL_DESC_TRANSA, to_cublas(transpose_b));
    set_lt_attribute(plan.descriptor.get(), CUBLASLT_MATMUL_DESC_TRANSB, to_cublas(transpose_a));
    set_lt_attribute(plan.descriptor.get(), CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
    // The heuristic reads the bias pointer's alignment; each call sets its own pointer below.
    if (bias != nullptr)
      set_lt_attribute(plan.descriptor.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                       static_cast<const void*>(bias));
    plan.layout_b = lt_layout_of_row_major(b.rows, b.cols, b.ld);
    plan.layout_a = lt_layout_of_row_major(a.rows, a.cols, a.ld);
    plan.layout_y = lt_layout_of_row_major(y.rows, y.cols, y.ld);
    cublasLtMatmulPreference_t raw_preference = nullptr;
    SAE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&raw_preference));
    const LtPreference preference(raw_preference);
    const auto set_preference = [&](cublasLtMatmulPreferenceAttributes_t attribute,
                                    const auto& value) {
      SAE_CUBLAS_CHECK(
          cublasLtMatmulPreferenceSetAttribute(preference.get(), attribute, &value, sizeof value));
    };
    set_preference(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                   static_cast<std::uint64_t>(cublas_workspace_bytes_));
    set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_b);
    set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_a);
    set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_y);
    set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_y);
    cublasLtMatmulHeuristicResult_t result{};
    int results = 0;
    // A refusal (an error status or no algorithm) is no failure of the op: the shape falls back,
    // now and in every later call (the plan remembers it).
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
        cublas_lt_.get(), plan.descriptor.get(), plan.layout_b.get(), plan.layout_a.get(),
        plan.layout_y.get(), plan.layout_y.get(), preference.get(), 1, &result, &results);
    plan.has_algorithm = status == CUBLAS_STATUS_SUCCESS && results > 0;
    plan.algorithm = result.algo;
    found = lt_plans_.emplace(key, std::move(plan)).first;
  }
  const LtPlan& plan = found->second;
  if (!plan.has_algorithm) {
    Backend::gemm_bias_activation(activation, transpose_a, transpose_b, a, b, bias, y);
    return;
  }
  if (bias != nullptr)
    set_lt_attribute(plan.descriptor.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                     static_cast<const void*>(bias));
  const float alpha = 1.0f;
  const float beta = 0.0f;
  SAE_CUBLAS_CHECK(cublasLtMatmul(cublas_lt_.get(), plan.descriptor.get(), &alpha, b.data,
                                  plan.layout_b.get(), a.data, plan.layout_a.get(), &beta, y.data,
                                  plan.layout_y.get(), y.data, plan.layout_y.get(), &plan.algorithm,
                                  cublas_workspace_.get(), cublas_workspace_bytes_, stream()));
}

void CudaBackend::spmm(Transpose transpose_a, float alpha, CsrView a, ConstDenseView b, float beta,
                       DenseView c) {
  check_spmm(transpose_a, a, b, c);
  if (c.empty()) return;
  if (capturing_) {
    if (transpose_a == Transpose::yes)
      kernels::launch_csr_transpose_times_dense(alpha, a, b, beta, c, stream());
    else
      kernels::launch_csr_rows_times_dense(alpha, a, b, beta, c, stream());
    return;
  }
  if (a.nnz == 0) {
    kernels::launch_scale(c, beta, stream());
    return;
  }
  require(a.nnz <= kMaxInt32, "spmm: " + std::to_string(a.nnz) +
                                  " non-zeros in one call exceeds 2^31-1; multiply in row blocks");
  require(a.rows <= kMaxInt32 && a.cols <= kMaxInt32,
          "spmm: a " + shape(a.rows, a.cols) +
              " exceeds 2^31-1 rows or columns in one call; multiply in row blocks");
  // cuSPARSE does not promise to leave c unread when beta == 0; clearing it first keeps NaN in c
  // from propagating whatever it does.
  if (beta == 0.0f) kernels::launch_scale(c, 0.0f, stream());

  auto* row_offsets = static_cast<std::int32_t*>(spmm_row_offsets_.reserve(
      static_cast<std::size_t>(a.rows + 1) * sizeof(std::int32_t), stream()));
  kernels::launch_index_narrow(a.row_offsets, row_offsets, a.rows + 1, stream());

  const cusparseOperation_t op_a = transpose_a == Transpose::yes ? CUSPARSE_OPERATION_TRANSPOSE
                                                                 : CUSPARSE_OPERATION_NON_TRANSPOSE;
  // op(a) = a: CSR_ALG2, which cuSPARSE documents as the fastest with row-major b and c. Its sums
  // may come in another order from run to run: cuSPARSE promises bitwise equal results only for
  // COO_ALG2, CSR_ALG3 (op(a) = a only) and BSR_ALG1, and CSR_ALG3 has not been measured here.
  // For aᵀ (a scatter into c) cuSPARSE documents run-to-run differences whatever the algorithm,
  // so take its default choice.
  const cusparseSpMMAlg_t algorithm =
      transpose_a == Transpose::yes ? CUSPARSE_SPMM_ALG_DEFAULT : CUSPARSE_SPMM_CSR_ALG2;

  // The plan's key: c's shape and b's rows follow from a's shape, the transposition and b's
  // columns. alpha and beta are no part of it: cuSPARSE may read them from device memory (its
  // device pointer mode), so the buffer size cannot depend on their values.
  const SpmmPlanKey key{static_cast<std::int64_t>(transpose_a), a.rows, a.cols, b.cols, b.ld, c.ld};
  auto found = spmm_plans_.find(key);
  if (found == spmm_plans_.end()) {
    SpmmPlan plan;
    plan.matrix_b = make_dense_descriptor(b);
    plan.matrix_c = make_dense_descriptor(c);
    found = spmm_plans_.emplace(key, std::move(plan)).first;
  }
  SpmmPlan& plan = found->second;
  set_dense_values(plan.matrix_b, b.data);
  set_dense_values(plan.matrix_c, c.data);
  if (plan.matrix_a.get() != nullptr && plan.nnz == a.nnz) {
    set_csr_pointers(plan.matrix_a, a, row_offsets);
  } else {
    CsrDescriptor matrix_a = make_csr_descriptor(a, row_offsets);
    std::size_t buffer_bytes = 0;
    SAE_CUSPARSE_CHECK(cusparseSpMM_bufferSize(
        cusparse_.get(), op_a, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, matrix_a.get(),
        plan.matrix_b.get(), &beta, plan.matrix_c.get(), CUDA_R_32F, algorithm, &buffer_bytes));
    plan.matrix_a = std::move(matrix_a);
    plan.nnz = a.nnz;
    plan.buffer_bytes = buffer_bytes;
  }
  // Never a null buffer, even when cuSPARSE asks for none. Nothing in it outlives the call (there
  // is no cusparseSpMM_preprocess), so it may move when workspace_ grows for another op.
  void* buffer =
      workspace_.reserve(std::max(plan.buffer_bytes, kernels::kWorkspaceAlignment), stream());
  SAE_CUSPARSE_CHECK(cusparseSpMM(cusparse_.get(), op_a, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha,
                                  plan.matrix_a.get(), plan.matrix_b.get(), &beta,
                                  plan.matrix_c.get(), CUDA_R_32F, algorithm, buffer));
}

// ---- fused element-wise ops ----

void CudaBackend::bias_activation_forward(Activation activation, ConstDenseView z,
                                          const float* bias, DenseView y) {
  check_bias_activation("bias_activation_forward", z, y);
  kernels::launch_bias_activation_forward(activation, z, bias, y, stream());
}

void CudaBackend::activation_backward(Activation activation, ConstDenseView y, ConstDenseView dy,
                                      DenseView dz, float* bias_grad) {
  check_same_shape("activation_backward", "y", y, "dy", dy);
  check_same_shape("activation_backward", "y", y, "dz", dz);
  void* workspace = workspace_.reserve(
      bias_grad != nullptr ? kernels::column_reduction_workspace_bytes(y.rows, y.cols) : 0,
      stream());
  kernels::launch_activation_backward(activation, y, dy, dz, bias_grad, workspace, stream());
}

void CudaBackend::transform_values(InputTransform transform, const float* in, std::int64_t n,
                                   float* out) {
  kernels::launch_transform_values(transform, in, n, out, stream());
}

void CudaBackend::row_log_size_factors(CsrView batch, float log_reference, float* out) {
  kernels::launch_row_log_size_factors(batch, log_reference, out, stream());
}

void CudaBackend::row_log_size_factors(ConstDenseView batch, float log_reference, float* out) {
  check_view("row_log_size_factors", "batch", batch);
  kernels::launch_row_log_size_factors(batch, log_reference, out, stream());
}

void CudaBackend::add_row_offsets(DenseView m, const float* offsets) {
  check_view("add_row_offsets", "m", m);
  kernels::launch_add_row_offsets(m, offsets, stream());
}

void CudaBackend::deterministic_layer(const DeterministicLayer& layer, ConstDenseView in,
                                      const float* row_offsets, DenseView out) {
  check_view("deterministic_layer", "in", in);
  check_view("deterministic_layer", "out", out);
  kernels::launch_deterministic_layer(layer, in, row_offsets, out, stream());
}

void CudaBackend::column_sums(ConstDenseView x, float scale, float* out) {
  check_view("column_sums", "x", x);
  void* workspace =
      workspace_.reserve(kernels::column_reduction_workspace_bytes(x.rows, x.cols), stream());
  kernels::launch_column_sums(x, scale, out, workspace, stream());
}

// ---- float64 linear algebra ----

void CudaBackend::csr_to_dense(CsrView a, DenseView out) {
  check_csr_to_dense(a, out);
  kernels::launch_csr_to_dense(a, out, stream());
}

void CudaBackend::accumulate(const float* x, std::int64_t n, double* sum) {
  check_accumulate(n);
  kernels::launch_accumulate(x, n, sum, stream());
}

void CudaBackend::symmetric_eigen(std::int64_t n, double* a, double* eigenvalues) {
  refuse_in_capture("symmetric_eigen");
  check_symmetric_eigen(n);
  if (n == 0) return;
  if (cusolver_.get() == nullptr) {
    cusolverDnHandle_t handle = nullptr;
    SAE_CUSOLVER_CHECK(cusolverDnCreate(&handle));
    CusolverHandle owned(handle);
    SAE_CUSOLVER_CHECK(cusolverDnSetStream(handle, stream()));
    cusolverDnParams_t params = nullptr;
    SAE_CUSOLVER_CHECK(cusolverDnCreateParams(&params));
    cusolver_params_ = CusolverParams(params);
    cusolver_ = std::move(owned);
  }
  // Row-major symmetric is column-major symmetric: cuSOLVER's lower triangle is our upper one,
  // and its eigenvector columns are our rows.
  std::size_t device_bytes = 0;
  std::size_t host_bytes = 0;
  SAE_CUSOLVER_CHECK(cusolverDnXsyevd_bufferSize(
      cusolver_.get(), cusolver_params_.get(), CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n,
      CUDA_R_64F, a, n, CUDA_R_64F, eigenvalues, CUDA_R_64F, &device_bytes, &host_bytes));
  // The solver's status word lives after its workspace, in the same block.
  const std::size_t info_offset = kernels::align_workspace(device_bytes);
  auto* workspace = static_cast<char*>(workspace_.reserve(info_offset + sizeof(int), stream()));
  int* info = reinterpret_cast<int*>(workspace + info_offset);
  std::vector<char> host_workspace(host_bytes);
  SAE_CUSOLVER_CHECK(cusolverDnXsyevd(
      cusolver_.get(), cusolver_params_.get(), CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n,
      CUDA_R_64F, a, n, CUDA_R_64F, eigenvalues, CUDA_R_64F, workspace, device_bytes,
      host_workspace.empty() ? nullptr : host_workspace.data(), host_bytes, info));
  int host_info = 0;
  SAE_CUDA_CHECK(cudaMemcpyAsync(&host_info, info, sizeof(int), cudaMemcpyDeviceToHost, stream()));
  SAE_CUDA_CHECK(cudaStreamSynchronize(stream()));
  require(host_info == 0, eigen_failure_message(host_info, n));
}

// ---- batching ----

void CudaBackend::random_permutation(std::uint64_t seed, std::int64_t n, std::int64_t* out) {
  require(n >= 0, "random_permutation: negative length");
  if (n == 0) return;
  void* workspace = workspace_.reserve(kernels::random_permutation_workspace_bytes(n), stream());
  kernels::launch_random_permutation(seed, n, out, workspace, stream());
}

std::int64_t CudaBackend::gather_rows(CsrView source, const std::int64_t* row_ids,
                                      std::int64_t count, const CsrOutput& out) {
  refuse_in_capture("gather_rows without a known nnz");
  check_gather(source, count, out);
  if (count == 0) {
    SAE_CUDA_CHECK(cudaMemsetAsync(out.row_offsets, 0, sizeof(RowOffset), stream()));
    require(0 <= out.nnz_capacity, gather_overflow_message(0, out.nnz_capacity));
    return 0;
  }
  auto* status = static_cast<kernels::GatherStatus*>(gather_status_.get());
  auto* host_status = static_cast<kernels::GatherStatus*>(gather_status_host_.get());
  void* workspace = workspace_.reserve(kernels::gather_workspace_bytes(count), stream());
  kernels::launch_gather_offsets(source, row_ids, count, out.row_offsets, status, workspace,
                                 stream());
  // The one host round trip of a step: the copy below must not start past out's capacity, and
  // the caller needs the batch's nnz.
  SAE_CUDA_CHECK(cudaMemcpyAsync(host_status, status, sizeof(kernels::GatherStatus),
                                 cudaMemcpyDeviceToHost, stream()));
  SAE_CUDA_CHECK(cudaStreamSynchronize(stream()));
  const kernels::GatherStatus result = *host_status;
  if (result.first_bad_index != kernels::kNoBadIndex)
    throw Error(gather_bad_row_message(result.bad_row, source.rows));
  require(result.nnz <= out.nnz_capacity, gather_overflow_message(result.nnz, out.nnz_capacity));
  if (result.nnz > 0) kernels::launch_gather_copy(source, row_ids, count, out, stream());
  return result.nnz;
}

void CudaBackend::batch_nonzeros(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                                 std::int64_t batch_rows, std::int64_t* nnz_per_batch) {
  refuse_in_capture("batch_nonzeros");
  check_batch_nonzeros(count, batch_rows);
  if (count == 0) return;
  // The offsets every row would take in one batch of all count rows (the first half of a gather),
  // in the same block as the scan's scratch, which comes first.
  const std::size_t offsets_at = kernels::align_workspace(kernels::gather_workspace_bytes(count));
  auto* workspace = static_cast<char*>(workspace_.reserve(
      offsets_at + static_cast<std::size_t>(count + 1) * sizeof(RowOffset), stream()));
  auto* offsets = reinterpret_cast<RowOffset*>(workspace + offsets_at);
  auto* status = static_cast<kernels::GatherStatus*>(gather_status_.get());
  kernels::launch_gather_offsets(source, row_ids, count, offsets, status, workspace, stream());
  // Each batch's first offset, offsets[b * batch_rows], in one strided copy; the total is the
  // status's nnz.
  const std::int64_t batches = (count + batch_rows - 1) / batch_rows;
  std::vector<RowOffset> starts(static_cast<std::size_t>(batches));
  SAE_CUDA_CHECK(cudaMemcpy2DAsync(starts.data(), sizeof(RowOffset), offsets,
                                   static_cast<std::size_t>(batch_rows) * sizeof(RowOffset),
                                   sizeof(RowOffset), static_cast<std::size_t>(batches),
                                   cudaMemcpyDeviceToHost, stream()));
  auto* host_status = static_cast<kernels::GatherStatus*>(gather_status_host_.get());
  SAE_CUDA_CHECK(cudaMemcpyAsync(host_status, status, sizeof(kernels::GatherStatus),
                                 cudaMemcpyDeviceToHost, stream()));
  SAE_CUDA_CHECK(cudaStreamSynchronize(stream()));
  const kernels::GatherStatus result = *host_status;
  if (result.first_bad_index != kernels::kNoBadIndex)
    throw Error(gather_bad_row_message(result.bad_row, source.rows));
  for (std::int64_t b = 0; b < batches; ++b)
    nnz_per_batch[b] = (b + 1 < batches ? starts[b + 1] : result.nnz) - starts[b];
}

void CudaBackend::gather_rows(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                              std::int64_t max_nnz, const CsrOutput& out) {
  check_gather(source, count, out);
  require(max_nnz <= out.nnz_capacity, gather_overflow_message(max_nnz, out.nnz_capacity));
  if (count == 0) {
    SAE_CUDA_CHECK(cudaMemsetAsync(out.row_offsets, 0, sizeof(RowOffset), stream()));
    return;
  }
  // The offsets kernel also writes the status that the other gather_rows reads back; nothing
  // reads it here.
  void* workspace = workspace_.reserve(kernels::gather_workspace_bytes(count), stream());
  kernels::launch_gather_offsets(source, row_ids, count, out.row_offsets,
                                 static_cast<kernels::GatherStatus*>(gather_status_.get()),
                                 workspace, stream());
  if (max_nnz > 0) kernels::launch_gather_copy(source, row_ids, count, out, stream());
}

void CudaBackend::gather_dense_rows(ConstDenseView source, const std::int64_t* row_ids,
                                    std::int64_t count, DenseView out) {
  check_dense_gather(source, count, out);
  kernels::launch_gather_dense_rows(source, row_ids, count, out, stream());
}

// ---- losses and penalties ----

void CudaBackend::reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                      CsrView target, DenseView grad, float* row_loss) {
  check_loss(kind, y, target, grad);
  kernels::launch_reconstruction_loss(kind, params, y, target, grad, row_loss, stream());
}

void CudaBackend::reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                      ConstDenseView target, DenseView grad, float* row_loss) {
  check_loss(kind, y, target, grad);
  kernels::launch_reconstruction_loss(kind, params, y, target, grad, row_loss, stream());
}

void CudaBackend::l1_activity_penalty(float weight, ConstDenseView a, DenseView grad, float* loss) {
  check_same_shape("l1_activity_penalty", "a", a, "grad", grad);
  void* workspace =
      workspace_.reserve(kernels::l1_activity_penalty_workspace_bytes(a.rows, a.cols), stream());
  kernels::launch_l1_activity_penalty(weight, a, grad, loss, workspace, stream());
}

void CudaBackend::kl_sparsity_penalty(float rho, float beta, ConstDenseView a, DenseView grad,
                                      float* loss) {
  check_same_shape("kl_sparsity_penalty", "a", a, "grad", grad);
  void* workspace =
      workspace_.reserve(kernels::kl_sparsity_penalty_workspace_bytes(a.rows, a.cols), stream());
  kernels::launch_kl_sparsity_penalty(rho, beta, a, grad, loss, workspace, stream());
}

void CudaBackend::quantize_latents(DenseView z, const std::uint64_t* noise_seed) {
  kernels::launch_quantize_latents(z, noise_seed, stream());
}

void CudaBackend::latent_rate_penalty(float weight, const float* prior, ConstDenseView z,
                                      DenseView grad, float* prior_grad, float* loss) {
  if (grad.data != nullptr) check_same_shape("latent_rate_penalty", "z", z, "grad", grad);
  void* workspace =
      workspace_.reserve(kernels::latent_rate_penalty_workspace_bytes(z.rows, z.cols), stream());
  kernels::launch_latent_rate_penalty(weight, prior, z, grad, prior_grad, loss, workspace,
                                      stream());
}

void CudaBackend::topk_rows(std::int64_t k, DenseView z) {
  check_topk("topk_rows", k, z);
  kernels::launch_topk_rows(k, z, stream());
}

void CudaBackend::batch_topk(std::int64_t k, DenseView z, float* threshold) {
  check_topk("batch_topk", k, z);
  kernels::launch_batch_topk(k, z, threshold, stream());
}

void CudaBackend::threshold_latents(DenseView z, const float* threshold) {
  check_view("threshold_latents", "z", z);
  kernels::launch_threshold_latents(z, threshold, stream());
}

void CudaBackend::latent_dead_steps(ConstDenseView z, std::int32_t* dead_steps) {
  check_view("latent_dead_steps", "z", z);
  kernels::launch_latent_dead_steps(z, dead_steps, stream());
}

void CudaBackend::auxk_backward(std::int64_t aux_k, float aux_weight, std::int32_t dead_after,
                                const std::int32_t* dead_steps, ConstDenseView pre,
                                ConstDenseView z, DenseView dz, float* bias_grad) {
  check_auxk(aux_k, pre, z, dz);
  kernels::launch_auxk_backward(aux_k, aux_weight, dead_after, dead_steps, pre, z, dz, bias_grad,
                                stream());
}

void CudaBackend::sum_of_squares(const float* x, std::int64_t n, float* out) {
  void* workspace = workspace_.reserve(kernels::sum_of_squares_workspace_bytes(n), stream());
  kernels::launch_sum_of_squares(x, n, out, workspace, stream());
}

void CudaBackend::scale_values(float* x, std::int64_t n, float factor) {
  require(n >= 0, "scale_values: negative length");
  kernels::launch_scale(DenseView(x, 1, n), factor, stream());
}

// ---- optimizer ----

void CudaBackend::optimizer_step(const OptimizerConfig& config, std::int64_t step, std::int64_t n,
                                 float* params, const float* grads, float* first_moment,
                                 float* second_moment, const float* grad_sum_squares,
                                 const StepScalars* step_scalars) {
  check_optimizer(config, step, second_moment, grad_sum_squares);
  // The clipping scale and the skip are decided in the kernel from *grad_sum_squares: no host
  // round trip.
  kernels::launch_optimizer_step(math::make_optimizer_scalars(config, step), step_scalars, n,
                                 params, grads, first_moment, second_moment, config.max_grad_norm,
                                 config.skip_nonfinite, grad_sum_squares, stream());
}

void CudaBackend::unit_norm_rows(DenseView m) {
  check_view("unit_norm_rows", "m", m);
  kernels::launch_unit_norm_rows(m, stream());
}

// ---- captured ops ----

namespace {

struct CudaCapturedOps final : CapturedOps {
  CudaGraphExec graph;
  std::uint64_t workspace_generation = 0;  // the scratch memory the graph's nodes point into
};

}  // namespace

void CudaBackend::refuse_in_capture(const char* op) const {
  if (capturing_) throw Error(capture_refusal_message("cuda", op));
}

std::unique_ptr<CapturedOps> CudaBackend::capture(const std::function<void()>& ops) {
  refuse_in_capture("capture");
  // Thread-local mode: another thread's unrelated CUDA calls do not invalidate the capture.
  SAE_CUDA_CHECK(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeThreadLocal));
  capturing_ = true;
  cudaGraph_t captured = nullptr;
  try {
    ops();
  } catch (...) {
    capturing_ = false;
    static_cast<void>(cudaStreamEndCapture(stream(), &captured));
    if (captured != nullptr) static_cast<void>(cudaGraphDestroy(captured));
    static_cast<void>(cudaGetLastError());  // the failed capture's error is not the caller's
    throw;
  }
  capturing_ = false;
  SAE_CUDA_CHECK(cudaStreamEndCapture(stream(), &captured));
  const CudaGraph graph(captured);
  cudaGraphExec_t executable = nullptr;
  SAE_CUDA_CHECK(cudaGraphInstantiate(&executable, graph.get(), 0));
  auto recorded = std::make_unique<CudaCapturedOps>();
  recorded->graph = CudaGraphExec(executable);
  recorded->workspace_generation = workspace_.generation();
  return recorded;
}

void CudaBackend::replay(const CapturedOps& ops) {
  refuse_in_capture("replay");
  const auto& recorded = static_cast<const CudaCapturedOps&>(ops);
  require(recorded.workspace_generation == workspace_.generation(),
          "cuda backend: the captured ops point into scratch memory that has since moved; "
          "capture them again");
  SAE_CUDA_CHECK(cudaGraphLaunch(recorded.graph.get(), stream()));
}

// ---- factories ----

std::unique_ptr<Backend> make_cuda_backend() {
  std::string reason;
  if (!cuda_runtime_has_device(&reason)) throw Error("backend cuda unavailable: " + reason);
  try {
    return std::make_unique<CudaBackend>();
  } catch (const Error& error) {
    throw Error(std::string("backend cuda unavailable: ") + error.what());
  }
}

bool cuda_runtime_has_device(std::string* reason) {
  try {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      static_cast<void>(cudaGetLastError());  // not a launch error: do not let it linger
      if (reason != nullptr) *reason = cudaGetErrorString(status);
      return false;
    }
    if (count == 0) {
      if (reason != nullptr) *reason = "no CUDA device";
      return false;
    }
    return true;
  } catch (...) {  // only the reason string can throw (bad_alloc); callers rely on no exception
    return false;
  }
}

std::string cuda_build_info() {
  std::string info = std::string("CUDA ") + SPARSEAE_CUDA_VERSION + ", architectures " +
                     SPARSEAE_CUDA_ARCHITECTURES + "; " + runtime_and_driver_versions();
  std::string reason;
  if (!cuda_runtime_has_device(&reason)) return info + "; no device: " + reason;
  int device = 0;
  cudaDeviceProp properties{};
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess) status = cudaGetDeviceProperties(&properties, device);
  if (status != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return info + "; device " + std::to_string(device) +
           " did not answer: " + cudaGetErrorString(status);
  }
  return info + "; device " + std::to_string(device) + ": " + device_summary(properties);
}

}  // namespace sparseae::detail
