#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

namespace sparseae::reference {

namespace {

std::int64_t effective_ld(std::int64_t cols, std::int64_t ld) { return ld == 0 ? cols : ld; }

// Element (i, j) of op(m).
double op_element(Transpose transpose, const FloatMatrix& m, std::int64_t i, std::int64_t j) {
  return transpose == Transpose::yes ? m(j, i) : m(i, j);
}

std::int64_t op_rows(Transpose transpose, const FloatMatrix& m) {
  return transpose == Transpose::yes ? m.cols : m.rows;
}
std::int64_t op_cols(Transpose transpose, const FloatMatrix& m) {
  return transpose == Transpose::yes ? m.rows : m.cols;
}

void require_shapes(bool ok, const char* op) {
  if (!ok) throw std::invalid_argument(std::string("reference ") + op + ": shapes do not match");
}

// Adds beta * c to result, without reading c when beta == 0.
void add_scaled(DoubleMatrix& result, double beta, const FloatMatrix& c) {
  if (beta == 0.0) return;
  for (std::int64_t i = 0; i < result.rows; ++i)
    for (std::int64_t j = 0; j < result.cols; ++j) result(i, j) += beta * c(i, j);
}

// One output of SplitMix64 (Steele, Lea & Flood 2014) for the generator state x.
std::uint64_t splitmix64(std::uint64_t x) {
  std::uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

double uniform(std::mt19937_64& rng, double low, double high) {
  const double unit = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // 53 random bits in [0, 1)
  return low + (high - low) * unit;
}

std::int64_t uniform_int(std::mt19937_64& rng, std::int64_t low, std::int64_t high) {
  const auto span = static_cast<std::uint64_t>(high - low) + 1;
  return low + static_cast<std::int64_t>(rng() % span);  // bias below 2^-40 for test-sized spans
}

std::vector<float> random_floats(std::mt19937_64& rng, std::int64_t n, float low, float high) {
  std::vector<float> values(static_cast<std::size_t>(n));
  for (float& v : values) v = static_cast<float>(uniform(rng, low, high));
  return values;
}

std::vector<float> random_log_uniform_floats(std::mt19937_64& rng, std::int64_t n,
                                             double min_exponent, double max_exponent) {
  std::vector<float> values(static_cast<std::size_t>(n));
  for (float& v : values) {
    const double magnitude = std::pow(10.0, uniform(rng, min_exponent, max_exponent));
    v = static_cast<float>(rng() & 1 ? magnitude : -magnitude);
  }
  return values;
}

FloatMatrix random_matrix(std::mt19937_64& rng, std::int64_t rows, std::int64_t cols, float low,
                          float high, std::int64_t ld) {
  FloatMatrix m(rows, cols, effective_ld(cols, ld), kPoison);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) m(r, c) = static_cast<float>(uniform(rng, low, high));
  return m;
}

FloatMatrix filled_matrix(std::int64_t rows, std::int64_t cols, float value, std::int64_t ld) {
  return FloatMatrix(rows, cols, effective_ld(cols, ld), value);
}

HostCsr random_csr(std::mt19937_64& rng, std::int64_t rows, std::int64_t cols, double density,
                   double empty_row_fraction, int max_count) {
  HostCsr m;
  m.rows = rows;
  m.cols = cols;
  m.row_offsets.assign(1, 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    if (uniform(rng, 0.0, 1.0) >= empty_row_fraction) {
      for (std::int64_t c = 0; c < cols; ++c) {
        if (uniform(rng, 0.0, 1.0) >= density) continue;
        // Geometric-like counts: each further unit with probability 1/2, capped at max_count.
        int count = 1;
        while (count < max_count && (rng() & 1)) ++count;
        m.col_indices.push_back(static_cast<ColIndex>(c));
        m.values.push_back(static_cast<float>(count));
      }
    }
    m.row_offsets.push_back(static_cast<RowOffset>(m.values.size()));
  }
  return m;
}

FloatMatrix absolute(const FloatMatrix& m) {
  FloatMatrix result = m;
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = 0; c < m.cols; ++c) result(r, c) = std::fabs(m(r, c));
  return result;
}

HostCsr absolute(const HostCsr& m) {
  HostCsr result = m;
  for (float& v : result.values) v = std::fabs(v);
  return result;
}

DoubleMatrix gemm(Transpose transpose_a, Transpose transpose_b, double alpha, const FloatMatrix& a,
                  const FloatMatrix& b, double beta, const FloatMatrix& c) {
  const std::int64_t inner = op_cols(transpose_a, a);
  require_shapes(inner == op_rows(transpose_b, b) && op_rows(transpose_a, a) == c.rows &&
                     op_cols(transpose_b, b) == c.cols,
                 "gemm");
  DoubleMatrix result(c.rows, c.cols, c.cols, 0.0);
  for (std::int64_t i = 0; i < c.rows; ++i)
    for (std::int64_t j = 0; j < c.cols; ++j) {
      double sum = 0.0;
      for (std::int64_t p = 0; p < inner; ++p)
        sum += op_element(transpose_a, a, i, p) * op_element(transpose_b, b, p, j);
      result(i, j) = alpha * sum;
    }
  add_scaled(result, beta, c);
  return result;
}

DoubleMatrix spmm(Transpose transpose_a, double alpha, const HostCsr& a, const FloatMatrix& b,
                  double beta, const FloatMatrix& c) {
  const std::int64_t a_rows = transpose_a == Transpose::yes ? a.cols : a.rows;
  const std::int64_t a_cols = transpose_a == Transpose::yes ? a.rows : a.cols;
  require_shapes(a_cols == b.rows && a_rows == c.rows && b.cols == c.cols, "spmm");
  DoubleMatrix result(c.rows, c.cols, c.cols, 0.0);
  // Entry (r, k) of a contributes a(r, k) * b(k, :) to result row r, or, transposed,
  // a(r, k) * b(r, :) to result row k.
  for (std::int64_t r = 0; r < a.rows; ++r)
    for (RowOffset e = a.row_offsets[r]; e < a.row_offsets[r + 1]; ++e) {
      const std::int64_t k = a.col_indices[e];
      const double value = alpha * a.values[e];
      const std::int64_t out_row = transpose_a == Transpose::yes ? k : r;
      const std::int64_t in_row = transpose_a == Transpose::yes ? r : k;
      for (std::int64_t j = 0; j < c.cols; ++j) result(out_row, j) += value * b(in_row, j);
    }
  add_scaled(result, beta, c);
  return result;
}

double activate(Activation activation, double x) {
  switch (activation) {
    case Activation::identity:
      return x;
    case Activation::relu:
      return x > 0.0 ? x : 0.0;
    case Activation::leaky_relu:
      return x > 0.0 ? x : kLeakyReluSlope * x;
    case Activation::sigmoid:
      return 1.0 / (1.0 + std::exp(-x));  // exp overflow gives inf and the right limit, 0
    case Activation::tanh:
      return std::tanh(x);
    case Activation::softplus:
      // log(1 + e^x); for large x, e^x overflows, so use x + log(1 + e^-x).
      return x > 0.0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  }
  throw std::invalid_argument("reference activate: unknown activation");
}

double derivative_from_output(Activation activation, double y) {
  switch (activation) {
    case Activation::identity:
      return 1.0;
    case Activation::relu:
      return y > 0.0 ? 1.0 : 0.0;
    case Activation::leaky_relu:
      return y > 0.0 ? 1.0 : kLeakyReluSlope;
    case Activation::sigmoid:
      return y * (1.0 - y);
    case Activation::tanh:
      return 1.0 - y * y;
    case Activation::softplus:
      // y = log(1 + e^z) gives e^-y = 1 / (1 + e^z), and softplus'(z) = sigmoid(z) = 1 - e^-y.
      return 1.0 - std::exp(-y);
  }
  throw std::invalid_argument("reference derivative_from_output: unknown activation");
}

DoubleMatrix bias_activation_forward(Activation activation, const FloatMatrix& z,
                                     const std::vector<float>* bias) {
  if (bias != nullptr) require_shapes(static_cast<std::int64_t>(bias->size()) == z.cols, "forward");
  DoubleMatrix y(z.rows, z.cols, z.cols, 0.0);
  for (std::int64_t r = 0; r < z.rows; ++r)
    for (std::int64_t c = 0; c < z.cols; ++c) {
      const double shift = bias != nullptr ? static_cast<double>((*bias)[c]) : 0.0;
      y(r, c) = activate(activation, static_cast<double>(z(r, c)) + shift);
    }
  return y;
}

BackwardResult activation_backward(Activation activation, const FloatMatrix& y,
                                   const FloatMatrix& dy) {
  require_shapes(y.rows == dy.rows && y.cols == dy.cols, "backward");
  BackwardResult result{DoubleMatrix(y.rows, y.cols, y.cols, 0.0),
                        std::vector<double>(static_cast<std::size_t>(y.cols), 0.0)};
  for (std::int64_t r = 0; r < y.rows; ++r)
    for (std::int64_t c = 0; c < y.cols; ++c) {
      const double g = dy(r, c) * derivative_from_output(activation, y(r, c));
      result.dz(r, c) = g;
      result.bias_grad[c] += g;
    }
  return result;
}

std::vector<double> column_sums(const FloatMatrix& x, double scale) {
  std::vector<double> sums(static_cast<std::size_t>(x.cols), 0.0);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = 0; c < x.cols; ++c) sums[c] += x(r, c);
  for (double& s : sums) s *= scale;
  return sums;
}

