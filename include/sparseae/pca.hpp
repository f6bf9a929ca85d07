#pragma once
// PCA, the baseline every report sets beside the autoencoder: "would PCA have done as well?".
//
// The fit never densifies the data. The covariance comes from Xᵀ X summed over row blocks on the
// backend (a CSR block densified only as SpMM's dense operand; float products per block, added
// into a float64 total), minus N·μμᵀ in float64; its symmetric eigen-decomposition runs on the
// backend (LAPACK dsyevd on cpu, cuSOLVER syevd on cuda). Wide data (more than
// kRandomizedPcaMaxCovarianceColumns columns) takes a randomized range finder instead (Halko,
// Martinsson & Tropp 2011), which never forms the D x D covariance.
//
// A fitted PCA is an ordinary model: the tied linear autoencoder D-k-D with identity activations,
// encoder weights W = componentsᵀ and bias -μ·W, decoder Wᵀ and bias μ. Its checkpoint is an
// ordinary checkpoint, so sae encode, decode and eval (and TrainedModel) run it unchanged:
// codes = (x - μ)·W, reconstruction = codes·Wᵀ + μ, counts by rounding and clipping at zero.
#include <cstdint>
#include <string>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/compare.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae {

enum class PcaSolver : std::int32_t { automatic, covariance, randomized };
// "auto" | "covariance" | "randomized"; throws Error otherwise.
PcaSolver parse_pca_solver(const std::string& name);
const char* pca_solver_name(PcaSolver solver);

// automatic takes the covariance solver up to this many columns and the randomized one above:
// the covariance costs D² float64 on the backend and its eigen-decomposition O(D³), 3·10^11
// flops and 64 MiB at 4096 columns, where the randomized solver's cost grows with D·k.
constexpr std::int64_t kRandomizedPcaMaxCovarianceColumns = 2048;

struct PcaConfig {
  std::int64_t components = 32;  // k, in [1, columns]
  PcaSolver solver = PcaSolver::automatic;
  // Rows multiplied per backend call. Products of integer counts below 2^12 summed over a block
  // stay exact in float while block_rows · max_count² < 2^24 (4096 rows of counts up to 64).
  std::int64_t block_rows = 4096;
  // randomized: the range finder's extra columns, subspace (power) iterations and the seed of
  // its random test matrix. Each iteration is one pass over the rows; the subspace error shrinks
  // like (λ_{k+oversampling+1} / λ_k)^(2 iterations + 1), and 7 iterations (scikit-learn's
  // choice for few components) brought topic counts within 6e-6 rad of the exact subspace where
  // 4 left 6e-4 (measured: tests/pca_test.cpp).
  std::int64_t oversampling = 10;
  int power_iterations = 7;
  std::uint64_t seed = 1;
};

struct PcaModel {
  std::int64_t rows = 0;          // rows fitted on
  std::vector<float> mean;        // per column (D)
  std::vector<float> components;  // k x D row-major: row i is the i-th principal axis, unit
                                  // length, its entry of largest magnitude positive
  std::vector<double> explained_variance;    // k, descending: the variance along each axis
                                             // (covariance eigenvalue, divisor N - 1)
  double total_variance = 0;                 // sum of the column variances (divisor N - 1)
  PcaSolver solver = PcaSolver::covariance;  // the one that ran

  std::int64_t input_dim() const { return static_cast<std::int64_t>(mean.size()); }
  std::int64_t component_count() const {
    return static_cast<std::int64_t>(explained_variance.size());
  }
  // explained_variance / total_variance, per component.
  std::vector<double> explained_variance_ratio() const;
};

// The solver automatic stands for at this width; other choices come back unchanged.
PcaSolver resolve_pca_solver(PcaSolver solver, std::int64_t columns);

// Fits on every row of data (raw values). Throws Error for fewer than 2 rows, components outside
// [1, columns], block_rows < 1, or a negative oversampling or power_iterations.
PcaModel fit_pca(Backend& backend, const HostCsr& data, const PcaConfig& config);
PcaModel fit_pca(Backend& backend, const HostDense& data, const PcaConfig& config);

// The PCA as a checkpointable model (see the top of this file). data_source, val_fraction and
// seed say which rows it was fitted on, so that sae eval rebuilds the same validation rows.
RunConfig pca_run_config(const PcaModel& model, const std::string& data_source, double val_fraction,
                         std::uint64_t seed);
// The parameters of pca_run_config's model, in its ModelLayout.
std::vector<float> pca_parameters(const PcaModel& model);
// A checkpoint of pca_run_config's model with those parameters: no optimizer state (zero
// moments, the parameters as the best), epoch 0; what sae pca and the Python package save.
Checkpoint pca_checkpoint(const RunConfig& run, const std::vector<float>& parameters);

// Starts a model with linear skips (ModelConfig::linear_skip, latent activation identity) at
// PCA of its training rows (Trainer::training_counts, however they were split), before
// its first step; returns that PCA. The encoder: the input skip holds the principal axes of the
// rows as the encoder sees them (after the trainer's scale and input transform), the latent bias
// -μ·W, the branch's last layer zero: the step-0 codes are PCA's. The decoder, for losses whose
// output is the count itself (mse, mae, huber, weighted_mse, mse_cosine with an identity output):
// the output skip is the least-squares linear map from those codes to the rows (scaled counts),
// the output bias their mean, the branch's last layer zero. Without an input transform that map
// is the axes transposed and the step-0 model is PCA itself (encode and reconstruction). For the
// count heads, the decoder's branch starts as initialised and its skip at zero. Throws Error when
// the trainer has taken a step or the model has no skip or a non-identity latent.
PcaModel anchor_at_pca(Backend& backend, Trainer& trainer);

// The baseline sae train and sae compare report: PCA with `components` components fitted on the
// training rows of split_rows(data.rows, val_fraction, seed) and measured, decoded by round, on
// its validation rows (the rows the autoencoder is measured on). The row has pca set, loss mse,
// no epochs, seconds = the fit's time and samples_per_second = training rows / seconds, the
// detail of its metrics, and the first sample_rows validation rows decoded in sample_counts.
ComparisonRow pca_baseline(Backend& backend, const HostCsr& data, std::int64_t components,
                           double val_fraction, std::uint64_t seed, std::int64_t sample_rows = 0);

}  // namespace sparseae
