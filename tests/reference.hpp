#pragma once
// Float64 reference implementations of every Backend op, written from the math stated in
// backend.hpp and ops.hpp. They deliberately share no code with src/math/op_math.hpp: a mistake
// there would otherwise sit in both the backend and its check. Also the seeded random inputs
// the conformance tests feed to a backend and to these references alike.
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "sparseae/csr.hpp"
#include "sparseae/matrix.hpp"
#include "sparseae/ops.hpp"

namespace sparseae::reference {

// Row-major matrix in host memory: element (r, c) at data[r * ld + c], ld >= cols. The padding
// columns [cols, ld) of each row are part of data, so tests can see whether an op touched them.
template <typename T>
struct HostMatrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t ld = 0;
  std::vector<T> data;

  HostMatrix() = default;
  HostMatrix(std::int64_t rows_, std::int64_t cols_, std::int64_t ld_, T fill)
      : rows(rows_), cols(cols_), ld(ld_), data(static_cast<std::size_t>(rows_ * ld_), fill) {}

  T& operator()(std::int64_t r, std::int64_t c) { return data[static_cast<std::size_t>(r * ld + c)]; }
  const T& operator()(std::int64_t r, std::int64_t c) const {
    return data[static_cast<std::size_t>(r * ld + c)];
  }
};

using FloatMatrix = HostMatrix<float>;
using DoubleMatrix = HostMatrix<double>;

// What tests write into outputs before an op, and into padding, so that an element the op failed
// to write (or wrote where it must not) shows up.
inline constexpr float kPoison = std::numeric_limits<float>::quiet_NaN();

// ---- random inputs (all draws from the raw 64-bit output of mt19937_64, which the standard
// fixes, so the same seed gives the same inputs with any standard library) ----

// Uniform in [low, high).
double uniform(std::mt19937_64& rng, double low, double high);
// Uniform in [low, high], both inclusive.
std::int64_t uniform_int(std::mt19937_64& rng, std::int64_t low, std::int64_t high);

std::vector<float> random_floats(std::mt19937_64& rng, std::int64_t n, float low, float high);
// Random sign, magnitude 10^u with u uniform in [min_exponent, max_exponent): values spread over
// many orders of magnitude, as gradients and weights are.
std::vector<float> random_log_uniform_floats(std::mt19937_64& rng, std::int64_t n,
                                             double min_exponent, double max_exponent);

// rows x cols uniform in [low, high), with leading dimension ld (0: ld = cols) and kPoison in the
// padding.
FloatMatrix random_matrix(std::mt19937_64& rng, std::int64_t rows, std::int64_t cols, float low,
                          float high, std::int64_t ld = 0);
// rows x cols, every element (padding included) equal to value.
FloatMatrix filled_matrix(std::int64_t rows, std::int64_t cols, float value, std::int64_t ld = 0);

// A rows x cols CSR matrix: a row is empty with probability empty_row_fraction, otherwise each
// column is present with probability density; column indices ascend within a row; values are
// count-like integers in [1, max_count], small ones most frequent.
HostCsr random_csr(std::mt19937_64& rng, std::int64_t rows, std::int64_t cols, double density,
                   double empty_row_fraction, int max_count = 20);

// Element-wise absolute values (padding kept as it is). Running a reference product on absolute
// values gives the sum of |terms| that bounds its rounding error.
FloatMatrix absolute(const FloatMatrix& m);
HostCsr absolute(const HostCsr& m);

// ---- the ops ----

// alpha * op(a) * op(b) + beta * c; with beta == 0, c is not read.
DoubleMatrix gemm(Transpose transpose_a, Transpose transpose_b, double alpha, const FloatMatrix& a,
                  const FloatMatrix& b, double beta, const FloatMatrix& c);

// alpha * op(a) * b + beta * c for sparse a; with beta == 0, c is not read.
DoubleMatrix spmm(Transpose transpose_a, double alpha, const HostCsr& a, const FloatMatrix& b,
                  double beta, const FloatMatrix& c);

// Leaky relu's slope for negative inputs.
inline constexpr double kLeakyReluSlope = 0.01;

double activate(Activation activation, double x);
// d activation / dz expressed through the output y = activation(z).
double derivative_from_output(Activation activation, double y);

// activation(z + bias) with bias (bias == nullptr: none) broadcast over rows.
DoubleMatrix bias_activation_forward(Activation activation, const FloatMatrix& z,
                                     const std::vector<float>* bias);

struct BackwardResult {
  DoubleMatrix dz;
  std::vector<double> bias_grad;  // column sums of dz
};
BackwardResult activation_backward(Activation activation, const FloatMatrix& y,
                                   const FloatMatrix& dy);

// scale * (sum over rows of x), per column.
std::vector<double> column_sums(const FloatMatrix& x, double scale);

// 0..n-1 sorted by (key(seed, i), i), key(seed, i) = splitmix64(splitmix64(seed) xor i): the
// permutation every backend must draw.
std::vector<std::int64_t> random_permutation(std::uint64_t seed, std::int64_t n);