std::vector<std::int64_t> random_permutation(std::uint64_t seed, std::int64_t n) {
  const std::uint64_t seed_state = splitmix64(seed);
  std::vector<std::pair<std::uint64_t, std::int64_t>> keyed(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    keyed[i] = {splitmix64(seed_state ^ static_cast<std::uint64_t>(i)), i};
  std::sort(keyed.begin(), keyed.end());  // by key, ties by index
  std::vector<std::int64_t> permutation(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) permutation[i] = keyed[i].second;
  return permutation;
}

HostCsr gather_rows(const HostCsr& source, const std::vector<std::int64_t>& row_ids) {
  HostCsr batch;
  batch.rows = static_cast<std::int64_t>(row_ids.size());
  batch.cols = source.cols;
  batch.row_offsets.assign(1, 0);
  for (const std::int64_t row : row_ids) {
    if (row < 0 || row >= source.rows)
      throw std::invalid_argument("reference gather_rows: row id out of range");
    for (RowOffset e = source.row_offsets[row]; e < source.row_offsets[row + 1]; ++e) {
      batch.col_indices.push_back(source.col_indices[e]);
      batch.values.push_back(source.values[e]);
    }
    batch.row_offsets.push_back(static_cast<RowOffset>(batch.values.size()));
  }
  return batch;
}

DoubleMatrix to_double(const FloatMatrix& m) {
  DoubleMatrix result(m.rows, m.cols, m.cols, 0.0);
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = 0; c < m.cols; ++c) result(r, c) = m(r, c);
  return result;
}

namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// log(1 + e^x), without overflow for large x.
double softplus(double x) {
  return x > 0.0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

double sign(double x) { return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : 0.0); }

struct EntryLoss {
  double value;
  double grad;
  double value_magnitude;
  double grad_magnitude;
};

