// Conformance of reconstruction_loss, every loss and head against a CSR and a dense target
// (kernels/reconstruction_loss.cu, src/backend/cpu/reconstruction_loss.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <utility>
#include <vector>

#include "conformance_fixtures.hpp"
#include "sparseae/csr.hpp"

namespace sparseae::test::conformance {
namespace {

// An element's loss term or gradient: a few float roundings plus expf/log1pf (softplus, sigmoid,
// the Poisson rate) within 2 ulps each and lgammaf (poisson) within 6 ulps on glibc and in CUDA,
// relative to the magnitude of the term (kElementwiseTolerance); a row's loss and mse_cosine's
// gradient also sum cols terms (|y|^2, |x|^2, x.y and the row's terms), which
// product_tolerance(cols) bounds.
double loss_tolerance(std::int64_t cols) { return kElementwiseTolerance + product_tolerance(cols); }

constexpr LossKind kAllLosses[] = {LossKind::mse,        LossKind::mae,     LossKind::bce,
                                   LossKind::mse_cosine, LossKind::poisson, LossKind::weighted_mse,
                                   LossKind::huber};

// The loss parameters the tests use: none at its default, so that a backend that ignored one
// (or read another in its place) fails.
LossParams test_params(float cosine_weight = 0.5f) {
  LossParams params;
  params.cosine_weight = cosine_weight;
  params.zero_weight = 0.3f;
  params.huber_delta = 1.5f;
  return params;
}

// Counts as bce reads them: divided by the largest, into (0, 1].
HostCsr scaled_to_unit(HostCsr m) {
  float largest = 1.0f;
  for (const float v : m.values) largest = std::max(largest, v);
  for (float& v : m.values) v /= largest;
  return m;
}

class LossConformance : public BackendTest {
 protected:
  // Runs the loss of y against target, read as CSR and then as a dense matrix (the dense path),
  // each time into a grad with grad_pad NaN padding columns and a NaN row_loss, and checks both
  // against the reference. Returns the CSR path's outputs.
  std::pair<FloatMatrix, std::vector<float>> check(LossKind kind, const LossParams& params,
                                                   const FloatMatrix& y, const HostCsr& target,
                                                   std::int64_t grad_pad) {
    std::ostringstream trace;
    trace << "loss " << loss_name(kind) << " cosine_weight=" << params.cosine_weight
          << " zero_weight=" << params.zero_weight << " huber_delta=" << params.huber_delta << " y "
          << y.rows << "x" << y.cols << " (ld " << y.ld << "), target nnz " << target.nnz()
          << ", grad_pad=" << grad_pad;
    SCOPED_TRACE(trace.str());
    const reference::LossResult expected = reference::reconstruction_loss(kind, params, y, target);

    const BackendMatrix y_on = upload(y);
    std::pair<FloatMatrix, std::vector<float>> csr_result;
    for (const bool dense : {false, true}) {
      SCOPED_TRACE(dense ? "dense target" : "CSR target");
      const BackendMatrix grad_on =
          upload(filled_matrix(y.rows, y.cols, kPoison, y.cols + grad_pad));
      Buffer<float> row_loss_on =
          upload(std::vector<float>(static_cast<std::size_t>(y.rows), kPoison));
      if (dense) {
        FloatMatrix dense_target(target.rows, target.cols, target.cols, 0.0f);
        for (std::int64_t r = 0; r < target.rows; ++r)
          for (RowOffset k = target.row_offsets[r]; k < target.row_offsets[r + 1]; ++k)
            dense_target(r, target.col_indices[k]) = target.values[k];
        const BackendMatrix target_on = upload(dense_target);
        backend().reconstruction_loss(kind, params, y_on.const_view(), target_on.const_view(),
                                      grad_on.view(), row_loss_on.data());
      } else {
        const BackendCsr target_on(backend(), target);
        backend().reconstruction_loss(kind, params, y_on.const_view(), target_on.view(),
                                      grad_on.view(), row_loss_on.data());
      }
      FloatMatrix grad = download(grad_on);
      std::vector<float> row_loss = download(row_loss_on);
      EXPECT_TRUE(
          matrix_close(grad, expected.grad, expected.grad_magnitude, loss_tolerance(y.cols)))
          << "gradient";
      EXPECT_TRUE(padding_untouched(grad));
      EXPECT_TRUE(vector_close(row_loss, expected.row_loss, expected.row_loss_magnitude,
                               loss_tolerance(y.cols)))
          << "row losses";
      if (!dense) csr_result = {std::move(grad), std::move(row_loss)};
    }
    return csr_result;
  }

