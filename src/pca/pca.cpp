#include "sparseae/pca.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "math/op_math.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/model.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae {

namespace {

// Row-major float64 matrix on the host, for the D x l and l x l algebra of the fit.
struct HostMatrix64 {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<double> values;

  HostMatrix64(std::int64_t rows_, std::int64_t cols_)
      : rows(rows_), cols(cols_), values(static_cast<std::size_t>(rows_ * cols_), 0.0) {}
  double& operator()(std::int64_t r, std::int64_t c) { return values[r * cols + c]; }
  double operator()(std::int64_t r, std::int64_t c) const { return values[r * cols + c]; }
};

std::vector<float> to_float(const std::vector<double>& values) {
  return {values.begin(), values.end()};
}

// Column means and the sum of the column variances (divisor N - 1), in float64 on the host: one
// pass over the stored values, which the data already is.
struct ColumnMoments {
  std::vector<double> mean;
  double total_variance = 0;
};

ColumnMoments finish_moments(std::vector<double> sums, const std::vector<double>& squares,
                             std::int64_t rows) {
  ColumnMoments moments;
  const auto n = static_cast<double>(rows);
  for (std::size_t c = 0; c < sums.size(); ++c) {
    const double mean = sums[c] / n;
    // Σ (x - mean)² = Σ x² - n·mean², floored at zero against its rounding.
    moments.total_variance += std::max(0.0, squares[c] - n * mean * mean) / (n - 1.0);
    sums[c] = mean;
  }
  moments.mean = std::move(sums);
  return moments;
}

ColumnMoments column_moments(const HostCsr& data) {
  std::vector<double> sums(static_cast<std::size_t>(data.cols), 0.0), squares(sums);
  for (std::int64_t k = 0; k < data.nnz(); ++k) {
    const double v = data.values[k];
    sums[data.col_indices[k]] += v;
    squares[data.col_indices[k]] += v * v;
  }
  return finish_moments(std::move(sums), squares, data.rows);
}

ColumnMoments column_moments(const HostDense& data) {
  std::vector<double> sums(static_cast<std::size_t>(data.cols), 0.0), squares(sums);
  for (std::int64_t r = 0; r < data.rows; ++r)
    for (std::int64_t c = 0; c < data.cols; ++c) {
      const double v = data.values[r * data.cols + c];
      sums[c] += v;
      squares[c] += v * v;
    }
  return finish_moments(std::move(sums), squares, data.rows);
}

// The rows of the data, a block at a time, in the backend's memory: visit(block) with block a
// CsrView (gathered from the whole matrix, uploaded once) or a ConstDenseView (uploaded block
// by block, so that a dense matrix never needs to fit on the device whole).
class CsrBlocks {
 public:
  CsrBlocks(Backend& backend, const HostCsr& data, std::int64_t block_rows)
      : backend_(&backend), data_(backend, data), rows_(data.rows), block_rows_(block_rows) {
    std::vector<std::int64_t> ids(static_cast<std::size_t>(data.rows));
    std::iota(ids.begin(), ids.end(), std::int64_t{0});
    ids_ = Buffer<std::int64_t>(backend, ids);
    std::int64_t widest = 1;
    for (std::int64_t first = 0; first < data.rows; first += block_rows) {
      const std::int64_t last = std::min(first + block_rows, data.rows);
      widest = std::max(widest, data.row_offsets[last] - data.row_offsets[first]);
    }
    batch_ = CsrBatchBuffer(backend, data.cols, block_rows, widest);
  }

  template <typename Visit>
  void for_each(Visit visit) {
    for (std::int64_t first = 0; first < rows_; first += block_rows_) {
      const std::int64_t count = std::min(block_rows_, rows_ - first);
      const std::int64_t nnz =
          backend_->gather_rows(data_.view(), ids_.data() + first, count, batch_.output());
      visit(batch_.view(count, nnz));
    }
  }

 private:
  Backend* backend_;
  BackendCsr data_;
  std::int64_t rows_;
  std::int64_t block_rows_;
  Buffer<std::int64_t> ids_;
  CsrBatchBuffer batch_;
};

class DenseBlocks {
 public:
  DenseBlocks(Backend& backend, const HostDense& data, std::int64_t block_rows)
      : backend_(&backend),
        data_(&data),
        block_rows_(block_rows),
        block_(backend, static_cast<std::size_t>(block_rows * data.cols)) {}