// One entry's loss before averaging, from the definitions in backend.hpp.
EntryLoss entry_loss(LossKind kind, const LossParams& params, double y, double x) {
  switch (kind) {
    case LossKind::mse:
    case LossKind::mse_cosine:
      return {(y - x) * (y - x), 2.0 * (y - x), (y - x) * (y - x), 2.0 * std::fabs(y - x)};
    case LossKind::mae:
      return {std::fabs(y - x), sign(y - x), std::fabs(y - x), 1.0};
    case LossKind::bce:
      // Cross-entropy of sigmoid(y) against x: -x log s - (1 - x) log(1 - s) = softplus(y) - x*y.
      return {softplus(y) - x * y, sigmoid(y) - x, softplus(y) + std::fabs(x * y),
              sigmoid(y) + std::fabs(x)};
    case LossKind::poisson: {
      const double rate = poisson_rate(y);
      const double slope = poisson_rate_slope(y);
      const double log_factorial = std::lgamma(x + 1.0);
      return {rate - x * y + log_factorial, slope - x,
              rate + std::fabs(x * y) + std::fabs(log_factorial), slope + std::fabs(x)};
    }
    case LossKind::weighted_mse: {
      if (x == 0.0) {
        const double w = params.zero_weight;
        return {w * y * y, 2.0 * w * y, w * y * y, 2.0 * w * std::fabs(y)};
      }
      return {(y - x) * (y - x), 2.0 * (y - x), (y - x) * (y - x), 2.0 * std::fabs(y - x)};
    }
    case LossKind::huber: {
      const double d = y - x;
      const double delta = params.huber_delta;
      if (std::fabs(d) <= delta) return {0.5 * d * d, d, 0.5 * d * d, std::fabs(d)};
      return {delta * (std::fabs(d) - 0.5 * delta), delta * sign(d),
              delta * (std::fabs(d) + 0.5 * delta), delta};
    }
    case LossKind::nb:
    case LossKind::zinb:
    case LossKind::hurdle:
    case LossKind::hurdle_nb:
      break;  // several outputs per entry: head_entry_loss
  }
  throw std::invalid_argument("reference reconstruction_loss: unknown loss");
}

}  // namespace

double poisson_rate(double eta) {
  constexpr double kLinearFrom = 30.0;
  return eta <= kLinearFrom ? std::exp(eta) : std::exp(kLinearFrom) * (1.0 + (eta - kLinearFrom));
}

double poisson_rate_slope(double eta) {
  constexpr double kLinearFrom = 30.0;
  return std::exp(std::min(eta, kLinearFrom));
}

LossParams cosine_params(double cosine_weight) {
  LossParams params;
  params.cosine_weight = static_cast<float>(cosine_weight);
  return params;
}

