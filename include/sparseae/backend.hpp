#pragma once
// A backend executes the ops on memory it owns. Two exist: cpu (OpenBLAS + OpenMP loops, always
// built) and cuda (cuBLAS, cuSPARSE and custom kernels, built when CUDA is found). Both run the
// per-element math of src/math/op_math.hpp, and both pass the same conformance tests.
//
// Every pointer and view handed to an op points into this backend's memory space (allocate via
// Buffer<T>, buffer.hpp). Ops are asynchronous on the cuda backend: they are ordered on the
// backend's stream, and download() / synchronize() wait for them.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "sparseae/matrix.hpp"
#include "sparseae/ops.hpp"

namespace sparseae {

enum class BackendKind : std::int32_t { cpu, cuda };

// A sequence of ops recorded once by Backend::capture and run again by Backend::replay with the
// same arguments: a CUDA graph on cuda, a list of the recorded calls on cpu.
class CapturedOps {
 public:
  virtual ~CapturedOps() = default;
  CapturedOps(const CapturedOps&) = delete;
  CapturedOps& operator=(const CapturedOps&) = delete;

 protected:
  CapturedOps() = default;
};

// "auto" | "cpu" | "cuda".
enum class BackendChoice : std::int32_t { automatic, cpu, cuda };

BackendChoice parse_backend_choice(const std::string& name);
const char* backend_name(BackendKind kind);

class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  virtual BackendKind kind() const = 0;
  // One line: the backend and what it runs on ("cpu: 2 threads, OpenBLAS 0.3.21 ...").
  virtual std::string description() const = 0;

  // ---- memory ----
  virtual void* allocate_bytes(std::size_t bytes) = 0;
  virtual void free_bytes(void* pointer) noexcept = 0;
  virtual void upload_bytes(void* destination, const void* host_source, std::size_t bytes) = 0;
  virtual void download_bytes(void* host_destination, const void* source, std::size_t bytes) = 0;
  virtual void copy_bytes(void* destination, const void* source, std::size_t bytes) = 0;
  virtual void fill_zero_bytes(void* destination, std::size_t bytes) = 0;
  // Waits until every op issued so far has finished.
  virtual void synchronize() = 0;
  // Bytes of device memory in use on the backend's device, as its driver reports it (every
  // process and the CUDA context included); 0 where the backend works in host memory. What the
  // benchmark reports as peak device memory.
  virtual std::size_t device_memory_used() const { return 0; }
  // Bytes of device memory free now, as the driver reports it; 0 where the backend works in
  // host memory (its data needs no second copy). What an automatic data placement budgets from.
  virtual std::size_t device_memory_free() const { return 0; }

  // ---- staged uploads (the streaming loader, src/train/row_source.cpp) ----
  // Host memory that upload_async may read: page-locked on cuda, so the copy engine reads it
  // while kernels run; ordinary memory on cpu.
  virtual void* allocate_pinned_bytes(std::size_t bytes) = 0;
  virtual void free_pinned_bytes(void* pointer) noexcept = 0;
  // Copies of host data that overlap with the ops around them, in kUploadSlots groups: a group
  // is begin_uploads(slot), any number of upload_async(slot, ...), then use_uploads(slot).
  // begin_uploads waits (on the host) until the slot's previous group has read its host memory,
  // so the caller may then refill that memory; the group's copies run after every op issued
  // before begin_uploads, so they may overwrite device memory those ops read. Ops issued after
  // use_uploads wait for the group's copies; ops issued between begin_uploads and use_uploads
  // do not. The cpu backend copies at once.
  static constexpr int kUploadSlots = 2;
  virtual void begin_uploads(int slot) = 0;
  virtual void upload_async(int slot, void* destination, const void* pinned_source,
                            std::size_t bytes) = 0;
  virtual void use_uploads(int slot) = 0;