  template <typename Visit>
  void for_each(Visit visit) {
    const std::int64_t cols = data_->cols;
    for (std::int64_t first = 0; first < data_->rows; first += block_rows_) {
      const std::int64_t count = std::min(block_rows_, data_->rows - first);
      backend_->upload_bytes(block_.data(), data_->values.data() + first * cols,
                             static_cast<std::size_t>(count * cols) * sizeof(float));
      visit(ConstDenseView(block_.matrix(count, cols)));
    }
  }

 private:
  Backend* backend_;
  const HostDense* data_;
  std::int64_t block_rows_;
  Buffer<float> block_;
};

// out = block · b (block rows x b.cols).
void multiply(Backend& backend, CsrView block, ConstDenseView b, DenseView out) {
  backend.spmm(Transpose::no, 1.0f, block, b, 0.0f, out);
}
void multiply(Backend& backend, ConstDenseView block, ConstDenseView b, DenseView out) {
  backend.gemm(Transpose::no, Transpose::no, 1.0f, block, b, 0.0f, out);
}

// out = blockᵀ · t (columns x t.cols).
void multiply_transposed(Backend& backend, CsrView block, ConstDenseView t, DenseView out) {
  backend.spmm(Transpose::yes, 1.0f, block, t, 0.0f, out);
}
void multiply_transposed(Backend& backend, ConstDenseView block, ConstDenseView t, DenseView out) {
  backend.gemm(Transpose::yes, Transpose::no, 1.0f, block, t, 0.0f, out);
}

// Σ over the rows of (x - shift)(x - shift)ᵀ, shift = mean rounded to float for dense data and 0
// for CSR (a shift would make it dense), and the same of the true mean:
//   Σ (x - μ)(x - μ)ᵀ = Σ (x - s)(x - s)ᵀ - N (μ - s)(μ - s)ᵀ,
// the subtraction in float64, where the cancellation is. Centring dense blocks first keeps float
// rounding relative to the spread of the data, not to its offset.
struct ScatterPass {
  Backend& backend;
  std::int64_t cols;
  Buffer<float> dense_block;  // a CSR block densified (SpMM's dense operand), or a centred one
  Buffer<float> gram;         // one block's product, float
  Buffer<double> total;       // their float64 sum

  ScatterPass(Backend& b, std::int64_t columns, std::int64_t block_rows)
      : backend(b),
        cols(columns),
        dense_block(b, static_cast<std::size_t>(block_rows * columns)),
        gram(b, static_cast<std::size_t>(columns * columns)),
        total(b, static_cast<std::size_t>(columns * columns)) {
    total.fill_zero();
  }