namespace {

using Long = long double;

Long rate_l(Long eta) {
  return eta <= 30.0L ? std::exp(eta) : std::exp(30.0L) * (1.0L + (eta - 30.0L));
}
Long rate_slope_l(Long eta) { return std::exp(std::min(eta, 30.0L)); }
Long log_rate_l(Long eta) { return eta <= 30.0L ? eta : std::log(rate_l(eta)); }
Long sigmoid_l(Long t) { return 1.0L / (1.0L + std::exp(-t)); }
Long softplus_l(Long t) { return t > 0 ? t + std::log1p(std::exp(-t)) : std::log1p(std::exp(t)); }

// The nb pieces from the definition, x an integer: lgamma(x + theta) - lgamma(theta) as
// sum_{j<x} log(theta + j) (exact, and independent of the backends' Stirling series).
struct NbReference {
  Long value, d_eta, d_phi, magnitude, d_eta_magnitude, d_phi_magnitude;
};

NbReference nb_reference(Long eta, Long phi_raw, Long x) {
  const Long phi = std::clamp(phi_raw, -30.0L, 30.0L);
  const Long phi_slope = phi_raw < -30.0L || phi_raw > 30.0L ? 0.0L : 1.0L;
  const Long mu = rate_l(eta);
  const Long mu_slope = rate_slope_l(eta);
  const Long theta = std::exp(phi);
  Long sum_log = 0, sum_inv = 0;
  for (Long j = 0; j < x; j += 1) {
    sum_log += std::log(theta + j);
    sum_inv += 1.0L / (theta + j);
  }
  const Long zero = theta * std::log1p(mu / theta);  // -theta log(theta / (theta + mu))
  const Long tail = x > 0 ? x * std::log1p(theta / mu) : 0.0L;  // -x log(mu / (theta + mu))
  NbReference r{};
  r.value = zero + tail + std::lgamma(x + 1.0L) - sum_log;
  // d/dmu: theta / (theta + mu) - x theta / (mu (theta + mu)).
  const Long share = theta / (theta + mu);
  r.d_eta = (share - (x > 0 ? x * share / mu : 0.0L)) * mu_slope;
  r.d_phi = phi_slope * theta *
            (-sum_inv + std::log1p(mu / theta) - mu / (theta + mu) + x / (theta + mu));
  r.magnitude = std::fabs(zero) + std::fabs(tail) + std::fabs(std::lgamma(x + 1.0L)) +
                std::fabs(sum_log);
  r.d_eta_magnitude = (share + (x > 0 ? x * share / mu : 0.0L)) * mu_slope;
  r.d_phi_magnitude =
      theta * (sum_inv + std::log1p(mu / theta) + mu / (theta + mu) + x / (theta + mu));
  return r;
}

// One entry of a loss with K heads: value, d value / d h[k], and magnitudes. The backends
// evaluate in double and round the result to float, so the magnitude of a value is |full| +
// |zero term| (a backend subtracts the zero term it added first) and of a gradient its size,
// plus 1e-6 of the parts a double evaluation cancels.
struct HeadEntry {
  double value = 0, magnitude = 0;
  double grad[3] = {0, 0, 0};
  double grad_magnitude[3] = {0, 0, 0};
};

HeadEntry head_entry_value(LossKind kind, const double* h, double x) {
  HeadEntry e;
  switch (kind) {
    case LossKind::nb: {
      const NbReference nb = nb_reference(h[0], h[1], x);
      e.value = static_cast<double>(nb.value);
      e.grad[0] = static_cast<double>(nb.d_eta);
      e.grad[1] = static_cast<double>(nb.d_phi);
      e.grad_magnitude[0] = static_cast<double>(nb.d_eta_magnitude);
      e.grad_magnitude[1] = static_cast<double>(nb.d_phi_magnitude);
      break;
    }
    case LossKind::zinb: {
      const NbReference nb = nb_reference(h[0], h[1], x);
      const Long s = h[2];
      const Long pi = sigmoid_l(s);
      if (x != 0.0) {
        e.value = static_cast<double>(softplus_l(s) + nb.value);
        e.grad[0] = static_cast<double>(nb.d_eta);
        e.grad[1] = static_cast<double>(nb.d_phi);
        e.grad[2] = static_cast<double>(pi);
        e.grad_magnitude[0] = static_cast<double>(nb.d_eta_magnitude);
        e.grad_magnitude[1] = static_cast<double>(nb.d_phi_magnitude);
        e.grad_magnitude[2] = static_cast<double>(pi);
        break;
      }
      const Long not_pi = sigmoid_l(-s);  // 1 - pi, without the cancellation
      const Long p0 = std::exp(-nb.value);
      const Long total = pi + not_pi * p0;  // P(0)
      const Long w = not_pi * p0 / total;   // the share of the nb part
      e.value = static_cast<double>(-std::log(total));
      e.grad[0] = static_cast<double>(w * nb.d_eta);
      e.grad[1] = static_cast<double>(w * nb.d_phi);
      e.grad[2] = static_cast<double>(w - not_pi);
      e.grad_magnitude[0] = static_cast<double>(w * nb.d_eta_magnitude);
      e.grad_magnitude[1] = static_cast<double>(w * nb.d_phi_magnitude);
      e.grad_magnitude[2] = static_cast<double>(w + not_pi);
      // log pi and log(1 - pi) - Z, which a stable evaluation adds in log space.
      e.magnitude = static_cast<double>(softplus_l(s) + softplus_l(-s) + nb.value);
      break;
    }
    case LossKind::hurdle_nb: {
      const Long s = h[0];
      if (x == 0.0) {
        e.value = static_cast<double>(softplus_l(s));
        e.grad[0] = static_cast<double>(sigmoid_l(s));
        e.grad_magnitude[0] = e.grad[0];
        break;
      }
      // softplus(-s) + nb(x) + log(1 - e^-Z), Z = theta log(1 + mu / theta); the truncation's
      // derivative is dZ / (e^Z - 1) with dZ/dmu = theta / (theta + mu) and
      // dZ/dphi = theta (log(1 + mu / theta) - mu / (theta + mu)).
      const NbReference nb = nb_reference(h[1], h[2], x);
      const Long phi = std::clamp(static_cast<Long>(h[2]), -30.0L, 30.0L);
      const Long phi_slope = h[2] < -30.0 || h[2] > 30.0 ? 0.0L : 1.0L;
      const Long theta = std::exp(phi);
      const Long mu = rate_l(h[1]);
      const Long zero = theta * std::log1p(mu / theta);
      const Long truncation = std::log(-std::expm1(-zero));
      const Long inv_expm1 = zero > 11000.0L ? 0.0L : 1.0L / std::expm1(zero);
      const Long dz_eta = theta / (theta + mu) * rate_slope_l(h[1]);
      const Long dz_phi = phi_slope * theta * (std::log1p(mu / theta) - mu / (theta + mu));
      e.value = static_cast<double>(softplus_l(-s) + nb.value + truncation);
      e.grad[0] = static_cast<double>(-sigmoid_l(-s));
      e.grad[1] = static_cast<double>(nb.d_eta + inv_expm1 * dz_eta);
      e.grad[2] = static_cast<double>(nb.d_phi + inv_expm1 * dz_phi);
      e.grad_magnitude[0] = std::fabs(e.grad[0]);
      e.grad_magnitude[1] = static_cast<double>(nb.d_eta_magnitude + inv_expm1 * dz_eta);
      e.grad_magnitude[2] = static_cast<double>(nb.d_phi_magnitude + inv_expm1 * std::fabs(dz_phi));
      e.magnitude =
          static_cast<double>(std::fabs(softplus_l(-s)) + nb.magnitude + std::fabs(truncation));
      break;
    }
    default: {  // hurdle
      const Long s = h[0];
      if (x == 0.0) {
        e.value = static_cast<double>(softplus_l(s));
        e.grad[0] = static_cast<double>(sigmoid_l(s));
        e.grad_magnitude[0] = e.grad[0];
        break;
      }
      const Long eta = h[1];
      const Long mu = rate_l(eta);
      const Long mu_slope = rate_slope_l(eta);
      const Long log_mu = log_rate_l(eta);
      const Long log_factorial = std::lgamma(static_cast<Long>(x) + 1.0L);
      const Long truncation = std::log(-std::expm1(-mu));  // log(1 - e^-mu)
      e.value = static_cast<double>(softplus_l(-s) + mu - x * log_mu + log_factorial + truncation);
      e.grad[0] = static_cast<double>(-sigmoid_l(-s));
      // d/deta [mu - x log mu + log(1 - e^-mu)] = mu' (1 - x / mu + 1 / (e^mu - 1)).
      const Long inv_expm1 = mu > 11000.0L ? 0.0L : 1.0L / std::expm1(mu);
      e.grad[1] = static_cast<double>(mu_slope * (1.0L + inv_expm1) - x * mu_slope / mu);
      e.grad_magnitude[0] = std::fabs(e.grad[0]);
      e.grad_magnitude[1] =
          static_cast<double>(mu_slope * (1.0L + inv_expm1) + x * mu_slope / mu);
      e.magnitude = static_cast<double>(std::fabs(softplus_l(-s)) + mu + std::fabs(x * log_mu) +
                                        log_factorial + std::fabs(truncation));
      break;
    }
  }
  return e;
}

}  // namespace

HeadEntryLoss head_entry_loss(LossKind kind, const double* h, double x) {
  const HeadEntry full = head_entry_value(kind, h, x);
  HeadEntryLoss out;
  out.value = full.value;
  // The backends' own rounding: a float per gradient, double arithmetic inside.
  out.value_magnitude = std::fabs(full.value);
  if (x != 0.0) out.value_magnitude += std::fabs(head_entry_value(kind, h, 0.0).value);
  for (int k = 0; k < 3; ++k) {
    out.grad[k] = full.grad[k];
    out.grad_magnitude[k] = std::fabs(full.grad[k]) + 1e-6 * full.grad_magnitude[k];
  }
  out.value_magnitude += 1e-6 * full.magnitude;
  return out;
}