  // ---- captured ops (the training step as a CUDA graph) ----
  // Runs ops(), which issues ops on this backend, recording them instead of running them, and
  // returns the recording. Every argument is frozen at its value during capture, so what changes
  // from one replay to the next must be in backend memory that the ops read (written before
  // replay). Ops that wait for the device, read host memory or allocate (download_bytes,
  // upload_bytes, synchronize, gather_rows without a known nnz, batch_nonzeros, symmetric_eigen,
  // the staged uploads, allocate_bytes, allocate_pinned_bytes, and capture and replay themselves)
  // throw Error inside a capture, as does any growth of the backend's scratch memory, so one run
  // of the ops outside a capture must come first. An exception from ops ends the
  // capture and propagates. A recording stays valid while the memory it uses stays allocated.
  virtual std::unique_ptr<CapturedOps> capture(const std::function<void()>& ops) = 0;
  // Issues the recorded ops again, asynchronously like any op.
  virtual void replay(const CapturedOps& ops) = 0;

  // ---- dense and sparse products ----
  // How later gemm and gemm_bias_activation calls round their operands (MatmulPrecision; fp32
  // until set): tensor cores on cuda, an emulation on cpu (rounded copies of the operands, then
  // fp32 products). A captured call keeps the precision of its capture. spmm is always fp32.
  virtual void set_matmul_precision(MatmulPrecision precision) = 0;
  // c = alpha * op(a) * op(b) + beta * c, all row-major. With beta == 0, c's old contents are
  // never read (NaN in c does not propagate).
  virtual void gemm(Transpose transpose_a, Transpose transpose_b, float alpha, ConstDenseView a,
                    ConstDenseView b, float beta, DenseView c) = 0;
  // c = alpha * op(a) * b + beta * c with a sparse, b and c dense; the sparse side is never
  // densified. Transpose::yes computes aᵀ·b (the first layer's weight gradient).
  virtual void spmm(Transpose transpose_a, float alpha, CsrView a, ConstDenseView b, float beta,
                    DenseView c) = 0;
  // y = activation(op(a) * op(b) + bias): a dense layer's forward as one op, bias (y.cols floats,
  // broadcast over rows) may be null; y must not alias a or b. Here: gemm, then
  // bias_activation_forward. The cuda backend fuses the bias and relu into cublasLt's GEMM
  // epilogue (identity and relu; the other activations as here).
  virtual void gemm_bias_activation(Activation activation, Transpose transpose_a,
                                    Transpose transpose_b, ConstDenseView a, ConstDenseView b,
                                    const float* bias, DenseView y) {
    gemm(transpose_a, transpose_b, 1.0f, a, b, 0.0f, y);
    bias_activation_forward(activation, y, bias, y);
  }
  // The density (non-zeros over rows x cols) from which the first layer is faster on a batch
  // densified (csr_to_dense, then gemm) than through spmm, as measured on this backend
  // (kernels_bench's BM_first_layer); infinity where spmm is always taken.
  virtual double dense_first_layer_density() const = 0;

  // ---- fused element-wise ops ----
  // y = activation(z + bias) with bias broadcast over rows; y may alias z. A null z.data reads
  // as zeros: y = activation(bias) in every row (an output that depends on no input).
  virtual void bias_activation_forward(Activation activation, ConstDenseView z, const float* bias,
                                       DenseView y) = 0;
  // dz = dy * activation'(.) evaluated from the forward output y; bias_grad = column sums of dz.
  // dz may alias dy. bias_grad may be null when no bias gradient is wanted.
  virtual void activation_backward(Activation activation, ConstDenseView y, ConstDenseView dy,
                                   DenseView dz, float* bias_grad) = 0;
  // out[c] = scale * sum_r x(r, c): column sums (scale 1) or means (scale 1 / rows).
  virtual void column_sums(ConstDenseView x, float scale, float* out) = 0;

  // ---- float64 linear algebra (the PCA baseline, src/pca) ----
  // out = a as a dense matrix of a's shape: zeros where a has no entry, and entries that share a
  // row and a column summed (every CSR the library builds has unique columns within a row).
  virtual void csr_to_dense(CsrView a, DenseView out) = 0;
  // sum[i] += x[i] for i < n: float products of one row block added into a float64 total, so
  // the rounding of a float sum stays bounded by the block and does not grow with the rows.
  virtual void accumulate(const float* x, std::int64_t n, double* sum) = 0;
  // The eigen-decomposition of the symmetric n x n float64 matrix a (row-major; only the upper
  // triangle, j >= i, is read): eigenvalues[0..n) ascending, and row i of a overwritten by a unit
  // eigenvector of eigenvalues[i] (its sign is the solver's). LAPACK dsyevd on cpu, cuSOLVER
  // syevd on cuda. Waits for the device; throws Error when the solver does not converge.
  virtual void symmetric_eigen(std::int64_t n, double* a, double* eigenvalues) = 0;