  void add(CsrView block) {
    const DenseView dense = dense_block.matrix(block.rows, cols);
    backend.csr_to_dense(block, dense);
    multiply_transposed(backend, block, dense, gram.matrix(cols, cols));
    backend.accumulate(gram.data(), cols * cols, total.data());
  }
  void add(ConstDenseView block, const float* negative_shift) {
    const DenseView centred = dense_block.matrix(block.rows, cols);
    backend.bias_activation_forward(Activation::identity, block, negative_shift, centred);
    multiply_transposed(backend, centred, centred, gram.matrix(cols, cols));
    backend.accumulate(gram.data(), cols * cols, total.data());
  }
};

// The symmetric matrix's eigenpairs on the backend: values ascending, row i of vectors the
// eigenvector of values[i].
struct Eigen {
  std::vector<double> values;
  HostMatrix64 vectors;
};

Eigen eigen_on_backend(Backend& backend, const HostMatrix64& matrix) {
  const std::int64_t n = matrix.rows;
  Buffer<double> a(backend, matrix.values);
  Buffer<double> w(backend, static_cast<std::size_t>(n));
  backend.symmetric_eigen(n, a.data(), w.data());
  Eigen eigen{w.download(), HostMatrix64(n, n)};
  eigen.vectors.values = a.download();
  return eigen;
}

// Fills model.components and explained_variance from the eigenpairs of a covariance expressed
// in a basis (rows of basis: D-vectors; identity when basis is null): the k largest, descending,
// component = eigenvectorᵀ · basis, each with its largest entry made positive so that both
// backends (whose solvers choose signs differently) give the same model.
void take_leading(const Eigen& eigen, const HostMatrix64* basis, std::int64_t k, std::int64_t cols,
                  PcaModel& model) {
  const std::int64_t n = static_cast<std::int64_t>(eigen.values.size());
  model.components.assign(static_cast<std::size_t>(k * cols), 0.0f);
  model.explained_variance.assign(static_cast<std::size_t>(k), 0.0);
  std::vector<double> axis(static_cast<std::size_t>(cols));
  for (std::int64_t i = 0; i < k; ++i) {
    const std::int64_t source = n - 1 - i;
    model.explained_variance[i] = std::max(0.0, eigen.values[source]);
    for (std::int64_t c = 0; c < cols; ++c) {
      if (basis == nullptr) {
        axis[c] = eigen.vectors(source, c);
        continue;
      }
      double sum = 0.0;
      for (std::int64_t j = 0; j < n; ++j) sum += eigen.vectors(source, j) * (*basis)(j, c);
      axis[c] = sum;
    }
    const auto largest = std::max_element(
        axis.begin(), axis.end(), [](double a, double b) { return std::fabs(a) < std::fabs(b); });
    const double sign = *largest < 0 ? -1.0 : 1.0;
    for (std::int64_t c = 0; c < cols; ++c)
      model.components[i * cols + c] = static_cast<float>(sign * axis[c]);
  }
}

template <typename Blocks>
void fit_by_covariance(Backend& backend, Blocks& blocks, const ColumnMoments& moments,
                       const std::vector<float>& shift, std::int64_t block_rows, std::int64_t k,
                       PcaModel& model) {
  const std::int64_t cols = model.input_dim();
  ScatterPass scatter(backend, cols, block_rows);
  std::vector<float> negative_shift(shift.size());
  std::transform(shift.begin(), shift.end(), negative_shift.begin(), [](float s) { return -s; });
  const Buffer<float> negative_shift_on_backend(backend, negative_shift);
  blocks.for_each([&](auto block) {
    if constexpr (std::is_same_v<decltype(block), CsrView>)
      scatter.add(block);
    else
      scatter.add(block, negative_shift_on_backend.data());
  });
  HostMatrix64 covariance(cols, cols);
  covariance.values = scatter.total.download();
  const auto n = static_cast<double>(model.rows);
  for (std::int64_t i = 0; i < cols; ++i) {
    const double di = moments.mean[i] - shift[i];
    for (std::int64_t j = 0; j < cols; ++j)
      covariance(i, j) = (covariance(i, j) - n * di * (moments.mean[j] - shift[j])) / (n - 1.0);
  }
  take_leading(eigen_on_backend(backend, covariance), nullptr, k, cols, model);
}

// Makes column j of y orthogonal to columns 0..j-1 by Gram-Schmidt run twice ("twice is
// enough", Giraud et al. 2005) and returns its norm.
double orthogonalise(HostMatrix64& y, std::int64_t j) {
  for (int pass = 0; pass < 2; ++pass)
    for (std::int64_t i = 0; i < j; ++i) {
      double dot = 0.0;
      for (std::int64_t r = 0; r < y.rows; ++r) dot += y(r, i) * y(r, j);
      for (std::int64_t r = 0; r < y.rows; ++r) y(r, j) -= dot * y(r, i);
    }
  double norm = 0.0;
  for (std::int64_t r = 0; r < y.rows; ++r) norm += y(r, j) * y(r, j);
  return std::sqrt(norm);
}

// Orthonormal columns spanning those of y (D x l, l <= D). Where the range has fewer independent
// directions than columns (data of low rank), a coordinate axis takes a dependent column's place,
// so the basis keeps its width: one exists whose remainder has norm at least 1/sqrt(D), since
// the squared remainders of the D axes sum to D - j.
void orthonormalise_columns(HostMatrix64& y) {
  const double axis_floor = 0.5 / std::sqrt(static_cast<double>(y.rows));
  for (std::int64_t j = 0; j < y.cols; ++j) {
    double before = 0.0;
    for (std::int64_t r = 0; r < y.rows; ++r) before += y(r, j) * y(r, j);
    double norm = orthogonalise(y, j);
    bool independent = norm > 1e-10 * std::sqrt(before);
    for (std::int64_t axis = 0; !independent && axis < y.rows; ++axis) {
      for (std::int64_t r = 0; r < y.rows; ++r) y(r, j) = r == axis ? 1.0 : 0.0;
      norm = orthogonalise(y, j);
      independent = norm >= axis_floor;
    }
    for (std::int64_t r = 0; r < y.rows; ++r) y(r, j) /= norm;
  }
}

// The randomized range finder for the covariance C = Xcᵀ Xc / (N - 1), streaming the rows:
// Y = C Ω for a random D x l Ω (l = k + oversampling), q subspace iterations Y ← C·orth(Y), then
// Rayleigh-Ritz on Q = orth(Y): the eigenpairs of Qᵀ C Q give the components Q·u. Every product
// by C is two passes over the blocks: T = Xc Q, then Xcᵀ T = Xᵀ T - μ (1ᵀ T).
template <typename Blocks>
void fit_randomized(Backend& backend, Blocks& blocks, const ColumnMoments& moments,
                    const PcaConfig& config, PcaModel& model) {
  const std::int64_t cols = model.input_dim();
  const std::int64_t width = std::min(config.components + config.oversampling, cols);
  const std::int64_t block_rows = std::min(config.block_rows, model.rows);
  // Rademacher test matrix: a sign per entry from a counter-based hash of the seed, the same on
  // every backend and platform.
  HostMatrix64 basis(cols, width);
  for (std::int64_t i = 0; i < cols * width; ++i)
    basis.values[i] =
        (math::mix64(config.seed ^ math::mix64(static_cast<std::uint64_t>(i))) >> 63) != 0 ? 1.0
                                                                                           : -1.0;
  Buffer<float> q(backend, static_cast<std::size_t>(cols * width));
  Buffer<float> t(backend, static_cast<std::size_t>(block_rows * width));
  Buffer<float> negative_projected_mean(backend, static_cast<std::size_t>(width));
  Buffer<float> product(backend, static_cast<std::size_t>(cols * width));
  Buffer<float> t_sums(backend, static_cast<std::size_t>(width));
  Buffer<double> total(backend, static_cast<std::size_t>(cols * width));
  Buffer<double> t_total(backend, static_cast<std::size_t>(width));
  Buffer<float> small_gram(backend, static_cast<std::size_t>(width * width));
  Buffer<double> small_total(backend, static_cast<std::size_t>(width * width));

  // Uploads the basis and -(μᵀ basis); returns μᵀ basis in float64.
  const auto load_basis = [&]() {
    std::vector<double> projected_mean(static_cast<std::size_t>(width), 0.0);
    for (std::int64_t r = 0; r < cols; ++r)
      for (std::int64_t j = 0; j < width; ++j)
        projected_mean[j] += moments.mean[r] * static_cast<float>(basis(r, j));
    q.upload(to_float(basis.values));
    std::vector<double> negative(projected_mean.size());
    std::transform(projected_mean.begin(), projected_mean.end(), negative.begin(),
                   [](double m) { return -m; });
    negative_projected_mean.upload(to_float(negative));
    return projected_mean;
  };
  // t = block · Q - 1 float(μᵀ Q) on the backend, for the rows of block.
  const auto project = [&](auto block) {
    const DenseView tv = t.matrix(block.rows, width);
    multiply(backend, block, q.matrix(cols, width), tv);
    backend.bias_activation_forward(Activation::identity, tv, negative_projected_mean.data(), tv);
    return tv;
  };

  for (int iteration = 0; iteration <= config.power_iterations; ++iteration) {
    if (iteration > 0) orthonormalise_columns(basis);
    load_basis();
    total.fill_zero();
    t_total.fill_zero();
    blocks.for_each([&](auto block) {
      const DenseView tv = project(block);
      multiply_transposed(backend, block, tv, product.matrix(cols, width));
      backend.accumulate(product.data(), cols * width, total.data());
      backend.column_sums(tv, 1.0f, t_sums.data());
      backend.accumulate(t_sums.data(), width, t_total.data());
    });
    // Y = Xᵀ T - μ (1ᵀ T); its scale does not matter to the range.
    basis.values = total.download();
    const std::vector<double> t_column_sums = t_total.download();
    for (std::int64_t r = 0; r < cols; ++r)
      for (std::int64_t j = 0; j < width; ++j) basis(r, j) -= moments.mean[r] * t_column_sums[j];
  }
  orthonormalise_columns(basis);
  // The float basis the backend multiplies by is the basis of the Rayleigh-Ritz step.
  for (double& v : basis.values) v = static_cast<float>(v);
  const std::vector<double> projected_mean = load_basis();
  const std::vector<float> rounded_mean = negative_projected_mean.download();
  small_total.fill_zero();
  blocks.for_each([&](auto block) {
    const DenseView tv = project(block);
    multiply_transposed(backend, ConstDenseView(tv), tv, small_gram.matrix(width, width));
    backend.accumulate(small_gram.data(), width * width, small_total.data());
  });
  // Σ (t - m)(t - m)ᵀ with m = float(μᵀ Q) → Σ (t - μᵀ Q)(...)ᵀ, as for the covariance.
  HostMatrix64 reduced(width, width);
  reduced.values = small_total.download();
  const auto n = static_cast<double>(model.rows);
  for (std::int64_t i = 0; i < width; ++i) {
    const double di = projected_mean[i] + static_cast<double>(rounded_mean[i]);
    for (std::int64_t j = 0; j < width; ++j) {
      const double dj = projected_mean[j] + static_cast<double>(rounded_mean[j]);
      reduced(i, j) = (reduced(i, j) - n * di * dj) / (n - 1.0);
    }
  }
  // Rows of the eigenvectors are in the basis's coordinates: component = Σ_j u_j · column j.
  HostMatrix64 basis_rows(width, cols);
  for (std::int64_t r = 0; r < cols; ++r)
    for (std::int64_t j = 0; j < width; ++j) basis_rows(j, r) = basis(r, j);
  take_leading(eigen_on_backend(backend, reduced), &basis_rows, config.components, cols, model);
}

void check_pca_config(const PcaConfig& config, std::int64_t rows, std::int64_t cols) {
  require(rows >= 2, "pca: needs at least 2 rows to fit, got " + std::to_string(rows));
  require(config.components >= 1 && config.components <= cols,
          "pca: components must lie in [1, " + std::to_string(cols) + "] (the columns), got " +
              std::to_string(config.components));
  require(config.block_rows >= 1, "pca: block rows must be positive");
  require(config.oversampling >= 0 && config.power_iterations >= 0,
          "pca: oversampling and power iterations must not be negative");
}

template <typename Matrix, typename Blocks>
PcaModel fit(Backend& backend, const Matrix& data, const PcaConfig& config, bool centre_blocks) {
  check_pca_config(config, data.rows, data.cols);
  const ColumnMoments moments = column_moments(data);
  PcaModel model;
  model.rows = data.rows;
  model.mean = to_float(moments.mean);
  model.total_variance = moments.total_variance;
  model.solver = resolve_pca_solver(config.solver, data.cols);
  const std::int64_t block_rows = std::min(config.block_rows, data.rows);
  Blocks blocks(backend, data, block_rows);
  if (model.solver == PcaSolver::randomized) {
    fit_randomized(backend, blocks, moments, config, model);
  } else {
    const std::vector<float> shift =
        centre_blocks ? model.mean : std::vector<float>(model.mean.size(), 0.0f);
    fit_by_covariance(backend, blocks, moments, shift, block_rows, config.components, model);
  }
  return model;
}

}  // namespace

