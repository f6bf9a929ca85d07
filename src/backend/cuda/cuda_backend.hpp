#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>
#include <cusparse.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "sparseae/backend.hpp"

namespace sparseae::detail {

// Owns one CUDA resource and releases it with Destroy. Release errors are ignored: a destructor
// cannot report them, and a device fault has already surfaced through the op that caused it.
template <typename Handle, auto Destroy>
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(Handle handle) : handle_(handle) {}
  ~UniqueHandle() { reset(); }

  UniqueHandle(UniqueHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  UniqueHandle& operator=(UniqueHandle&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;

  Handle get() const { return handle_; }
  void reset() noexcept {
    if (handle_ != nullptr) static_cast<void>(Destroy(std::exchange(handle_, nullptr)));
  }

 private:
  Handle handle_ = nullptr;
};

using CudaStream = UniqueHandle<cudaStream_t, &cudaStreamDestroy>;
using CudaEvent = UniqueHandle<cudaEvent_t, &cudaEventDestroy>;
using CublasHandle = UniqueHandle<cublasHandle_t, &cublasDestroy_v2>;
using CublasLtHandle = UniqueHandle<cublasLtHandle_t, &cublasLtDestroy>;
using LtMatmulDescriptor = UniqueHandle<cublasLtMatmulDesc_t, &cublasLtMatmulDescDestroy>;
using LtLayout = UniqueHandle<cublasLtMatrixLayout_t, &cublasLtMatrixLayoutDestroy>;
using CusparseHandle = UniqueHandle<cusparseHandle_t, &cusparseDestroy>;
using CusolverHandle = UniqueHandle<cusolverDnHandle_t, &cusolverDnDestroy>;
using CusolverParams = UniqueHandle<cusolverDnParams_t, &cusolverDnDestroyParams>;
using CudaGraph = UniqueHandle<cudaGraph_t, &cudaGraphDestroy>;
using CudaGraphExec = UniqueHandle<cudaGraphExec_t, &cudaGraphExecDestroy>;
using DeviceMemory = UniqueHandle<void*, &cudaFree>;
using PinnedMemory = UniqueHandle<void*, &cudaFreeHost>;
// Mutable descriptors even for the operands cuSPARSE only reads: its setters
// (cusparseCsrSetPointers, cusparseDnMatSetValues) take no const descriptor.
using CsrDescriptor = UniqueHandle<cusparseSpMatDescr_t, &cusparseDestroySpMat>;
using DenseDescriptor = UniqueHandle<cusparseDnMatDescr_t, &cusparseDestroyDnMat>;

// Plain cudaMalloc (never managed memory); bytes > 0.
DeviceMemory allocate_device(std::size_t bytes);

// Scratch device memory reused by every op on one stream. It grows to the largest size asked for
// and never shrinks, so a training loop allocates only during its first step.
class Workspace {
 public:
  // At least bytes of device memory, valid until the next reserve. Growing waits for stream first,
  // because work queued there may still use the old block; it throws Error while stream is being
  // captured (a graph would keep the old block's address).
  void* reserve(std::size_t bytes, cudaStream_t stream);
  // How many times the block has moved: a recording made at one generation points into a block
  // that a later one has freed.
  std::uint64_t generation() const { return generation_; }

 private:
  DeviceMemory memory_;
  std::size_t capacity_ = 0;
  std::uint64_t generation_ = 0;
};

// Runs every op on the current device with cuBLAS, cuSPARSE, CUB and the kernels of kernels/, all
// ordered on one non-blocking stream that the backend owns. Ops return without waiting, except
// download_bytes, upload_bytes, gather_rows without a known nnz (reads the batch's nnz back),
// batch_nonzeros (reads an epoch's back at once) and synchronize; growing the workspace, once,
// also waits. Shape checks and error messages are the cpu backend's.
class CudaBackend final : public Backend {
 public:
  CudaBackend();
  ~CudaBackend() override;

  BackendKind kind() const override { return BackendKind::cuda; }
  std::string description() const override { return description_; }

  void* allocate_bytes(std::size_t bytes) override;
  void free_bytes(void* pointer) noexcept override;
  void upload_bytes(void* destination, const void* host_source, std::size_t bytes) override;
  void download_bytes(void* host_destination, const void* source, std::size_t bytes) override;
  void copy_bytes(void* destination, const void* source, std::size_t bytes) override;
  void fill_zero_bytes(void* destination, std::size_t bytes) override;
  void synchronize() override;
  std::size_t device_memory_used() const override;
  std::size_t device_memory_free() const override;
  void set_matmul_precision(MatmulPrecision precision) override;
  // Stream capture into a CUDA graph, instantiated once and launched by replay.
  std::unique_ptr<CapturedOps> capture(const std::function<void()>& ops) override;
  void replay(const CapturedOps& ops) override;
  // Not measured on a GPU yet (the GPU check runs BM_first_layer): cuSPARSE spmm always.
  double dense_first_layer_density() const override {
    return std::numeric_limits<double>::infinity();
  }
  void* allocate_pinned_bytes(std::size_t bytes) override;
  void free_pinned_bytes(void* pointer) noexcept override;
  // The groups' copies run on a second stream (copy_stream_), ordered after the compute stream
  // by an event, and the compute stream waits for them by another: the copy engine moves batch
  // b + 1 while the kernels of batch b run.
  void begin_uploads(int slot) override;
  void upload_async(int slot, void* destination, const void* pinned_source,
                    std::size_t bytes) override;
  void use_uploads(int slot) override;

  void gemm(Transpose transpose_a, Transpose transpose_b, float alpha, ConstDenseView a,
            ConstDenseView b, float beta, DenseView c) override;
  // identity and relu through cublasLt with the bias (and relu) in the GEMM's epilogue, its
  // algorithm chosen by cublasLt's heuristic once per shape and pointer alignment.
  void gemm_bias_activation(Activation activation, Transpose transpose_a, Transpose transpose_b,
                            ConstDenseView a, ConstDenseView b, const float* bias,
                            DenseView y) override;
  // Needs a zero-based a (row_offsets[0] == 0, row_offsets[rows] == nnz), as every CSR type of
  // the library is; cuSPARSE reads the offsets relative to the start of the arrays. Inside a
  // capture the custom kernels of kernels/csr_spmm.cu run instead (cuSPARSE would freeze nnz).
  void spmm(Transpose transpose_a, float alpha, CsrView a, ConstDenseView b, float beta,
            DenseView c) override;
  void bias_activation_forward(Activation activation, ConstDenseView z, const float* bias,
                               DenseView y) override;
  void activation_backward(Activation activation, ConstDenseView y, ConstDenseView dy, DenseView dz,
                           float* bias_grad) override;
  void column_sums(ConstDenseView x, float scale, float* out) override;
  void transform_values(InputTransform transform, const float* in, std::int64_t n,
                        float* out) override;
  void row_log_size_factors(CsrView batch, float log_reference, float* out) override;
  void row_log_size_factors(ConstDenseView batch, float log_reference, float* out) override;
  void add_row_offsets(DenseView m, const float* offsets) override;
  void deterministic_layer(const DeterministicLayer& layer, ConstDenseView in,
                           const float* row_offsets, DenseView out) override;
  void csr_to_dense(CsrView a, DenseView out) override;
  void accumulate(const float* x, std::int64_t n, double* sum) override;
  // cusolverDnXsyevd on the backend's stream; the cuSOLVER handle is made on the first call, so
  // that a run which never fits a PCA does not pay for it.
  void symmetric_eigen(std::int64_t n, double* a, double* eigenvalues) override;
  void random_permutation(std::uint64_t seed, std::int64_t n, std::int64_t* out) override;
  std::int64_t gather_rows(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                           const CsrOutput& out) override;
  void batch_nonzeros(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                      std::int64_t batch_rows, std::int64_t* nnz_per_batch) override;
  void gather_rows(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                   std::int64_t max_nnz, const CsrOutput& out) override;
  void gather_dense_rows(ConstDenseView source, const std::int64_t* row_ids, std::int64_t count,
                         DenseView out) override;
  void reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                           ConstDenseView target, DenseView grad, float* row_loss) override;
  void reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                           CsrView target, DenseView grad, float* row_loss) override;
  void l1_activity_penalty(float weight, ConstDenseView a, DenseView grad, float* loss) override;
  void quantize_latents(DenseView z, const std::uint64_t* noise_seed) override;
  void latent_rate_penalty(float weight, const float* prior, ConstDenseView z, DenseView grad,
                           float* prior_grad, float* loss) override;
  void kl_sparsity_penalty(float rho, float beta, ConstDenseView a, DenseView grad,
                           float* loss) override;
  void topk_rows(std::int64_t k, DenseView z) override;
  void batch_topk(std::int64_t k, DenseView z, float* threshold) override;
  void threshold_latents(DenseView z, const float* threshold) override;
  void latent_dead_steps(ConstDenseView z, std::int32_t* dead_steps) override;
  void auxk_backward(std::int64_t aux_k, float aux_weight, std::int32_t dead_after,
                     const std::int32_t* dead_steps, ConstDenseView pre, ConstDenseView z,
                     DenseView dz, float* bias_grad) override;
  void sum_of_squares(const float* x, std::int64_t n, float* out) override;
  void scale_values(float* x, std::int64_t n, float factor) override;
  void optimizer_step(const OptimizerConfig& config, std::int64_t step, std::int64_t n,
                      float* params, const float* grads, float* first_moment, float* second_moment,
                      const float* grad_sum_squares, const StepScalars* step_scalars) override;
  using Backend::optimizer_step;
  void unit_norm_rows(DenseView m) override;