LossResult reconstruction_loss(LossKind kind, const LossParams& params, const DoubleMatrix& y,
                               const HostCsr& target) {
  const std::int64_t heads = output_heads(kind);
  if (heads > 1) {
    require_shapes(y.rows == target.rows && y.cols == heads * target.cols, "reconstruction_loss");
    const std::int64_t rows = y.rows;
    const std::int64_t cols = target.cols;
    LossResult result{DoubleMatrix(rows, y.cols, y.cols, 0.0), std::vector<double>(rows, 0.0),
                      DoubleMatrix(rows, y.cols, y.cols, 0.0), std::vector<double>(rows, 0.0)};
    const double per_entry = 1.0 / static_cast<double>(std::max<std::int64_t>(1, rows * cols));
    std::vector<double> x(static_cast<std::size_t>(cols));
    for (std::int64_t r = 0; r < rows; ++r) {
      std::fill(x.begin(), x.end(), 0.0);
      for (RowOffset e = target.row_offsets[r]; e < target.row_offsets[r + 1]; ++e)
        x[target.col_indices[e]] += target.values[e];
      for (std::int64_t c = 0; c < cols; ++c) {
        double h[3] = {0, 0, 0};
        for (std::int64_t k = 0; k < heads; ++k) h[k] = y(r, c + k * cols);
        const HeadEntryLoss term = head_entry_loss(kind, h, x[c]);
        result.row_loss[r] += per_entry * term.value;
        result.row_loss_magnitude[r] += per_entry * term.value_magnitude;
        for (std::int64_t k = 0; k < heads; ++k) {
          result.grad(r, c + k * cols) = per_entry * term.grad[k];
          result.grad_magnitude(r, c + k * cols) = per_entry * term.grad_magnitude[k];
        }
      }
    }
    return result;
  }
  require_shapes(y.rows == target.rows && y.cols == target.cols, "reconstruction_loss");
  const std::int64_t rows = y.rows;
  const std::int64_t cols = y.cols;
  LossResult result{DoubleMatrix(rows, cols, cols, 0.0), std::vector<double>(rows, 0.0),
                    DoubleMatrix(rows, cols, cols, 0.0), std::vector<double>(rows, 0.0)};
  const double per_entry = 1.0 / static_cast<double>(std::max<std::int64_t>(1, rows * cols));
  const double per_row =
      params.cosine_weight / static_cast<double>(std::max<std::int64_t>(1, rows));
  std::vector<double> x(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    std::fill(x.begin(), x.end(), 0.0);
    for (RowOffset e = target.row_offsets[r]; e < target.row_offsets[r + 1]; ++e)
      x[target.col_indices[e]] += target.values[e];
    double loss = 0.0;
    double loss_magnitude = 0.0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const EntryLoss term = entry_loss(kind, params, y(r, c), x[c]);
      loss += term.value;
      // Where the target is non-zero, a backend may subtract the zero-target term it added first.
      const double zero_term =
          x[c] != 0.0 ? entry_loss(kind, params, y(r, c), 0.0).value_magnitude : 0.0;
      loss_magnitude += term.value_magnitude + zero_term;
      result.grad(r, c) = per_entry * term.grad;
      result.grad_magnitude(r, c) = per_entry * term.grad_magnitude;
    }
    loss *= per_entry;
    loss_magnitude *= per_entry;
    if (kind == LossKind::mse_cosine) {
      double yy = 0.0, xx = 0.0, xy = 0.0, xy_magnitude = 0.0;
      for (std::int64_t c = 0; c < cols; ++c) {
        yy += y(r, c) * y(r, c);
        xx += x[c] * x[c];
        xy += x[c] * y(r, c);
        xy_magnitude += std::fabs(x[c] * y(r, c));
      }
      if (yy == 0.0 || xx == 0.0) {
        loss += per_row;
        loss_magnitude += per_row;
      } else {
        const double norms = std::sqrt(yy) * std::sqrt(xx);
        const double cosine = xy / norms;
        const double cosine_magnitude = xy_magnitude / norms;
        loss += per_row * (1.0 - cosine);
        loss_magnitude += per_row * (1.0 + cosine_magnitude);
        // d(1 - cos)/dy_c = -x_c / (|y||x|) + cos * y_c / |y|^2.
        for (std::int64_t c = 0; c < cols; ++c) {
          result.grad(r, c) += per_row * (-x[c] / norms + cosine * y(r, c) / yy);
          result.grad_magnitude(r, c) +=
              per_row * (std::fabs(x[c]) / norms + cosine_magnitude * std::fabs(y(r, c)) / yy);
        }
      }
    }
    result.row_loss[r] = loss;
    result.row_loss_magnitude[r] = loss_magnitude;
  }
  return result;
}

LossResult reconstruction_loss(LossKind kind, const LossParams& params, const FloatMatrix& y,
                               const HostCsr& target) {
  return reconstruction_loss(kind, params, to_double(y), target);
}

PenaltyResult l1_activity_penalty(double weight, const DoubleMatrix& a,
                                  const DoubleMatrix& grad_in) {
  require_shapes(a.rows == grad_in.rows && a.cols == grad_in.cols, "l1_activity_penalty");
  const double per_row = weight / static_cast<double>(std::max<std::int64_t>(1, a.rows));
  PenaltyResult result{DoubleMatrix(a.rows, a.cols, a.cols, 0.0), 0.0,
                       DoubleMatrix(a.rows, a.cols, a.cols, 0.0), 0.0};
  for (std::int64_t r = 0; r < a.rows; ++r)
    for (std::int64_t c = 0; c < a.cols; ++c) {
      result.loss += per_row * std::fabs(a(r, c));
      result.grad(r, c) = grad_in(r, c) + per_row * sign(a(r, c));
      result.grad_magnitude(r, c) = std::fabs(grad_in(r, c)) + std::fabs(per_row);
    }
  result.loss_magnitude = std::fabs(result.loss);
  return result;
}

double latent_code(double z) {
  constexpr double kLimit = 16777216.0;
  if (std::isnan(z)) return -kLimit;
  return std::min(std::max(std::nearbyint(z), -kLimit), kLimit);
}