PcaSolver parse_pca_solver(const std::string& name) {
  if (name == "auto") return PcaSolver::automatic;
  if (name == "covariance") return PcaSolver::covariance;
  if (name == "randomized") return PcaSolver::randomized;
  throw Error("unknown PCA solver '" + name + "' (auto, covariance, randomized)");
}

const char* pca_solver_name(PcaSolver solver) {
  switch (solver) {
    case PcaSolver::automatic:
      return "auto";
    case PcaSolver::covariance:
      return "covariance";
    case PcaSolver::randomized:
      return "randomized";
  }
  return "unknown";
}

PcaSolver resolve_pca_solver(PcaSolver solver, std::int64_t columns) {
  if (solver != PcaSolver::automatic) return solver;
  return columns > kRandomizedPcaMaxCovarianceColumns ? PcaSolver::randomized
                                                      : PcaSolver::covariance;
}

std::vector<double> PcaModel::explained_variance_ratio() const {
  std::vector<double> ratio(explained_variance.size());
  for (std::size_t i = 0; i < ratio.size(); ++i)
    ratio[i] = total_variance > 0 ? explained_variance[i] / total_variance : 0.0;
  return ratio;
}

PcaModel fit_pca(Backend& backend, const HostCsr& data, const PcaConfig& config) {
  return fit<HostCsr, CsrBlocks>(backend, data, config, false);
}