  // The stream every op is ordered on: where a collective over the backend's memory (NCCL's
  // all-reduce of the gradients) must run to stay between the backward and the optimizer.
  cudaStream_t compute_stream() const { return stream_.get(); }

 private:
  cudaStream_t stream() const { return stream_.get(); }
  // Throws Error naming op while a capture runs: op waits for the device, reads host memory or
  // allocates.
  void refuse_in_capture(const char* op) const;

  bool capturing_ = false;
  MatmulPrecision precision_ = MatmulPrecision::fp32;  // of gemm

  std::string description_;
  // Declared in dependency order: members are destroyed in reverse, so the library handles go
  // before the stream they are bound to, and cuBLAS before its workspace.
  CudaStream stream_;
  DeviceMemory cublas_workspace_;
  std::size_t cublas_workspace_bytes_ = 0;  // shared by cuBLAS and cublasLt: one stream orders them
  CublasHandle cublas_;
  CublasLtHandle cublas_lt_;
  // What gemm_bias_activation made for each shape, transposition, epilogue, precision and set of
  // pointer alignments it has seen: cublasLt's descriptors and its algorithm, so that a call
  // creates nothing; or that cublasLt's heuristic offered none, so that later calls of the shape
  // go straight to gemm and bias_activation_forward without asking again.
  struct LtPlan {
    LtMatmulDescriptor descriptor;
    LtLayout layout_b;  // cublasLt's A
    LtLayout layout_a;  // cublasLt's B
    LtLayout layout_y;
    cublasLtMatmulAlgo_t algorithm{};
    bool has_algorithm = false;
  };
  using LtPlanKey = std::array<std::int64_t, 15>;
  std::map<LtPlanKey, LtPlan> lt_plans_;
  CusparseHandle cusparse_;
  // What spmm made for each transposition and shape of b and c it has seen: cuSPARSE's
  // descriptors, pointed at each call's operands, and the size of the buffer SpMM needs for the
  // non-zero count matrix_a was made with. A descriptor's nnz cannot be changed and every batch
  // has its own, so a call with another nnz makes matrix_a anew and asks the size again (host
  // work; workspace_ grows only past its largest size).
  struct SpmmPlan {
    CsrDescriptor matrix_a;
    DenseDescriptor matrix_b;
    DenseDescriptor matrix_c;
    std::int64_t nnz = 0;  // of matrix_a
    std::size_t buffer_bytes = 0;
  };
  using SpmmPlanKey = std::array<std::int64_t, 6>;
  std::map<SpmmPlanKey, SpmmPlan> spmm_plans_;
  CusolverHandle cusolver_;  // made by the first symmetric_eigen
  CusolverParams cusolver_params_;
  Workspace workspace_;
  // The int32 copy of spmm's row offsets; apart from workspace_ because it must stay put while
  // workspace_ grows to cuSPARSE's buffer size, which is known only once the descriptors exist.
  Workspace spmm_row_offsets_;
  DeviceMemory gather_status_;       // a kernels::GatherStatus
  PinnedMemory gather_status_host_;  // its host copy
  CudaStream copy_stream_;
  CudaEvent compute_mark_;  // the compute stream's progress when a group of uploads begins
  std::array<CudaEvent, kUploadSlots> uploaded_;  // each slot's last group of copies done
};

}  // namespace sparseae::detail