  // ---- library size (math::transform_input, math::log_size_factor) ----
  // out[i] = transform(in[i]) for i < n: what the first layer reads. out may alias in.
  virtual void transform_values(InputTransform transform, const float* in, std::int64_t n,
                                float* out) = 0;
  // out[r] = log(max(1, sum of row r of batch)) - log_reference: each row's log size factor
  // against the reference library size, the rows summed in column order in float64.
  virtual void row_log_size_factors(CsrView batch, float log_reference, float* out) = 0;
  virtual void row_log_size_factors(ConstDenseView batch, float log_reference, float* out) = 0;
  // m(r, c) += offsets[r]: a per-row offset on a block of pre-activations.
  virtual void add_row_offsets(DenseView m, const float* offsets) = 0;

  // ---- lossless mode ----
  // out(r, j) = math::deterministic_output(layer, row r of in, row_offsets[r], j): one layer of
  // the decoder that compress and decompress share, bit for bit the same on every backend and
  // batch size (fixed summation order, no contraction into FMA, the activations' transcendentals
  // from basic operations). row_offsets may be null (no offsets).
  virtual void deterministic_layer(const DeterministicLayer& layer, ConstDenseView in,
                                   const float* row_offsets, DenseView out) = 0;

  // ---- batching ----
  // out[0..n) = a permutation of 0..n-1 that depends only on (seed, n), identical on every
  // backend.
  virtual void random_permutation(std::uint64_t seed, std::int64_t n, std::int64_t* out) = 0;
  // Builds the CSR matrix of rows source[row_ids[0]], ..., source[row_ids[count - 1]] in out and
  // returns its number of non-zeros. Throws Error if it exceeds out.nnz_capacity or a row id is
  // out of range.
  virtual std::int64_t gather_rows(CsrView source, const std::int64_t* row_ids,
                                   std::int64_t count, const CsrOutput& out) = 0;
  // The non-zeros of each batch that rows source[row_ids[0..count)] make when taken batch_rows
  // at a time (the last batch may be shorter): nnz_per_batch[b] (host memory,
  // ceil(count / batch_rows) entries) for the ids [b * batch_rows, (b + 1) * batch_rows). One
  // host round trip for a whole epoch's batches, so that each batch's gather_rows given its nnz
  // waits for nothing. Throws gather_rows' Error for a row id out of range.
  virtual void batch_nonzeros(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                              std::int64_t batch_rows, std::int64_t* nnz_per_batch) = 0;
  // gather_rows for a batch whose number of non-zeros is known to be at most max_nnz (its count
  // from batch_nonzeros, or out.nnz_capacity in a captured step, which serves every batch): the
  // same batch in out, its nnz in out.row_offsets[count], without waiting for the device. Throws
  // Error if max_nnz exceeds out.nnz_capacity. The row ids must lie in range, as batch_nonzeros
  // checked: the cpu backend throws gather_rows' Error for one that does not, or when the batch
  // holds more than max_nnz; the cuda backend, which could check neither without waiting,
  // gathers an out-of-range id as an empty row and stops writing at out.nnz_capacity.
  virtual void gather_rows(CsrView source, const std::int64_t* row_ids, std::int64_t count,
                           std::int64_t max_nnz, const CsrOutput& out) = 0;
  // The dense path: out (count x source.cols) = rows source[row_ids[0]], ... in that order. Row
  // ids must lie in [0, source.rows): the cpu backend throws gather_rows' message for one that
  // does not; the cuda backend, which could check only by waiting for the device, writes a zero
  // row for it instead of reading out of bounds.
  virtual void gather_dense_rows(ConstDenseView source, const std::int64_t* row_ids,
                                 std::int64_t count, DenseView out) = 0;