PcaModel fit_pca(Backend& backend, const HostDense& data, const PcaConfig& config) {
  return fit<HostDense, DenseBlocks>(backend, data, config, true);
}

RunConfig pca_run_config(const PcaModel& model, const std::string& data_source, double val_fraction,
                         std::uint64_t seed) {
  RunConfig run;
  ModelConfig& m = run.model;
  m.input_dim = model.input_dim();
  m.hidden = {};
  m.latent = model.component_count();
  m.tied_weights = true;
  m.hidden_activation = m.latent_activation = m.output_activation = Activation::identity;
  m.seed = seed;
  run.train.loss = LossKind::mse;
  run.train.epochs = 0;
  run.train.val_fraction = val_fraction;
  run.train.seed = seed;
  run.data_source = data_source;
  return run;
}

std::vector<float> pca_parameters(const PcaModel& model) {
  const std::int64_t cols = model.input_dim();
  const std::int64_t k = model.component_count();
  const ModelLayout layout(pca_run_config(model, "", 0.0, 1).model);
  std::vector<float> parameters(static_cast<std::size_t>(layout.parameter_count()), 0.0f);
  const LayerShape& encoder = layout.layers()[0];
  const LayerShape& decoder = layout.layers()[1];
  // Encoder weights D x k: W(c, i) = component i's entry c; its bias -μ·W; the decoder reads W
  // transposed and adds μ back.
  for (std::int64_t c = 0; c < cols; ++c)
    for (std::int64_t i = 0; i < k; ++i)
      parameters[encoder.weight_offset + c * k + i] = model.components[i * cols + c];
  for (std::int64_t i = 0; i < k; ++i) {
    double projected = 0.0;
    for (std::int64_t c = 0; c < cols; ++c)
      projected += static_cast<double>(model.mean[c]) * model.components[i * cols + c];
    parameters[encoder.bias_offset + i] = static_cast<float>(-projected);
  }
  std::copy(model.mean.begin(), model.mean.end(), parameters.begin() + decoder.bias_offset);
  return parameters;
}