double latent_noise(std::uint64_t seed, std::uint64_t index) {
  const auto splitmix = [](std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  return static_cast<double>(splitmix(seed ^ splitmix(index)) >> 40) / 16777216.0 - 0.5;
}

RatePenaltyResult latent_rate_penalty(double weight, const std::vector<double>& prior,
                                      const DoubleMatrix& z, const DoubleMatrix& grad_in) {
  require_shapes(z.rows == grad_in.rows && z.cols == grad_in.cols &&
                     static_cast<std::int64_t>(prior.size()) == 2 * z.cols,
                 "latent_rate_penalty");
  const double per_row = weight / static_cast<double>(std::max<std::int64_t>(1, z.rows));
  const std::int64_t cols = z.cols;
  RatePenaltyResult result{DoubleMatrix(z.rows, cols, cols, 0.0),
                           std::vector<double>(static_cast<std::size_t>(2 * cols), 0.0),
                           0.0,
                           DoubleMatrix(z.rows, cols, cols, 0.0),
                           std::vector<double>(static_cast<std::size_t>(2 * cols), 0.0),
                           0.0};
  const auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  for (std::int64_t c = 0; c < cols; ++c) {
    const double location = prior[static_cast<std::size_t>(c)];
    const double raw_log_scale = prior[static_cast<std::size_t>(cols + c)];
    const bool clamped = raw_log_scale < -8.0 || raw_log_scale > 8.0;
    const double scale = std::exp(std::min(std::max(raw_log_scale, -8.0), 8.0));
    for (std::int64_t r = 0; r < z.rows; ++r) {
      const double centred = z(r, c) - location;
      const double upper = (centred + 0.5) / scale;
      const double lower = (centred - 0.5) / scale;
      // The mass on [lower, upper] from the tail z lies in, where the difference keeps its digits.
      const double p =
          centred >= 0.0 ? sigmoid(-lower) - sigmoid(-upper) : sigmoid(upper) - sigmoid(lower);
      const auto slope = [&](double x) { return sigmoid(x) * sigmoid(-x); };
      const double value = -std::log(p);
      const double d_z = -(slope(upper) - slope(lower)) / (scale * p);
      const double d_log_scale = clamped ? 0.0 : (upper * slope(upper) - lower * slope(lower)) / p;
      result.loss += per_row * value;
      result.loss_magnitude += std::fabs(per_row * value);
      result.grad(r, c) = grad_in(r, c) + per_row * d_z;
      result.grad_magnitude(r, c) = std::fabs(grad_in(r, c)) + std::fabs(per_row * d_z);
      result.prior_grad[static_cast<std::size_t>(c)] -= per_row * d_z;
      result.prior_grad[static_cast<std::size_t>(cols + c)] += per_row * d_log_scale;
      result.prior_grad_magnitude[static_cast<std::size_t>(c)] += std::fabs(per_row * d_z);
      result.prior_grad_magnitude[static_cast<std::size_t>(cols + c)] +=
          std::fabs(per_row * d_log_scale);
    }
  }
  return result;
}

PenaltyResult kl_sparsity_penalty(double rho, double beta, const DoubleMatrix& a,
                                  const DoubleMatrix& grad_in) {
  require_shapes(a.rows == grad_in.rows && a.cols == grad_in.cols, "kl_sparsity_penalty");
  const double rows = static_cast<double>(std::max<std::int64_t>(1, a.rows));
  PenaltyResult result{DoubleMatrix(a.rows, a.cols, a.cols, 0.0), 0.0,
                       DoubleMatrix(a.rows, a.cols, a.cols, 0.0), 0.0};
  for (std::int64_t c = 0; c < a.cols; ++c) {
    double mean = 0.0;
    for (std::int64_t r = 0; r < a.rows; ++r) mean += a(r, c);
    mean /= rows;
    const double p = std::min(std::max(mean, kKlClamp), 1.0 - kKlClamp);
    const double term1 = rho * std::log(rho / p);
    const double term2 = (1.0 - rho) * std::log((1.0 - rho) / (1.0 - p));
    result.loss += beta * (term1 + term2);
    // A float evaluation errs on p by a few ulps of the mean (a sum of non-negative terms, so
    // relative to p): log(rho / p) then errs by about eps absolutely, log((1 - rho) / (1 - p))
    // by eps * p / (1 - p), since 1 - p loses eps * p to the subtraction.
    const double conditioning = std::max(1.0, p / (1.0 - p));
    result.loss_magnitude +=
        std::fabs(beta) * (std::fabs(term1) + std::fabs(term2) + rho + (1.0 - rho) * conditioning);
    // The same for the factor: -rho/p errs by eps relative, (1-rho)/(1-p) by eps * p / (1 - p)
    // relative. Every row of the column gets the same factor.
    const double factor = -rho / p + (1.0 - rho) / (1.0 - p);
    const double factor_magnitude = rho / p + (1.0 - rho) / (1.0 - p) * conditioning;
    for (std::int64_t r = 0; r < a.rows; ++r) {
      result.grad(r, c) = grad_in(r, c) + beta / rows * factor;
      result.grad_magnitude(r, c) =
          std::fabs(grad_in(r, c)) + std::fabs(beta) / rows * factor_magnitude;
    }
  }
  return result;
}

namespace {

// True when a is kept before b: the larger value, +0 before -0 (signbit), else the lower index.
bool kept_before(float a, std::int64_t index_a, float b, std::int64_t index_b) {
  if (a != b) return a > b;
  if (std::signbit(a) != std::signbit(b)) return std::signbit(b);
  return index_a < index_b;
}

// The indices of the `keep` first of values in kept_before order.
std::vector<std::int64_t> kept_indices(const std::vector<float>& values, std::int64_t keep) {
  std::vector<std::int64_t> order(values.size());
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return kept_before(values[static_cast<std::size_t>(a)], a, values[static_cast<std::size_t>(b)],
                       b);
  });
  order.resize(static_cast<std::size_t>(keep));
  return order;
}

}  // namespace

FloatMatrix topk_rows(std::int64_t k, const FloatMatrix& z) {
  FloatMatrix out = z;
  for (std::int64_t r = 0; r < z.rows; ++r) {
    std::vector<float> row(static_cast<std::size_t>(z.cols));
    for (std::int64_t c = 0; c < z.cols; ++c) {
      row[static_cast<std::size_t>(c)] = z(r, c);
      out(r, c) = 0.0f;
    }
    for (const std::int64_t c : kept_indices(row, k)) out(r, c) = z(r, c);
  }
  return out;
}

