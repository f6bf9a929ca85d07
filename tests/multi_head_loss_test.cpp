// The count likelihoods with several outputs per entry (nb, zinb, hurdle): conformance of both
// backends with the long-double references of tests/reference.hpp (CSR and dense targets,
// extreme counts and head values), the decode rules against brute force over the pmf, and the
// model and metrics plumbing of the extra heads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "math/loss_math.hpp"
#include "reference.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "sparseae/metrics.hpp"
#include "sparseae/model.hpp"

namespace sparseae::test {
namespace {

using reference::FloatMatrix;

constexpr double kEps = std::numeric_limits<float>::epsilon();
constexpr LossKind kHeadLosses[] = {LossKind::nb, LossKind::zinb, LossKind::hurdle,
                                    LossKind::hurdle_nb};

// A float result of a double evaluation: a few float roundings of the result (gradients), and
// a row's sum of cols double terms rounded once (row losses), relative to the magnitudes the
// reference gives.
constexpr double kTolerance = 16.0 * kEps;

FloatMatrix dense_of(const HostCsr& target) {
  FloatMatrix dense(target.rows, target.cols, target.cols, 0.0f);
  for (std::int64_t r = 0; r < target.rows; ++r)
    for (RowOffset k = target.row_offsets[r]; k < target.row_offsets[r + 1]; ++k)
      dense(r, target.col_indices[k]) = target.values[k];
  return dense;
}

HostCsr csr_of(const FloatMatrix& dense) {
  HostCsr m;
  m.rows = dense.rows;
  m.cols = dense.cols;
  m.row_offsets.assign(1, 0);
  m.col_indices.clear();
  m.values.clear();
  for (std::int64_t r = 0; r < dense.rows; ++r) {
    for (std::int64_t c = 0; c < dense.cols; ++c)
      if (dense(r, c) != 0.0f) {
        m.col_indices.push_back(static_cast<ColIndex>(c));
        m.values.push_back(dense(r, c));
      }
    m.row_offsets.push_back(static_cast<RowOffset>(m.values.size()));
  }
  return m;
}

class HeadLossConformance : public BackendTest {
 protected:
  // Runs the loss of y (rows x K*cols) against target on the CSR and the dense path and checks
  // every gradient and row loss against the reference, and that all are finite.
  void check(LossKind kind, const FloatMatrix& y, const HostCsr& target) {
    std::ostringstream trace;
    trace << "loss " << loss_name(kind) << ", y " << y.rows << "x" << y.cols << ", target nnz "
          << target.nnz();
    SCOPED_TRACE(trace.str());
    const reference::LossResult expected =
        reference::reconstruction_loss(kind, LossParams{}, y, target);
    const BackendMatrix y_on = upload(y);
    for (const bool dense : {false, true}) {
      SCOPED_TRACE(dense ? "dense target" : "CSR target");
      const BackendMatrix grad_on =
          upload(reference::filled_matrix(y.rows, y.cols, reference::kPoison, y.cols + 3));
      Buffer<float> row_loss_on =
          upload(std::vector<float>(static_cast<std::size_t>(y.rows), reference::kPoison));
      if (dense) {
        const BackendMatrix target_on = upload(dense_of(target));
        backend().reconstruction_loss(kind, LossParams{}, y_on.const_view(),
                                      target_on.const_view(), grad_on.view(), row_loss_on.data());
      } else {
        const BackendCsr target_on(backend(), target);
        backend().reconstruction_loss(kind, LossParams{}, y_on.const_view(), target_on.view(),
                                      grad_on.view(), row_loss_on.data());
      }
      const FloatMatrix grad = download(grad_on);
      const std::vector<float> row_loss = download(row_loss_on);
      int failures = 0;
      for (std::int64_t r = 0; r < y.rows; ++r) {
        for (std::int64_t c = 0; c < y.cols; ++c) {
          const double got = grad(r, c);
          const double want = expected.grad(r, c);
          const double bound =
              kTolerance * expected.grad_magnitude(r, c) + std::numeric_limits<float>::min();
          if (!std::isfinite(got) || !(std::fabs(got - want) <= bound)) {
            if (++failures <= 8)
              ADD_FAILURE() << "grad(" << r << ", " << c << ") = " << got << ", reference "
                            << want << " (bound " << bound << ")";
          }
        }
        for (std::int64_t c = y.cols; c < grad.ld; ++c)
          EXPECT_TRUE(std::isnan(grad.data[static_cast<std::size_t>(r * grad.ld + c)]))
              << "padding written";
        const double bound = kTolerance * expected.row_loss_magnitude[r] +
                             std::numeric_limits<float>::min();
        if (!std::isfinite(row_loss[r]) ||
            !(std::fabs(row_loss[r] - expected.row_loss[r]) <= bound))
          ADD_FAILURE() << "row_loss[" << r << "] = " << row_loss[r] << ", reference "
                        << expected.row_loss[r] << " (bound " << bound << ")";
      }
    }
  }
};

TEST_P(HeadLossConformance, RandomHeadsAndCounts) {
  std::uint64_t seed = 9100;
  for (const LossKind kind : kHeadLosses) {
    const std::int64_t heads = output_heads(kind);
    for (const auto& [rows, cols] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {3, 7},
                                    {17, 33}, {5, 300}, {40, 129}}) {
      std::mt19937_64 rng(++seed);
      const HostCsr target = reference::random_csr(rng, rows, cols, 0.2, 0.2, 30);
      // Log-means in [-4, 4], log-dispersions in [-3, 5], logits in [-4, 4].
      FloatMatrix y(rows, heads * cols, heads * cols + 2, reference::kPoison);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < heads * cols; ++c) {
          const std::int64_t head = c / cols;
          const bool dispersion = head == dispersion_head(kind);
          y(r, c) = static_cast<float>(dispersion ? reference::uniform(rng, -3.0, 5.0)
                                                  : reference::uniform(rng, -4.0, 4.0));
        }
      check(kind, y, target);
    }
  }
}