  // Random outputs in the range each loss sees in training (logits for bce, log-rates for
  // poisson) against random counts (scaled into (0, 1] for bce).
  void check_random(LossKind kind, const LossParams& params, std::int64_t rows, std::int64_t cols,
                    double density, double empty_rows, std::int64_t y_pad, std::int64_t grad_pad,
                    std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    HostCsr target = random_csr(rng, rows, cols, density, empty_rows);
    if (kind == LossKind::bce) target = scaled_to_unit(std::move(target));
    const auto [low, high] = kind == LossKind::bce       ? std::pair(-6.0f, 6.0f)
                             : kind == LossKind::poisson ? std::pair(-4.0f, 3.0f)
                                                         : std::pair(-1.0f, 4.0f);
    check(kind, params, random_matrix(rng, rows, cols, low, high, cols + y_pad), target, grad_pad);
  }
};

TEST_P(LossConformance, MatchesReferenceForEveryLossAndShape) {
  std::uint64_t seed = 7000;
  for (LossKind kind : kAllLosses)
    for (const Shape& s : kElementwiseShapes)
      check_random(kind, test_params(), s.rows, s.cols, 0.1, 0.2, 0, 0, ++seed);
}

TEST_P(LossConformance, CosineWeights) {
  std::uint64_t seed = 7100;
  for (const float weight : {0.0f, 0.1f, 1.0f, 10.0f})
    check_random(LossKind::mse_cosine, test_params(weight), 33, 65, 0.2, 0.1, 0, 0, ++seed);
}

// weighted_mse at zero weights 0 (the zeros ignored), 1 (plain mse) and 10; huber with a delta
// below every |y - x| of a count (linear almost everywhere), at 1.5 and above every |y - x|
// (half the mse everywhere).
TEST_P(LossConformance, ZeroWeightsAndHuberDeltas) {
  std::uint64_t seed = 7150;
  for (const float weight : {0.0f, 1.0f, 10.0f}) {
    LossParams params = test_params();
    params.zero_weight = weight;
    check_random(LossKind::weighted_mse, params, 33, 65, 0.2, 0.1, 0, 0, ++seed);
  }
  for (const float delta : {0.01f, 1.5f, 100.0f}) {
    LossParams params = test_params();
    params.huber_delta = delta;
    check_random(LossKind::huber, params, 33, 65, 0.2, 0.1, 0, 0, ++seed);
  }
  // weighted_mse with zero weight 1 is mse, exactly: the same float operations.
  std::mt19937_64 rng(++seed);
  const HostCsr target = random_csr(rng, 9, 40, 0.3, 0.1);
  const FloatMatrix y = random_matrix(rng, 9, 40, -1.0f, 4.0f);
  LossParams one = test_params();
  one.zero_weight = 1.0f;
  const auto weighted = check(LossKind::weighted_mse, one, y, target, 0);
  const auto mse = check(LossKind::mse, one, y, target, 0);
  EXPECT_EQ(weighted.first.data, mse.first.data);
  EXPECT_EQ(weighted.second, mse.second);
}

TEST_P(LossConformance, RowsWithoutNonZerosAndACsrWithoutAny) {
  std::uint64_t seed = 7200;
  for (LossKind kind : kAllLosses) {
    check_random(kind, test_params(), 129, 257, 0.05, 0.8, 0, 0, ++seed);  // most rows empty
    check_random(kind, test_params(), 33, 65, 0.0, 0.0, 0, 0, ++seed);     // no non-zeros at all
  }
}

TEST_P(LossConformance, BatchOfOneAnd512Wide) {
  std::uint64_t seed = 7300;
  for (LossKind kind : kAllLosses) {
    check_random(kind, test_params(), 1, 512, 0.05, 0.0, 0, 0, ++seed);
    check_random(kind, test_params(), 1, 1, 1.0, 0.0, 0, 0, ++seed);
    check_random(kind, test_params(), 256, 512, 0.03, 0.1, 0, 0, ++seed);
  }
}

TEST_P(LossConformance, LeadingDimensionsLargerThanColumns) {
  std::uint64_t seed = 7400;
  for (LossKind kind : kAllLosses) {
    check_random(kind, test_params(), 33, 65, 0.1, 0.2, 3, 0, ++seed);
    check_random(kind, test_params(), 7, 13, 0.3, 0.2, 0, 5, ++seed);
    check_random(kind, test_params(), 1, 512, 0.05, 0.0, 64, 1, ++seed);
  }
}

TEST_P(LossConformance, NoRowsWritesNothing) {
  for (LossKind kind : kAllLosses) check_random(kind, test_params(), 0, 13, 0.1, 0.0, 0, 0, 7500);
}

// The definitions by hand, independent of the reference: y = [[1, 3, 0], [0, 0, 0]] against
// x = [[0, 2, 0], [0, 0, 0]], averaged over 6 entries.
TEST_P(LossConformance, HandComputedValues) {
  // Float results of a few operations on small exact inputs.
  constexpr double kTolerance = 8.0 * kEps;
  HostCsr x;
  x.rows = 2;
  x.cols = 3;
  x.row_offsets = {0, 1, 1};
  x.col_indices = {1};
  x.values = {2.0f};
  FloatMatrix y(2, 3, 3, 0.0f);
  y(0, 0) = 1.0f;
  y(0, 1) = 3.0f;
  const auto run = [&](LossKind kind, const LossParams& params, const FloatMatrix& out,
                       const HostCsr& target, const std::vector<double>& row_loss,
                       const std::vector<double>& grad) {
    SCOPED_TRACE(loss_name(kind));
    const BackendMatrix y_on = upload(out);
    const BackendCsr target_on(backend(), target);
    const BackendMatrix grad_on = upload(filled_matrix(out.rows, out.cols, kPoison));
    Buffer<float> row_loss_on = upload(std::vector<float>(out.rows, kPoison));
    backend().reconstruction_loss(kind, params, y_on.const_view(), target_on.view(), grad_on.view(),
                                  row_loss_on.data());
    const std::vector<float> got_loss = download(row_loss_on);
    const FloatMatrix got_grad = download(grad_on);
    for (std::size_t r = 0; r < row_loss.size(); ++r)
      EXPECT_NEAR(got_loss[r], row_loss[r], kTolerance * (1.0 + std::fabs(row_loss[r])))
          << "row " << r;
    for (std::size_t i = 0; i < grad.size(); ++i)
      EXPECT_NEAR(got_grad.data[i], grad[i], kTolerance * (1.0 + std::fabs(grad[i])))
          << "gradient element " << i;
  };
  run(LossKind::mse, test_params(0.0f), y, x, {2.0 / 6, 0.0}, {2.0 / 6, 2.0 / 6, 0, 0, 0, 0});
  // mae: sign(0) = 0 where output and target are both 0.
  run(LossKind::mae, test_params(0.0f), y, x, {2.0 / 6, 0.0}, {1.0 / 6, 1.0 / 6, 0, 0, 0, 0});
  // mse_cosine, weight 0.5 over 2 rows: row 0 has |y| = sqrt(10), |x| = 2, x.y = 6; row 1 is all
  // zeros on both sides, so its cosine loss is 1 and its gradient 0.
  const double cosine = 6.0 / (std::sqrt(10.0) * 2.0);
  const double per_row = 0.5 / 2;
  const double norms = std::sqrt(10.0) * 2.0;
  run(LossKind::mse_cosine, test_params(0.5f), y, x, {2.0 / 6 + per_row * (1 - cosine), per_row},
      {2.0 / 6 + per_row * (cosine * 1 / 10), 2.0 / 6 + per_row * (-2 / norms + cosine * 3 / 10), 0,
       0, 0, 0});
  // bce on logits [[0, 2, -1], [0, 0, 0]] against [[0, 0.5, 0], [0, 0, 0]].
  FloatMatrix logits(2, 3, 3, 0.0f);
  logits(0, 1) = 2.0f;
  logits(0, 2) = -1.0f;
  HostCsr half = x;
  half.values = {0.5f};
  const auto softplus = [](double v) { return std::log(1.0 + std::exp(v)); };
  const auto sigmoid = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  run(LossKind::bce, test_params(0.0f), logits, half,
      {(softplus(0) + softplus(2) - 0.5 * 2 + softplus(-1)) / 6, 3 * softplus(0) / 6},
      {0.5 / 6, (sigmoid(2) - 0.5) / 6, sigmoid(-1) / 6, 0.5 / 6, 0.5 / 6, 0.5 / 6});
  // weighted_mse, zero weight 0.3: the zero targets at (0, 0) (y = 1) and (0, 2) (y = 0) pay
  // 0.3 y^2, the count 2 at (0, 1) (y = 3) pays (3 - 2)^2.
  run(LossKind::weighted_mse, test_params(), y, x, {(0.3 + 1.0) / 6, 0.0},
      {2 * 0.3 / 6, 2.0 / 6, 0, 0, 0, 0});
  // huber, delta 1.5, on y = [[1, 5, -2], [0, 0, 0]]: d = 1 (quadratic: 0.5), d = 3 (linear:
  // 1.5 * (3 - 0.75)), d = -2 (linear: 1.5 * (2 - 0.75)).
  FloatMatrix wide(2, 3, 3, 0.0f);
  wide(0, 0) = 1.0f;
  wide(0, 1) = 5.0f;
  wide(0, 2) = -2.0f;
  run(LossKind::huber, test_params(), wide, x, {(0.5 + 1.5 * 2.25 + 1.5 * 1.25) / 6, 0.0},
      {1.0 / 6, 1.5 / 6, -1.5 / 6, 0, 0, 0});
  // poisson on log-rates [[0, 1, -1], [0, 0, 0]]: rate e^eta, and at the count 2 the full
  // negative log-likelihood e - 2 * 1 + log(2!).
  FloatMatrix eta(2, 3, 3, 0.0f);
  eta(0, 1) = 1.0f;
  eta(0, 2) = -1.0f;
  const double e = std::exp(1.0);
  run(LossKind::poisson, test_params(), eta, x,
      {(1.0 + (e - 2.0 + std::log(2.0)) + 1.0 / e) / 6, 3.0 / 6},
      {1.0 / 6, (e - 2.0) / 6, 1.0 / e / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6});
  // Above the continuation point: at eta = 40 the rate is e^30 * 11 and its slope e^30; the
  // count 3 adds -3 * 40 + log(3!) (lost to rounding at this rate, as it must be).
  HostCsr three;
  three.rows = 1;
  three.cols = 2;
  three.row_offsets = {0, 1};
  three.col_indices = {1};
  three.values = {3.0f};
  FloatMatrix high(1, 2, 2, 40.0f);
  const double e30 = std::exp(30.0);
  run(LossKind::poisson, test_params(), high, three,
      {(e30 * 11 + e30 * 11 - 120.0 + std::log(6.0)) / 2}, {e30 / 2, (e30 - 3.0) / 2});
}

// A row whose output is all zeros has no direction: its cosine loss is 1 and only mse's
// gradient remains; likewise a row whose target is empty.
TEST_P(LossConformance, ZeroRowsHaveCosineLossOneAndNoCosineGradient) {
  constexpr double kTolerance = 8.0 * kEps;  // a few roundings of exact small inputs
  HostCsr x;
  x.rows = 2;
  x.cols = 3;
  x.row_offsets = {0, 2, 2};  // row 0: columns 0 and 2; row 1: empty
  x.col_indices = {0, 2};
  x.values = {1.0f, 3.0f};
  FloatMatrix y(2, 3, 3, 0.0f);  // row 0 all zero
  y(1, 0) = 2.0f;
  y(1, 1) = -1.0f;
  const BackendMatrix y_on = upload(y);
  const BackendCsr x_on(backend(), x);
  const BackendMatrix grad_on = upload(filled_matrix(2, 3, kPoison));
  Buffer<float> row_loss_on = upload(std::vector<float>(2, kPoison));
  backend().reconstruction_loss(LossKind::mse_cosine, test_params(1.0f), y_on.const_view(),
                                x_on.view(), grad_on.view(), row_loss_on.data());
  const std::vector<float> row_loss = download(row_loss_on);
  const FloatMatrix grad = download(grad_on);
  // mse over 6 entries, cosine weight 1 over 2 rows.
  EXPECT_NEAR(row_loss[0], (1.0 + 9.0) / 6 + 0.5, kTolerance);
  EXPECT_NEAR(row_loss[1], (4.0 + 1.0) / 6 + 0.5, kTolerance);
  const double expected_grad[] = {-2.0 / 6, 0.0, -6.0 / 6, 4.0 / 6, -2.0 / 6, 0.0};
  for (int i = 0; i < 6; ++i)
    EXPECT_NEAR(grad.data[i], expected_grad[i], kTolerance) << "gradient element " << i;
}

// Far from the usual range: logits of +-100 and +-1000 (softplus and sigmoid must not overflow),
// and counts up to 1e5 for mse and mse_cosine (squares near 1e10, row sums near 1e12).
TEST_P(LossConformance, ExtremeValuesStayFiniteAndAccurate) {
  std::mt19937_64 rng(7600);
  {
    const HostCsr target = scaled_to_unit(random_csr(rng, 8, 64, 0.3, 0.1));
    FloatMatrix logits(8, 64, 64, 0.0f);
    const float extremes[] = {-1000.0f, -100.0f, -30.0f, 30.0f, 100.0f, 1000.0f};
    for (std::size_t i = 0; i < logits.data.size(); ++i) logits.data[i] = extremes[i % 6];
    check(LossKind::bce, test_params(0.0f), logits, target, 0);
  }
  for (LossKind kind : {LossKind::mse, LossKind::mse_cosine, LossKind::mae}) {
    HostCsr target = random_csr(rng, 16, 512, 0.2, 0.1);
    for (float& v : target.values) v = static_cast<float>(reference::uniform_int(rng, 1, 100000));
    const FloatMatrix y = random_matrix(rng, 16, 512, 0.0f, 1e5f);
    check(kind, test_params(1.0f), y, target, 0);
  }
  // check() compares with the reference; finiteness on top, spelled out.
  for (LossKind kind : kAllLosses) {
    const HostCsr target = scaled_to_unit(random_csr(rng, 4, 32, 0.5, 0.0));
    FloatMatrix y(4, 32, 32, 0.0f);
    for (std::size_t i = 0; i < y.data.size(); ++i) y.data[i] = i % 2 ? 100.0f : -100.0f;
    const BackendMatrix y_on = upload(y);
    const BackendCsr target_on(backend(), target);
    const BackendMatrix grad_on = upload(filled_matrix(4, 32, kPoison));
    Buffer<float> row_loss_on = upload(std::vector<float>(4, kPoison));
    backend().reconstruction_loss(kind, test_params(1.0f), y_on.const_view(), target_on.view(),
                                  grad_on.view(), row_loss_on.data());
    for (const float v : download(row_loss_on))
      EXPECT_TRUE(std::isfinite(v)) << loss_name(kind) << " row loss " << v;
    for (const float v : download(grad_on).data)
      EXPECT_TRUE(std::isfinite(v)) << loss_name(kind) << " gradient " << v;
  }
}

// The count losses far from the usual range, through both target paths (check() runs the CSR
// and the dense one): counts from 1 to 1e5 (1e5 itself, 1, and uniform between) among zeros;
// poisson log-rates from -1e4 to 1e4 (expf underflows to 0 below about -104, and would overflow
// above 88.7 but for the linear continuation above 30, the point itself and both sides of it
// included); weighted_mse and huber outputs up to +-1e6 (squares near 1e12). Everything stays
// finite and matches the reference within loss_tolerance of the magnitudes.
TEST_P(LossConformance, CountLossesStayFiniteAtExtremeCountsAndOutputs) {
  std::mt19937_64 rng(7650);
  const float log_rates[] = {-1e4f, -1000.0f, -104.0f, -88.0f,  -30.0f, -1.0f,
                             0.0f,  1.0f,     11.5f,   29.99f,  30.0f,  30.01f,
                             88.0f, 89.0f,    100.0f,  1000.0f, 1e4f};
  const float outputs[] = {-1e6f, -1e5f, -1000.0f, -1.0f, 0.0f, 0.5f, 1.0f, 1000.0f, 1e5f, 1e6f};
  for (const LossKind kind : {LossKind::poisson, LossKind::weighted_mse, LossKind::huber}) {
    HostCsr target = random_csr(rng, 17, 512, 0.3, 0.1);
    for (std::size_t i = 0; i < target.values.size(); ++i)
      target.values[i] = i % 3 == 0   ? 1e5f
                         : i % 3 == 1 ? 1.0f
                                      : static_cast<float>(reference::uniform_int(rng, 1, 100000));
    FloatMatrix y(17, 512, 512, 0.0f);
    for (float& v : y.data)
      v = kind == LossKind::poisson ? log_rates[reference::uniform_int(rng, 0, 16)]
                                    : outputs[reference::uniform_int(rng, 0, 9)];
    const auto [grad, row_loss] = check(kind, test_params(), y, target, 0);
    for (const float v : row_loss)
      EXPECT_TRUE(std::isfinite(v)) << loss_name(kind) << " row loss " << v;
    for (const float v : grad.data)
      EXPECT_TRUE(std::isfinite(v)) << loss_name(kind) << " gradient " << v;
  }
}

TEST_P(LossConformance, RejectsMismatchedShapes) {
  std::mt19937_64 rng(7700);
  const BackendCsr target(backend(), random_csr(rng, 3, 4, 0.5, 0.0));
  Buffer<float> y(backend(), 3 * 5);
  Buffer<float> grad(backend(), 3 * 5);
  Buffer<float> row_loss(backend(), 3);
  EXPECT_TRUE(throws_error(
      [&] {
        backend().reconstruction_loss(LossKind::mse, test_params(), y.matrix(3, 5), target.view(),
                                      grad.matrix(3, 5), row_loss.data());
      },
      "reconstruction_loss: target 3x4 and y 3x5 differ", true));
  EXPECT_TRUE(throws_error(
      [&] {
        backend().reconstruction_loss(LossKind::mse, test_params(), y.matrix(3, 4), target.view(),
                                      grad.matrix(4, 3), row_loss.data());
      },
      "differ", false));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LossConformance);

}  // namespace
}  // namespace sparseae::test::conformance