std::vector<std::int32_t> latent_dead_steps(const FloatMatrix& z,
                                            std::vector<std::int32_t> dead_steps) {
  for (std::int64_t c = 0; c < z.cols; ++c) {
    bool fired = false;
    for (std::int64_t r = 0; r < z.rows; ++r) fired = fired || z(r, c) != 0.0f;
    std::int32_t& counter = dead_steps[static_cast<std::size_t>(c)];
    if (fired)
      counter = 0;
    else if (counter < std::numeric_limits<std::int32_t>::max())
      ++counter;
  }
  return dead_steps;
}

AuxKBackwardResult auxk_backward(std::int64_t aux_k, double aux_weight, std::int32_t dead_after,
                                 const std::vector<std::int32_t>& dead_steps,
                                 const FloatMatrix& pre, const FloatMatrix& z,
                                 const FloatMatrix& dz) {
  AuxKBackwardResult result{DoubleMatrix(z.rows, z.cols, z.cols, 0.0),
                            std::vector<double>(static_cast<std::size_t>(z.cols), 0.0)};
  std::vector<std::int64_t> dead;
  for (std::int64_t c = 0; c < z.cols; ++c)
    if (dead_steps[static_cast<std::size_t>(c)] > dead_after) dead.push_back(c);
  for (std::int64_t r = 0; r < z.rows; ++r) {
    std::vector<bool> auxiliary(static_cast<std::size_t>(z.cols), false);
    std::vector<float> values;
    for (const std::int64_t c : dead) values.push_back(pre(r, c));
    const auto count = std::min<std::int64_t>(aux_k, static_cast<std::int64_t>(values.size()));
    if (count > 0)
      for (const std::int64_t i : kept_indices(values, count))
        auxiliary[static_cast<std::size_t>(dead[static_cast<std::size_t>(i)])] = true;
    for (std::int64_t c = 0; c < z.cols; ++c) {
      const double g = z(r, c) > 0.0f                           ? double{dz(r, c)}
                       : auxiliary[static_cast<std::size_t>(c)] ? aux_weight * dz(r, c)
                                                                : 0.0;
      result.dz(r, c) = g;
      result.bias_grad[static_cast<std::size_t>(c)] += g;
    }
  }
  return result;
}

BatchTopKResult batch_topk(std::int64_t k, const FloatMatrix& z) {
  BatchTopKResult result{z, std::numeric_limits<double>::infinity()};
  std::vector<float> all;
  for (std::int64_t r = 0; r < z.rows; ++r)
    for (std::int64_t c = 0; c < z.cols; ++c) {
      all.push_back(z(r, c));
      result.z(r, c) = 0.0f;
    }
  for (const std::int64_t i : kept_indices(all, k * z.rows)) {
    const float value = all[static_cast<std::size_t>(i)];
    result.z(i / z.cols, i % z.cols) = value;
    if (value > 0.0f) result.smallest_positive = std::min<double>(result.smallest_positive, value);
  }
  return result;
}

double updated_threshold(double current, double batch_minimum) {
  return current < 0.0 ? batch_minimum : current + 0.01 * (batch_minimum - current);
}

FloatMatrix threshold_latents(const FloatMatrix& z, double threshold) {
  FloatMatrix out = z;
  for (std::int64_t r = 0; r < z.rows; ++r)
    for (std::int64_t c = 0; c < z.cols; ++c)
      if (!(static_cast<double>(z(r, c)) > threshold)) out(r, c) = 0.0f;
  return out;
}

double sum_of_squares(const std::vector<float>& x) {
  double sum = 0.0;
  for (const float v : x) sum += static_cast<double>(v) * v;
  return sum;
}

DoubleMatrix unit_norm_rows(const FloatMatrix& m) {
  DoubleMatrix out(m.rows, m.cols, m.cols, 0.0);
  for (std::int64_t r = 0; r < m.rows; ++r) {
    double sum_squares = 0.0;
    for (std::int64_t c = 0; c < m.cols; ++c) sum_squares += static_cast<double>(m(r, c)) * m(r, c);
    const double norm = std::sqrt(sum_squares);
    for (std::int64_t c = 0; c < m.cols; ++c) out(r, c) = norm > 0.0 ? m(r, c) / norm : 0.0;
  }
  return out;
}

double clip_scale(double max_norm, double sum_squares) {
  const double norm = std::sqrt(sum_squares);
  return norm > max_norm ? max_norm / norm : 1.0;
}

void optimizer_step(const OptimizerConfig& config, std::int64_t step,
                    const std::vector<double>& raw_grads, OptimizerState& state) {
  std::vector<double> grads = raw_grads;
  if (config.max_grad_norm > 0.0f) {
    double sum_squares = 0.0;
    for (const double g : raw_grads) sum_squares += g * g;
    const double scale = clip_scale(config.max_grad_norm, sum_squares);
    for (double& g : grads) g *= scale;
  }
  const double lr = config.learning_rate;
  const double weight_decay = config.weight_decay;
  const std::size_t n = grads.size();
  if (config.kind == OptimizerKind::sgd) {
    const double momentum = config.momentum;
    for (std::size_t i = 0; i < n; ++i) {
      double& p = state.params[i];
      double& velocity = state.first_moment[i];
      velocity = momentum * velocity + (grads[i] + weight_decay * p);
      p -= lr * velocity;
    }
    return;
  }
  const double beta1 = config.beta1;
  const double beta2 = config.beta2;
  const double epsilon = config.epsilon;
  const double t = static_cast<double>(step);
  const double correction1 = 1.0 - std::pow(beta1, t);
  const double correction2 = 1.0 - std::pow(beta2, t);
  const bool decoupled = config.kind == OptimizerKind::adamw;
  for (std::size_t i = 0; i < n; ++i) {
    double& p = state.params[i];
    double& m = state.first_moment[i];
    double& v = state.second_moment[i];
    // adam folds L2 weight decay into the gradient; adamw shrinks the weights directly.
    const double g = decoupled ? grads[i] : grads[i] + weight_decay * p;
    m = beta1 * m + (1.0 - beta1) * g;
    v = beta2 * v + (1.0 - beta2) * g * g;
    const double m_hat = m / correction1;
    const double v_hat = v / correction2;
    const double decay = decoupled ? lr * weight_decay * p : 0.0;
    p = p - decay - lr * m_hat / (std::sqrt(v_hat) + epsilon);
  }
}