// Counts 0..1e5 against head values over the whole float range that training can reach:
// log-means and log-rates from -1e4 (the rate underflows) to 1e4 (the linear continuation),
// log-dispersions beyond the clamp both ways, logits to +-40. Every result must be finite and
// match the reference.
TEST_P(HeadLossConformance, ExtremeCountsAndHeadsStayFiniteAndExact) {
  const float counts[] = {0.0f, 1.0f, 2.0f, 7.0f, 100.0f, 10000.0f, 100000.0f};
  const float log_means[] = {-1e4f, -100.0f, -20.0f, 0.0f, 5.0f, 29.5f, 35.0f, 200.0f, 1e4f};
  const float log_dispersions[] = {-1e4f, -40.0f, -5.0f, 0.0f, 3.0f, 25.0f, 40.0f, 1e4f};
  const float logits[] = {-40.0f, -5.0f, 0.0f, 5.0f, 40.0f};
  for (const LossKind kind : kHeadLosses) {
    const std::int64_t heads = output_heads(kind);
    std::vector<std::vector<float>> entries;  // {x, h0, h1, h2}
    for (const float x : counts)
      for (const float eta : log_means) {
        if (kind == LossKind::hurdle) {
          for (const float s : logits) entries.push_back({x, s, eta, 0.0f});
          continue;
        }
        if (kind == LossKind::hurdle_nb) {
          for (const float phi : log_dispersions)
            for (const float s : logits) entries.push_back({x, s, eta, phi});
          continue;
        }
        for (const float phi : log_dispersions) {
          if (kind == LossKind::nb) {
            entries.push_back({x, eta, phi, 0.0f});
          } else {
            for (const float s : logits) entries.push_back({x, eta, phi, s});
          }
        }
      }
    const std::int64_t cols = 64;
    const std::int64_t rows = (static_cast<std::int64_t>(entries.size()) + cols - 1) / cols;
    FloatMatrix y(rows, heads * cols, heads * cols, 0.0f);
    FloatMatrix x(rows, cols, cols, 0.0f);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const std::int64_t r = static_cast<std::int64_t>(i) / cols;
      const std::int64_t c = static_cast<std::int64_t>(i) % cols;
      x(r, c) = entries[i][0];
      for (std::int64_t k = 0; k < heads; ++k) y(r, c + k * cols) = entries[i][1 + k];
    }
    check(kind, y, csr_of(x));
  }
}

