#pragma once
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "sparseae/backend.hpp"

namespace sparseae::detail {

// The reference executor: OpenBLAS for dense products, hand-written CSR loops, OpenMP for
// element-wise work. Every loop is parallel over disjoint outputs, so results do not depend on
// the thread count.
class CpuBackend final : public Backend {
 public:
  CpuBackend();

  BackendKind kind() const override { return BackendKind::cpu; }
  std::string description() const override;

  void* allocate_bytes(std::size_t bytes) override;
  void free_bytes(void* pointer) noexcept override;
  void upload_bytes(void* destination, const void* host_source, std::size_t bytes) override;
  void download_bytes(void* host_destination, const void* source, std::size_t bytes) override;
  void copy_bytes(void* destination, const void* source, std::size_t bytes) override;
  void fill_zero_bytes(void* destination, std::size_t bytes) override;
  void synchronize() override { refuse_in_capture("synchronize"); }
  void set_matmul_precision(MatmulPrecision precision) override;
  // Measured on the 2-core development machine (bench/RESULTS.md, BM_first_layer): spmm and
  // forward + weight gradient of 1024 x 512 into 256 cost alike near 15 % density; below it spmm
  // wins (1.05 ms against 3.2 at 4 %), above it the densified gemm (3.2 against 6.9 at 32 %).
  double dense_first_layer_density() const override { return 0.15; }
  void* allocate_pinned_bytes(std::size_t bytes) override { return allocate_bytes(bytes); }
  void free_pinned_bytes(void* pointer) noexcept override { free_bytes(pointer); }
  void begin_uploads(int slot) override;
  void upload_async(int slot, void* destination, const void* pinned_source,
                    std::size_t bytes) override;
  void use_uploads(int slot) override;

  void gemm(Transpose transpose_a, Transpose transpose_b, float alpha, ConstDenseView a,
            ConstDenseView b, float beta, DenseView c) override;
  void spmm(Transpose transpose_a, float alpha, CsrView a, ConstDenseView b, float beta,
            DenseView c) override;
  void bias_activation_forward(Activation activation, ConstDenseView z, const float* bias,
                               DenseView y) override;
  void activation_backward(Activation activation, ConstDenseView y, ConstDenseView dy,
                           DenseView dz, float* bias_grad) override;
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
                           CsrView target, DenseView grad, float* row_loss) override;
  void reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                           ConstDenseView target, DenseView grad, float* row_loss) override;
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

  // A recording of the op calls with their arguments, replayed in order: a step whose arguments
  // change between replays replays wrong here as it would on a GPU, and an op that the device
  // could not capture is refused as cuda refuses it.
  std::unique_ptr<CapturedOps> capture(const std::function<void()>& ops) override;
  void replay(const CapturedOps& ops) override;

 private:
  // Runs op now, or records it while a capture runs.
  template <typename Op>
  void run(Op op) {
    if (recording_ != nullptr)
      recording_->emplace_back(std::move(op));
    else
      op();
  }
  // Throws Error naming op while a capture runs.
  void refuse_in_capture(const char* op) const;

  std::vector<std::function<void()>>* recording_ = nullptr;
  MatmulPrecision precision_ = MatmulPrecision::fp32;
  // The operands of a gemm in tf32 or bf16, rounded (grown to the largest, then reused).
  std::vector<float> rounded_operands_[2];
  // activation_backward's column sums of each kRowBlock rows (grown to the largest, then reused).
  std::vector<float> block_column_sums_;
  // kl_sparsity_penalty's gradient factor of each column (grown to the widest, then reused).
  std::vector<float> kl_factors_;
};

}  // namespace sparseae::detail