// ---- float64 linear algebra and PCA ----

SymmetricEigen symmetric_eigen(std::vector<double> a, std::int64_t n) {
  const auto at = [n](std::vector<double>& m, std::int64_t i, std::int64_t j) -> double& {
    return m[static_cast<std::size_t>(i * n + j)];
  };
  // v accumulates the rotations: a = v_totalᵀ · a_0 · v_total, the eigenvectors its columns.
  std::vector<double> v(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) at(v, i, i) = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, diagonal = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      diagonal += at(a, i, i) * at(a, i, i);
      for (std::int64_t j = i + 1; j < n; ++j) off += at(a, i, j) * at(a, i, j);
    }
    if (off <= 1e-30 * std::max(diagonal, 1e-300)) break;
    for (std::int64_t p = 0; p < n; ++p)
      for (std::int64_t q = p + 1; q < n; ++q) {
        if (std::fabs(at(a, p, q)) < 1e-300) continue;
        // The rotation that zeroes a(p, q).
        const double theta = (at(a, q, q) - at(a, p, p)) / (2.0 * at(a, p, q));
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0);
        const double s = t * c;
        for (std::int64_t k = 0; k < n; ++k) {  // columns p and q of a and of v
          const double kp = at(a, k, p), kq = at(a, k, q);
          at(a, k, p) = c * kp - s * kq;
          at(a, k, q) = s * kp + c * kq;
          const double vp = at(v, k, p), vq = at(v, k, q);
          at(v, k, p) = c * vp - s * vq;
          at(v, k, q) = s * vp + c * vq;
        }
        for (std::int64_t k = 0; k < n; ++k) {  // rows p and q of a
          const double pk = at(a, p, k), qk = at(a, q, k);
          at(a, p, k) = c * pk - s * qk;
          at(a, q, k) = s * pk + c * qk;
        }
      }
  }
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::int64_t x, std::int64_t y) { return at(a, x, x) < at(a, y, y); });
  SymmetricEigen eigen{std::vector<double>(static_cast<std::size_t>(n)),
                       std::vector<double>(static_cast<std::size_t>(n * n))};
  for (std::int64_t i = 0; i < n; ++i) {
    eigen.values[i] = at(a, order[i], order[i]);
    for (std::int64_t k = 0; k < n; ++k) eigen.vectors[i * n + k] = at(v, k, order[i]);
  }
  return eigen;
}

Pca pca(const HostCsr& x, std::int64_t k) {
  const std::int64_t d = x.cols;
  const auto rows = static_cast<double>(x.rows);
  std::vector<double> dense(static_cast<std::size_t>(x.rows * d), 0.0);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (RowOffset e = x.row_offsets[r]; e < x.row_offsets[r + 1]; ++e)
      dense[r * d + x.col_indices[e]] += x.values[e];
  Pca result;
  result.mean.assign(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = 0; c < d; ++c) result.mean[c] += dense[r * d + c] / rows;
  std::vector<double> covariance(static_cast<std::size_t>(d * d), 0.0);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t i = 0; i < d; ++i) {
      const double xi = dense[r * d + i] - result.mean[i];
      for (std::int64_t j = 0; j < d; ++j)
        covariance[i * d + j] += xi * (dense[r * d + j] - result.mean[j]) / (rows - 1.0);
    }
  for (std::int64_t i = 0; i < d; ++i) result.total_variance += covariance[i * d + i];
  const SymmetricEigen eigen = symmetric_eigen(covariance, d);
  for (std::int64_t i = 0; i < k; ++i) {
    const std::int64_t source = d - 1 - i;
    result.explained_variance.push_back(eigen.values[source]);
    result.components.insert(result.components.end(), eigen.vectors.begin() + source * d,
                             eigen.vectors.begin() + (source + 1) * d);
  }
  return result;
}

double pca_reconstruction_mse(const HostCsr& x, const std::vector<double>& mean,
                              const std::vector<double>& components, std::int64_t k) {
  const std::int64_t d = x.cols;
  double squared_error = 0.0;
  std::vector<double> centred(static_cast<std::size_t>(d));
  for (std::int64_t r = 0; r < x.rows; ++r) {
    for (std::int64_t c = 0; c < d; ++c) centred[c] = -mean[c];
    for (RowOffset e = x.row_offsets[r]; e < x.row_offsets[r + 1]; ++e)
      centred[x.col_indices[e]] += x.values[e];
    std::vector<double> residual = centred;
    for (std::int64_t i = 0; i < k; ++i) {
      double code = 0.0;
      for (std::int64_t c = 0; c < d; ++c) code += centred[c] * components[i * d + c];
      for (std::int64_t c = 0; c < d; ++c) residual[c] -= code * components[i * d + c];
    }
    for (double e : residual) squared_error += e * e;
  }
  return squared_error / static_cast<double>(x.rows * d);
}

std::vector<double> principal_angle_cosines(const std::vector<double>& a,
                                            const std::vector<double>& b, std::int64_t k,
                                            std::int64_t d) {
  // m = a bᵀ (k x k); its singular values are the square roots of the eigenvalues of m mᵀ.
  std::vector<double> m(static_cast<std::size_t>(k * k), 0.0);
  for (std::int64_t i = 0; i < k; ++i)
    for (std::int64_t j = 0; j < k; ++j)
      for (std::int64_t c = 0; c < d; ++c) m[i * k + j] += a[i * d + c] * b[j * d + c];
  std::vector<double> gram(static_cast<std::size_t>(k * k), 0.0);
  for (std::int64_t i = 0; i < k; ++i)
    for (std::int64_t j = 0; j < k; ++j)
      for (std::int64_t l = 0; l < k; ++l) gram[i * k + j] += m[i * k + l] * m[j * k + l];
  std::vector<double> cosines = symmetric_eigen(gram, k).values;
  for (double& c : cosines) c = std::sqrt(std::max(0.0, c));
  return cosines;
}

}  // namespace sparseae::reference