  // ---- losses and penalties (per-element math in src/math/loss_math.hpp) ----
  // Reconstruction loss of the output y against the target of the same shape, read as CSR and
  // never densified: writes d(loss)/dy to grad and each row's share of the loss to row_loss[r],
  // so that the batch loss is the sum of row_loss. Every loss averages its element terms
  // (math::loss_term) over all rows x cols entries: mse, mae, bce (y read as logits), poisson (y
  // read as log-rates; the negative log-likelihood in nats), weighted_mse
  // (params.zero_weight on the entries whose target is zero) and huber (params.huber_delta);
  // mse_cosine adds params.cosine_weight times the mean over rows of 1 - cos(y_r, x_r). grad
  // must not alias y.
  virtual void reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                   CsrView target, DenseView grad, float* row_loss) = 0;
  // L1 activity penalty weight * (1/rows) * sum |a|: adds its gradient to grad and writes its
  // value to *loss.
  virtual void l1_activity_penalty(float weight, ConstDenseView a, DenseView grad,
                                   float* loss) = 0;
  // KL sparsity penalty beta * sum_c KL(rho || rho_hat_c) of the sparse autoencoder: a holds a
  // sigmoid layer's activations, read as probabilities, and rho_hat_c is the batch mean of
  // a(., c). Adds its gradient with respect to a, beta/rows * (-rho/rho_hat_c +
  // (1-rho)/(1-rho_hat_c)), to grad (the layer's backward then applies sigmoid'), and writes its
  // value to *loss.
  virtual void kl_sparsity_penalty(float rho, float beta, ConstDenseView a, DenseView grad,
                                   float* loss) = 0;
  // ---- rate-aware latents (ModelConfig::latent_prior; src/math/loss_math.hpp) ----
  // With noise_seed null, z(r, c) = math::latent_code(z(r, c)): the integer codes a rate-aware
  // model is used with. Otherwise z(r, c) += math::latent_noise(*noise_seed, r * z.cols + c),
  // the relaxation of rounding that training uses, with the seed read from backend memory when
  // the op runs (so that a captured step draws each step's own noise).
  virtual void quantize_latents(DenseView z, const std::uint64_t* noise_seed) = 0;
  // The latents' code length under their factorised prior, weight * (1/rows) * the sum of
  // math::latent_rate_term(z(r, c), prior[c], prior[cols + c]) values (prior: the locations,
  // then the log-scales, 2 * z.cols floats): adds its gradient with respect to z to grad, writes
  // its gradient with respect to prior to prior_grad (2 * z.cols floats) and its value to *loss.
  // A null grad.data or prior_grad skips that gradient (the value alone: a validation loss).
  virtual void latent_rate_penalty(float weight, const float* prior, ConstDenseView z,
                                   DenseView grad, float* prior_grad, float* loss) = 0;
  // ---- sparse latents (ModelConfig::latent_sparsity; src/math/sparsity_math.hpp) ----
  // Both select by math::selection_key, largest first, ties to the lower index, so that the
  // backends keep the same entries; padding (ld > cols) is neither read nor written.
  // TopK: keeps the k largest entries of each row of z in place and zeroes the others,
  // 1 <= k <= z.cols (k = z.cols keeps all).
  virtual void topk_rows(std::int64_t k, DenseView z) = 0;
  // BatchTopK: keeps the k * z.rows largest entries of the whole of z in place (ties to the lower
  // row, then column) and zeroes the others, 1 <= k <= z.cols, z.rows * z.cols < 2^32. threshold
  // (backend memory, or null): math::updated_threshold(*threshold, m) with m the smallest kept
  // entry above 0, when one is; found and written on the device, without a host round trip.
  virtual void batch_topk(std::int64_t k, DenseView z, float* threshold) = 0;
  // z(r, c) = math::keep_above(z(r, c), *threshold) with threshold in backend memory: BatchTopK
  // at inference.
  virtual void threshold_latents(DenseView z, const float* threshold) = 0;
  // AuxK (TrainConfig::aux_k): the latents' dead-step counters after a training forward whose
  // selected code is z, dead_steps[c] = math::next_dead_steps(dead_steps[c], column c of z holds
  // a non-zero) for the z.cols counters (backend memory).
  virtual void latent_dead_steps(ConstDenseView z, std::int32_t* dead_steps) = 0;
  // The latent layer's backward with AuxK, in place of activation_backward: in each row, the
  // aux_k latents whose dead_steps exceed dead_after with the largest pre-selection values pre
  // (math::selection_key, ties to the lower index) are the row's auxiliary latents, and
  // dz(r, c) = math::auxk_gradient(dz(r, c), z(r, c), auxiliary, aux_weight): the gradient where
  // z (the selected code) is positive, aux_weight times it on the auxiliary latents
  // (straight-through: the selection and relu do not mask it), 0 elsewhere. bias_grad[c] (z.cols
  // floats) takes the sum of column c of the result, as activation_backward writes it.
  // 0 <= aux_k <= z.cols; pre, z and dz share a shape.
  virtual void auxk_backward(std::int64_t aux_k, float aux_weight, std::int32_t dead_after,
                             const std::int32_t* dead_steps, ConstDenseView pre, ConstDenseView z,
                             DenseView dz, float* bias_grad) = 0;
  // *out = sum of x[i]^2 over n floats (the squared global gradient norm for clipping).
  virtual void sum_of_squares(const float* x, std::int64_t n, float* out) = 0;
  // x[i] *= factor over n floats: a rank's gradient weighted by its share of the global batch
  // before the ranks' gradients are summed (data-parallel training).
  virtual void scale_values(float* x, std::int64_t n, float factor) = 0;

  // The dense path: reconstruction_loss against a dense target of y's shape, with the same
  // normalisation and per-element math.
  virtual void reconstruction_loss(LossKind kind, const LossParams& params, ConstDenseView y,
                                   ConstDenseView target, DenseView grad, float* row_loss) = 0;

  // ---- optimizer ----
  // One fused update of n parameters in a flat buffer: params -= update(grads), with the moments
  // (or the sgd velocity, in first_moment) kept in their own flat buffers of n floats.
  // second_moment may be null for sgd. When config.max_grad_norm > 0, grad_sum_squares points to
  // the squared norm of grads (sum_of_squares) in backend memory, and every gradient is scaled by
  // min(1, max_grad_norm / norm) first; reading it on the device keeps the step free of host
  // round trips. With config.skip_nonfinite it must be given too, and a norm that is NaN or Inf
  // leaves parameters and moments unchanged.
  // step_scalars, when not null, points to backend memory whose StepScalars replace
  // config.learning_rate and the bias corrections of step: what a captured step reads.
  virtual void optimizer_step(const OptimizerConfig& config, std::int64_t step, std::int64_t n,
                              float* params, const float* grads, float* first_moment,
                              float* second_moment, const float* grad_sum_squares,
                              const StepScalars* step_scalars) = 0;
  void optimizer_step(const OptimizerConfig& config, std::int64_t step, std::int64_t n,
                      float* params, const float* grads, float* first_moment, float* second_moment,
                      const float* grad_sum_squares) {
    optimizer_step(config, step, n, params, grads, first_moment, second_moment, grad_sum_squares,
                   nullptr);
  }
  // Each row of m rescaled to unit L2 norm, m(r, c) = math::unit_norm_scaled(m(r, c),
  // sum of m(r, .)^2 in double): the decoder's dictionary after each optimizer step
  // (TrainConfig::decoder_norm), latent j's vector being row j of the decoder's first in x out
  // weights. A row of zeros stays zeros (no direction to keep, and no NaN).
  virtual void unit_norm_rows(DenseView m) = 0;

 protected:
  Backend() = default;
};

// True when the CUDA runtime answers with at least one device (always false in a build without
// CUDA). reason, when given, receives why not.
bool cuda_device_available(std::string* reason = nullptr);

// Creates the backend asked for. automatic takes cuda when a device answers, else cpu, and then
// writes a one-line notice to notice (when given). Asking for cuda where none answers throws
// Error with the reason.
std::unique_ptr<Backend> make_backend(BackendChoice choice, std::string* notice = nullptr);

// What this build contains: version, compiler, CUDA toolkit and architectures, BLAS.
std::string build_info();

}  // namespace sparseae