// The CSR matrix made of rows source[row_ids[0]], source[row_ids[1]], ...
HostCsr gather_rows(const HostCsr& source, const std::vector<std::int64_t>& row_ids);

// ---- losses and penalties (backend.hpp) ----

// The same matrix in double precision (padding dropped).
DoubleMatrix to_double(const FloatMatrix& m);

// Every result below comes with a magnitude of the same shape: the sum of the absolute values of
// the parts a float evaluation adds or subtracts to reach it (for a non-zero target, the
// zero-target term and the full term both; for bce, softplus(y) and x*y apart). Rounding error is
// bounded relative to it, so that cancellation cannot make a tolerance meaningless.
struct LossResult {
  DoubleMatrix grad;                   // d(batch loss) / dy
  std::vector<double> row_loss;        // each row's share; the batch loss is their sum
  DoubleMatrix grad_magnitude;
  std::vector<double> row_loss_magnitude;
};

// The Poisson rate of log-rate eta: e^eta up to 30, and above it the tangent there,
// e^30 * (1 + (eta - 30)) (see src/math/loss_math.hpp); and its derivative.
double poisson_rate(double eta);
double poisson_rate_slope(double eta);

// The reconstruction loss of y against the sparse target, from the definitions. Every loss
// averages its element terms over rows * cols entries, with d = y - x:
//   mse d^2; mae |d|; bce softplus(y) - x*y (y a logit);
//   poisson rate(y) - x*y + lgamma(x + 1) (y a log-rate: the negative log-likelihood in nats);
//   weighted_mse d^2 where x != 0 and params.zero_weight * y^2 where x = 0;
//   huber 0.5 d^2 for |d| <= delta, else delta * (|d| - delta/2), delta = params.huber_delta;
// mse_cosine is mse plus params.cosine_weight * (1/rows) * sum over rows of (1 - cos(y_r, x_r)),
// where a row with y_r = 0 or x_r = 0 has no direction: its cosine loss is 1 and its cosine
// gradient 0.
LossResult reconstruction_loss(LossKind kind, const LossParams& params, const DoubleMatrix& y,
                               const HostCsr& target);
LossResult reconstruction_loss(LossKind kind, const LossParams& params, const FloatMatrix& y,
                               const HostCsr& target);

// One entry of a loss with several outputs per entry (nb, zinb, hurdle; output_heads(kind) of
// them in h), from the definitions in long double: nb's lgamma(x + theta) - lgamma(theta) as
// the sum of log(theta + j) over j < x (x an integer), with analytic gradients. The magnitudes
// bound the backends' rounding (a float result of a double evaluation). reconstruction_loss
// reads y as rows x (K * cols) for these losses, head-major, and returns grad of that shape.
struct HeadEntryLoss {
  double value = 0;
  double value_magnitude = 0;
  double grad[3] = {0, 0, 0};
  double grad_magnitude[3] = {0, 0, 0};
};
HeadEntryLoss head_entry_loss(LossKind kind, const double* h, double x);

// LossParams with only the cosine weight set (the others at their defaults).
LossParams cosine_params(double cosine_weight);

struct PenaltyResult {
  DoubleMatrix grad;  // grad_in plus the penalty's gradient
  double loss = 0;
  DoubleMatrix grad_magnitude;
  double loss_magnitude = 0;
};

// weight * (1/rows) * sum |a|; its gradient weight/rows * sign(a) (0 at a = 0) added to grad_in.
PenaltyResult l1_activity_penalty(double weight, const DoubleMatrix& a,
                                  const DoubleMatrix& grad_in);

// rho_hat below this is raised to it, and above 1 minus it lowered to it, before KL and its
// gradient are evaluated (the gradient is the formula at the clamped value).
inline constexpr double kKlClamp = 1e-6;

// beta * sum_c KL(rho || rho_hat_c) for a sigmoid layer's activations a, read as probabilities:
// rho_hat_c = mean over rows of a(r, c), clamped; its gradient with respect to a(r, c),
// beta/rows * (-rho/rho_hat_c + (1-rho)/(1-rho_hat_c)), the same for every row of a column, added
// to grad_in.
PenaltyResult kl_sparsity_penalty(double rho, double beta, const DoubleMatrix& a,
                                  const DoubleMatrix& grad_in);

// ---- rate-aware latents (Backend::quantize_latents, Backend::latent_rate_penalty) ----

// The integer code of z: the nearest integer, ties to even, clamped to [-2^24, 2^24]; NaN gives
// -2^24.
double latent_code(double z);
// The training noise of element index under seed: the top 24 bits of SplitMix64(seed ^
// SplitMix64(index)) over 2^24, minus 1/2 (SplitMix64: the finaliser of Steele et al.'s
// generator, state advanced by the golden-ratio increment once).
double latent_noise(std::uint64_t seed, std::uint64_t index);