ComparisonRow pca_baseline(Backend& backend, const HostCsr& data, std::int64_t components,
                           double val_fraction, std::uint64_t seed, std::int64_t sample_rows) {
  const auto split = split_rows(data.rows, val_fraction, seed);
  const HostCsr training = select_rows(data, split.first);
  const HostCsr validation = select_rows(data, split.second);
  PcaConfig config;
  config.components = components;
  config.seed = seed;
  const auto start = std::chrono::steady_clock::now();
  const PcaModel pca = fit_pca(backend, training, config);
  ComparisonRow row;
  row.pca = true;
  row.loss = LossKind::mse;
  row.decode = DecodeMode::round;
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  row.samples_per_second = row.seconds > 0 ? static_cast<double>(training.rows) / row.seconds : 0.0;
  TrainedModel model(backend, pca_run_config(pca, "", val_fraction, seed), pca_parameters(pca));
  row.metrics = model.evaluate(validation, DecodeMode::round, &row.detail);
  row.validation_loss = row.metrics.mse;
  const std::int64_t samples = std::min(sample_rows, validation.rows);
  if (samples > 0) {
    std::vector<std::int64_t> first(static_cast<std::size_t>(samples));
    std::iota(first.begin(), first.end(), std::int64_t{0});
    row.sample_counts =
        model.counts_from_outputs(model.outputs(select_rows(validation, first)), row.decode);
  }
  return row;
}

Checkpoint pca_checkpoint(const RunConfig& run, const std::vector<float>& parameters) {
  Checkpoint checkpoint{run, {}};
  checkpoint.state.parameters = parameters;
  checkpoint.state.first_moment.assign(parameters.size(), 0.0f);
  checkpoint.state.second_moment.assign(parameters.size(), 0.0f);
  checkpoint.state.best_parameters = parameters;
  return checkpoint;
}

}  // namespace sparseae