TEST_P(HeadLossConformance, RefusesOutputsOfTheWrongWidth) {
  std::mt19937_64 rng(5);
  const HostCsr target = reference::random_csr(rng, 3, 4, 0.5, 0.0);
  const BackendCsr target_on(backend(), target);
  const BackendMatrix y_on = upload(reference::filled_matrix(3, 4, 0.0f));
  const BackendMatrix grad_on = upload(reference::filled_matrix(3, 4, 0.0f));
  Buffer<float> row_loss(backend(), 3);
  EXPECT_THROW(backend().reconstruction_loss(LossKind::nb, LossParams{}, y_on.const_view(),
                                             target_on.view(), grad_on.view(), row_loss.data()),
               Error);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(HeadLossConformance);

// ---- decode: the rules of loss_math.hpp against brute force over the pmf ----

// log NB(k; mu, theta) from the definition, in long double.
long double log_nb_pmf(long double k, long double mu, long double theta) {
  return std::lgamma(k + theta) - std::lgamma(theta) - std::lgamma(k + 1.0L) +
         theta * std::log(theta / (theta + mu)) + k * std::log(mu / (theta + mu));
}

// The argmax over k in [0, limit) of log_pmf(k), the larger k on a tie within 1e-12.
template <typename LogPmf>
long long brute_force_mode(LogPmf log_pmf, long long limit) {
  long long best = 0;
  long double best_value = log_pmf(0);
  for (long long k = 1; k < limit; ++k) {
    const long double v = log_pmf(static_cast<long double>(k));
    if (v >= best_value - 1e-12L * std::fabs(best_value) - 1e-15L) {
      if (v > best_value) best_value = v;
      best = k;
    }
  }
  return best;
}

TEST(HeadDecode, NbModeIsTheArgmaxOfThePmf) {
  int checked = 0;
  for (const float eta : {-3.0f, -0.5f, 0.0f, 0.3f, 1.0f, 1.7f, 2.5f, 3.2f, 4.0f})
    for (const float phi : {-3.0f, -0.5f, 0.0f, 0.1f, 0.7f, 1.5f, 3.0f, 8.0f}) {
      const float h[3] = {eta, phi, 0.0f};
      const long double mu = std::exp(static_cast<long double>(eta));
      const long double theta = std::exp(static_cast<long double>(phi));
      const long long want = brute_force_mode(
          [&](long double k) { return log_nb_pmf(k, mu, theta); }, 2000);
      EXPECT_EQ(math::head_count(LossKind::nb, DecodeMode::mode, h, 1.0f),
                static_cast<float>(want))
          << "eta " << eta << " phi " << phi;
      ++checked;
    }
  EXPECT_EQ(checked, 72);
}

TEST(HeadDecode, ZinbModeComparesTheInflatedZeroWithTheNbMode) {
  for (const float eta : {-1.0f, 0.5f, 1.5f, 2.5f, 3.5f})
    for (const float phi : {-1.0f, 0.5f, 2.0f, 6.0f})
      for (const float s : {-6.0f, -2.0f, -0.5f, 0.0f, 1.0f, 3.0f}) {
        const float h[3] = {eta, phi, s};
        const long double mu = std::exp(static_cast<long double>(eta));
        const long double theta = std::exp(static_cast<long double>(phi));
        const long double pi = 1.0L / (1.0L + std::exp(-static_cast<long double>(s)));
        const auto log_pmf = [&](long double k) {
          const long double nb = std::exp(log_nb_pmf(k, mu, theta));
          return std::log((k == 0 ? pi : 0.0L) + (1.0L - pi) * nb);
        };
        EXPECT_EQ(math::head_count(LossKind::zinb, DecodeMode::mode, h, 1.0f),
                  static_cast<float>(brute_force_mode(log_pmf, 2000)))
            << "eta " << eta << " phi " << phi << " s " << s;
      }
}

TEST(HeadDecode, HurdleModeIsTheThresholdedTruncatedPoissonMode) {
  for (const float eta : {-4.0f, -0.5f, 0.0f, 0.4f, 1.2f, 2.3f, 3.9f})
    for (const float s : {-3.0f, -0.01f, 0.01f, 2.0f}) {
      const float h[2] = {s, eta};
      const long double mu = std::exp(static_cast<long double>(eta));
      // The zero-truncated Poisson's mode over k >= 1.
      long long ztp = 1;
      long double best = -INFINITY;
      for (long long k = 1; k < 2000; ++k) {
        const long double v = k * std::log(mu) - std::lgamma(k + 1.0L);
        if (v >= best) {
          best = v;
          ztp = k;
        }
      }
      const float want = s < 0.0f ? 0.0f : static_cast<float>(ztp);
      EXPECT_EQ(math::head_count(LossKind::hurdle, DecodeMode::mode, h, 1.0f), want)
          << "eta " << eta << " s " << s;
    }
}

TEST(HeadDecode, HurdleNbModeIsTheThresholdedTruncatedNbMode) {
  int nonzero = 0;
  for (const float eta : {-4.0f, -0.5f, 0.0f, 0.4f, 1.2f, 2.3f, 3.9f})
    for (const float phi : {-2.0f, 0.0f, 0.5f, 2.0f, 6.0f})
      for (const float s : {-3.0f, -0.01f, 0.01f, 2.0f}) {
        const float h[3] = {s, eta, phi};
        const long double mu = std::exp(static_cast<long double>(eta));
        const long double theta = std::exp(static_cast<long double>(phi));
        // The zero-truncated nb's mode over k >= 1: the nb pmf's argmax there.
        const long long ztnb =
            1 + brute_force_mode([&](long double k) { return log_nb_pmf(k + 1, mu, theta); }, 4000);
        const float want = s < 0.0f ? 0.0f : static_cast<float>(ztnb);
        nonzero += want > 1.0f;
        EXPECT_EQ(math::head_count(LossKind::hurdle_nb, DecodeMode::mode, h, 1.0f), want)
            << "eta " << eta << " phi " << phi << " s " << s;
      }
  EXPECT_GT(nonzero, 10) << "the grid reaches modes above 1";
}

TEST(HeadDecode, MeansMatchTheExpectationOfThePmf) {
  for (const float eta : {-2.0f, 0.0f, 1.0f, 2.0f})
    for (const float phi : {-0.5f, 1.0f, 4.0f})
      for (const float s : {-2.0f, 0.0f, 1.5f}) {
        const long double mu = std::exp(static_cast<long double>(eta));
        const long double theta = std::exp(static_cast<long double>(phi));
        const long double pi = 1.0L / (1.0L + std::exp(-static_cast<long double>(s)));
        long double nb_mean = 0, ztp_mean = 0, ztp_mass = 0;
        for (long long k = 1; k < 5000; ++k) {
          nb_mean += k * std::exp(log_nb_pmf(k, mu, theta));
          const long double p = std::exp(k * std::log(mu) - mu - std::lgamma(k + 1.0L));
          ztp_mean += k * p;
          ztp_mass += p;
        }
        const float nb_h[3] = {eta, phi, s};
        const float hurdle_h[2] = {s, eta};
        EXPECT_NEAR(math::head_mean(LossKind::nb, nb_h, 1.0f), nb_mean, 1e-5 * nb_mean);
        EXPECT_NEAR(math::head_mean(LossKind::zinb, nb_h, 1.0f), (1 - pi) * nb_mean,
                    1e-5 * nb_mean);
        EXPECT_NEAR(math::head_mean(LossKind::hurdle, hurdle_h, 1.0f),
                    pi * ztp_mean / ztp_mass, 1e-5 * (1 + ztp_mean / ztp_mass));
        const long double nb_nonzero_mass = 1.0L - std::exp(log_nb_pmf(0, mu, theta));
        const float hurdle_nb_h[3] = {s, eta, phi};
        EXPECT_NEAR(math::head_mean(LossKind::hurdle_nb, hurdle_nb_h, 1.0f),
                    pi * nb_mean / nb_nonzero_mass, 1e-5 * (1 + nb_mean / nb_nonzero_mass));
        // mean and round both round the mean.
        EXPECT_EQ(math::head_count(LossKind::nb, DecodeMode::mean, nb_h, 1.0f),
                  std::nearbyint(static_cast<float>(nb_mean)));
      }
}

TEST(HeadDecode, LossesAreCountLikelihoodsWithTheirHeads) {
  EXPECT_EQ(output_heads(LossKind::nb), 2);
  EXPECT_EQ(output_heads(LossKind::zinb), 3);
  EXPECT_EQ(output_heads(LossKind::hurdle), 2);
  EXPECT_EQ(output_heads(LossKind::hurdle_nb), 3);
  EXPECT_EQ(output_heads(LossKind::poisson), 1);
  for (const LossKind kind : kHeadLosses) {
    EXPECT_TRUE(has_count_likelihood(kind));
    EXPECT_EQ(default_decode(kind), DecodeMode::mean);
    EXPECT_NO_THROW(check_decode(kind, DecodeMode::mode));
    EXPECT_EQ(parse_loss(loss_name(kind)), kind);
  }
}

TEST(HeadModel, OutputLayerHasAUnitPerHeadAndColumn) {
  ModelConfig m;
  m.input_dim = 10;
  m.hidden = {6};
  m.latent = 3;
  m.output_heads = 3;
  const ModelLayout layout(m);
  EXPECT_EQ(layout.layers().back().out, 30);
  EXPECT_EQ(layout.layers().front().in, 10);
  m.tied_weights = true;
  EXPECT_THROW(ModelLayout{m}, Error);
}

// The metrics read the heads: an nb model whose heads give mu = 3, theta = e^3 decodes every
// entry to the mode 2 (floor((theta - 1) mu / theta)) and the mean 3, and its NLL is the loss.
TEST(HeadMetrics, DecodeAndNllFromTheHeads) {
  const float eta = std::log(3.0f), phi = 3.0f;
  std::vector<float> outputs = {eta, eta, phi, phi};  // 1 row, 2 columns, 2 heads
  HostCsr target;
  target.rows = 1;
  target.cols = 2;
  target.row_offsets = {0, 1};
  target.col_indices = {1};
  target.values = {2.0f};
  for (const DecodeMode decode : {DecodeMode::mode, DecodeMode::mean}) {
    MetricsAccumulator metrics(LossKind::nb, 1.0f, decode);
    metrics.add(ConstDenseView(outputs.data(), 1, 4), target.view());
    const ReconstructionMetrics m = metrics.result();
    EXPECT_NEAR(m.mse, ((3.0 - 0.0) * (3.0 - 0.0) + 1.0) / 2.0, 1e-5);
    EXPECT_EQ(m.nonzero_exact_fraction, decode == DecodeMode::mode ? 1.0 : 0.0);
    const float h0[2] = {eta, phi};
    const double nll = math::head_loss_term(LossKind::nb, h0, 0.0f).value +
                       math::head_loss_term(LossKind::nb, h0, 2.0f).value;
    EXPECT_NEAR(m.nll_bits_per_row, nll / std::log(2.0), 1e-9);
  }
}

}  // namespace
}  // namespace sparseae::test