struct RatePenaltyResult {
  DoubleMatrix grad;               // grad_in plus the penalty's gradient
  std::vector<double> prior_grad;  // locations, then log-scales
  double loss = 0;
  DoubleMatrix grad_magnitude;
  std::vector<double> prior_grad_magnitude;
  double loss_magnitude = 0;
};
// weight * (1/rows) * sum over elements of -log p, p the mass of the logistic density with
// location prior[c] and scale e^b (b = prior[cols + c] clamped to [-8, 8]) on [z - 1/2, z + 1/2],
// evaluated as a difference of sigmoids on the side of the density z lies on; its gradients by
// differentiating that difference (the log-scale's is 0 where b was clamped).
RatePenaltyResult latent_rate_penalty(double weight, const std::vector<double>& prior,
                                      const DoubleMatrix& z, const DoubleMatrix& grad_in);

// ---- sparse latents (Backend::topk_rows, batch_topk, threshold_latents) ----

// The order the selections keep entries in: the larger value first, +0 before -0, and between
// equal values the lower index (a row's column; the batch's row, then column).
// z with each row's k largest entries kept and the others 0.
FloatMatrix topk_rows(std::int64_t k, const FloatMatrix& z);
struct BatchTopKResult {
  FloatMatrix z;             // the k * rows largest entries of z kept, the others 0
  double smallest_positive;  // the smallest kept entry above 0; infinity when none is
};
BatchTopKResult batch_topk(std::int64_t k, const FloatMatrix& z);
// The running threshold after a batch: a negative current (not yet estimated) takes the batch's
// smallest kept positive entry; otherwise current + 0.01 * (batch - current).
double updated_threshold(double current, double batch_minimum);
// AuxK: each counter 0 where column c of z holds a non-zero, else one more (saturating at
// 2^31 - 1).
std::vector<std::int32_t> latent_dead_steps(const FloatMatrix& z,
                                            std::vector<std::int32_t> dead_steps);
struct AuxKBackwardResult {
  DoubleMatrix dz;  // dz where z > 0, aux_weight * dz on the auxiliary latents, else 0
  std::vector<double> bias_grad;  // the column sums of dz
};
// A row's auxiliary latents: the aux_k largest values of pre among the columns whose counter
// exceeds dead_after, in topk_rows's order.
AuxKBackwardResult auxk_backward(std::int64_t aux_k, double aux_weight, std::int32_t dead_after,
                                 const std::vector<std::int32_t>& dead_steps,
                                 const FloatMatrix& pre, const FloatMatrix& z,
                                 const FloatMatrix& dz);
// z(r, c) where it is above the threshold, else 0.
FloatMatrix threshold_latents(const FloatMatrix& z, double threshold);

// Sum of x[i]^2.
double sum_of_squares(const std::vector<float>& x);
// Each row of m divided by its L2 norm; a row of zeros stays zeros.
DoubleMatrix unit_norm_rows(const FloatMatrix& m);

// min(1, max_norm / sqrt(sum_squares)): the factor that clips a gradient of that squared norm.
double clip_scale(double max_norm, double sum_squares);

// State of one flat parameter buffer: moments of adam/adamw, or the sgd velocity in
// first_moment (second_moment then unused).
struct OptimizerState {
  std::vector<double> params;
  std::vector<double> first_moment;
  std::vector<double> second_moment;
};
// Update number step (1 for the first) of every parameter, in place. With
// config.max_grad_norm > 0, every gradient is first multiplied by
// clip_scale(max_grad_norm, sum of grads^2), the norm taken here in double.
void optimizer_step(const OptimizerConfig& config, std::int64_t step,
                    const std::vector<double>& grads, OptimizerState& state);

// ---- float64 linear algebra and PCA ----

// The eigenpairs of a symmetric n x n matrix (row-major) by cyclic Jacobi rotations (Golub & Van
// Loan, symmetric Schur decomposition): values ascending, row i of vectors (n x n) the unit
// eigenvector of values[i].
struct SymmetricEigen {
  std::vector<double> values;
  std::vector<double> vectors;
};
SymmetricEigen symmetric_eigen(std::vector<double> a, std::int64_t n);

// PCA of the rows of x from the definitions, in float64: the mean, the covariance (divisor
// N - 1) formed densely, and its k leading eigenvectors (rows of components, k x D, descending).
struct Pca {
  std::vector<double> mean;
  std::vector<double> components;
  std::vector<double> explained_variance;  // the k leading covariance eigenvalues
  double total_variance = 0;               // the covariance's trace
};
Pca pca(const HostCsr& x, std::int64_t k);

// Mean squared error per entry of reconstructing the rows of x from their projection on the
// components (rows, k x D, orthonormal) around mean: x ≈ mean + (x - mean) Vᵀ V.
double pca_reconstruction_mse(const HostCsr& x, const std::vector<double>& mean,
                              const std::vector<double>& components, std::int64_t k);

// The cosines of the principal angles between the row spaces of a and b (each k x D with
// orthonormal rows), ascending: the singular values of a bᵀ. 1 for every angle when the spaces
// coincide.
std::vector<double> principal_angle_cosines(const std::vector<double>& a,
                                            const std::vector<double>& b, std::int64_t k,
                                            std::int64_t d);

}  // namespace sparseae::reference
