// Conformance of l1_activity_penalty, kl_sparsity_penalty and sum_of_squares
// (kernels/penalties.cu, src/backend/cpu/penalties.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "conformance_fixtures.hpp"

namespace sparseae::test::conformance {
namespace {

// ==== activity penalties ====

// The penalties' values sum rows x cols terms (l1) or average rows activations per unit (kl);
// each term is an element-wise evaluation.
double penalty_tolerance(std::int64_t terms) {
  return kElementwiseTolerance + product_tolerance(terms);
}

class PenaltyConformance : public BackendTest {
 protected:
  enum class Kind { l1, kl };

  // Applies the penalty to a (pad NaN padding columns) into a grad pre-filled with grad_in (same
  // padding, NaN), and a NaN loss slot in backend memory.
  void check(Kind kind, float rho, float weight, const FloatMatrix& a, const FloatMatrix& grad_in) {
    std::ostringstream trace;
    trace << (kind == Kind::l1 ? "l1" : "kl") << " rho=" << rho << " weight=" << weight << " a "
          << a.rows << "x" << a.cols << " (ld " << a.ld << ")";
    SCOPED_TRACE(trace.str());
    const reference::PenaltyResult expected =
        kind == Kind::l1 ? reference::l1_activity_penalty(weight, reference::to_double(a),
                                                          reference::to_double(grad_in))
                         : reference::kl_sparsity_penalty(rho, weight, reference::to_double(a),
                                                          reference::to_double(grad_in));
    const BackendMatrix a_on = upload(a);
    const BackendMatrix grad_on = upload(grad_in);
    Buffer<float> loss_on = upload(std::vector<float>{kPoison});
    if (kind == Kind::l1) {
      backend().l1_activity_penalty(weight, a_on.const_view(), grad_on.view(), loss_on.data());
    } else {
      backend().kl_sparsity_penalty(rho, weight, a_on.const_view(), grad_on.view(), loss_on.data());
    }
    const FloatMatrix grad = download(grad_on);
    const std::int64_t terms = kind == Kind::l1 ? a.rows * a.cols : a.rows;
    EXPECT_TRUE(
        matrix_close(grad, expected.grad, expected.grad_magnitude, penalty_tolerance(terms)))
        << "gradient (pre-filled, added to)";
    EXPECT_TRUE(padding_untouched(grad));
    const float loss = download(loss_on)[0];
    EXPECT_TRUE(std::isfinite(loss)) << "penalty value " << loss;
    EXPECT_NEAR(loss, expected.loss,
                penalty_tolerance(terms) * expected.loss_magnitude + kSubnormalFloor)
        << "penalty value";
  }

  // a uniform in [low, high) with one element in ten exactly 0 (l1's kink; for kl, whose a are a
  // sigmoid layer's probabilities, an activation that underflowed); grad pre-filled with values in
  // [-1, 1).
  void check_random(Kind kind, float rho, float weight, std::int64_t rows, std::int64_t cols,
                    float low, float high, std::int64_t pad, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    FloatMatrix a = random_matrix(rng, rows, cols, low, high, cols + pad);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c)
        if (reference::uniform(rng, 0.0, 1.0) < 0.1) a(r, c) = 0.0f;
    const FloatMatrix grad_in = random_matrix(rng, rows, cols, -1.0f, 1.0f, cols + pad);
    check(kind, rho, weight, a, grad_in);
  }
};

TEST_P(PenaltyConformance, L1MatchesReference) {
  std::uint64_t seed = 8000;
  for (const Shape& s : kElementwiseShapes)
    check_random(Kind::l1, 0.0f, 0.01f, s.rows, s.cols, -2.0f, 2.0f, 0, ++seed);
  check_random(Kind::l1, 0.0f, 3.0f, 33, 65, 0.0f, 5.0f, 0, ++seed);  // relu-like codes
  check_random(Kind::l1, 0.0f, 0.5f, 33, 65, -2.0f, 2.0f, 7, ++seed);
}

// The kl penalty reads a as a sigmoid layer's outputs: probabilities in [0, 1).
TEST_P(PenaltyConformance, KlMatchesReference) {
  std::uint64_t seed = 8100;
  for (const Shape& s : kElementwiseShapes)
    check_random(Kind::kl, 0.05f, 0.3f, s.rows, s.cols, 0.0f, 0.2f, 0, ++seed);
  check_random(Kind::kl, 0.5f, 1.0f, 129, 33, 0.0f, 1.0f, 0, ++seed);   // rho_hat near rho
  check_random(Kind::kl, 0.01f, 2.0f, 33, 65, 0.0f, 0.03f, 5, ++seed);  // rho_hat near rho
  check_random(Kind::kl, 0.05f, 0.7f, 64, 40, 0.9f, 1.0f, 3, ++seed);   // rho_hat near 0.9
}

// By hand: a = [[1, -2], [0, 3]], weight 0.5 over 2 rows: value 0.25 * 6; gradient 0.25 * sign
// added to the pre-filled [[10, 20], [30, 40]] (nothing at a = 0).
TEST_P(PenaltyConformance, L1AddsToTheGradientByHand) {
  FloatMatrix a(2, 2, 2, 0.0f);
  a.data = {1.0f, -2.0f, 0.0f, 3.0f};
  FloatMatrix grad(2, 2, 2, 0.0f);
  grad.data = {10.0f, 20.0f, 30.0f, 40.0f};
  const BackendMatrix a_on = upload(a);
  const BackendMatrix grad_on = upload(grad);
  Buffer<float> loss_on = upload(std::vector<float>{kPoison});
  backend().l1_activity_penalty(0.5f, a_on.const_view(), grad_on.view(), loss_on.data());
  // Every number here is exact in float.
  EXPECT_EQ(download(loss_on)[0], 1.5f);
  EXPECT_EQ(download(grad_on).data, (std::vector<float>{10.25f, 19.75f, 30.0f, 40.25f}));
}

// By hand: a = [0.25, 0.75] in one column makes rho_hat = 1/2; with rho = 0.05 and beta = 1,
// KL = 0.05 ln 0.1 + 0.95 ln 1.9, and each of the 2 rows' activations gets
// (1/2) (-0.05/0.5 + 0.95/0.5) = 0.9 added, whatever its own value (no sigmoid' here: the
// layer's backward applies it).
TEST_P(PenaltyConformance, KlAddsToTheGradientByHand) {
  constexpr double kTolerance = 16.0 * kEps;  // logf and a few roundings
  FloatMatrix a(2, 1, 1, 0.0f);
  a.data = {0.25f, 0.75f};
  FloatMatrix grad(2, 1, 1, 0.0f);
  grad.data = {1.0f, -1.0f};
  const BackendMatrix a_on = upload(a);
  const BackendMatrix grad_on = upload(grad);
  Buffer<float> loss_on = upload(std::vector<float>{kPoison});
  backend().kl_sparsity_penalty(0.05f, 1.0f, a_on.const_view(), grad_on.view(), loss_on.data());
  const double kl = 0.05 * std::log(0.1) + 0.95 * std::log(1.9);
  EXPECT_NEAR(download(loss_on)[0], kl, kTolerance);
  const double added = 0.5 * (-0.05 / 0.5 + 0.95 / 0.5);
  const std::vector<float> got = download(grad_on).data;
  EXPECT_NEAR(got[0], 1.0 + added, kTolerance * 2);
  EXPECT_NEAR(got[1], -1.0 + added, kTolerance * 2);
}

// A dead unit (every activation 0: rho_hat = 0) and a saturated one (every activation 1:
// rho_hat = 1) are clamped to 1e-6 and 1 - 1e-6: large, finite penalties.
TEST_P(PenaltyConformance, KlClampsDeadAndSaturatedUnits) {
  FloatMatrix a(16, 3, 3, 0.0f);
  for (std::int64_t r = 0; r < 16; ++r) {
    a(r, 0) = 0.0f;
    a(r, 1) = 1.0f;
    a(r, 2) = r % 2 ? 0.75f : 0.25f;
  }
  std::mt19937_64 rng(8200);
  const FloatMatrix grad_in = random_matrix(rng, 16, 3, -1.0f, 1.0f);
  check(Kind::kl, 0.05f, 0.5f, a, grad_in);
  // The dead unit alone, by the clamped formula: beta * (rho ln(rho / 1e-6) + (1 - rho) ln((1 -
  // rho) / (1 - 1e-6))) = 0.5 * 0.5409... ~ 0.2705; its value dominates, so check it is there.
  const FloatMatrix dead = filled_matrix(4, 1, 0.0f);
  const BackendMatrix dead_on = upload(dead);
  const BackendMatrix grad_on = upload(filled_matrix(4, 1, 0.0f));
  Buffer<float> loss_on = upload(std::vector<float>{kPoison});
  backend().kl_sparsity_penalty(0.05f, 0.5f, dead_on.const_view(), grad_on.view(), loss_on.data());
  const double expected = 0.5 * (0.05 * std::log(0.05 / 1e-6) + 0.95 * std::log(0.95 / (1 - 1e-6)));
  // The clamp constant itself is rounded to float: 1e-6f differs from 1e-6 by 3e-8 relative, and
  // logf adds an ulp.
  EXPECT_NEAR(download(loss_on)[0], expected, 1e-5 * expected);
  // Each of its 4 activations gets beta/4 * (-rho/1e-6 + (1 - rho)/(1 - 1e-6)) ~ -6250: a
  // strong push up, finite.
  const double dead_grad = 0.5 / 4 * (-0.05 / 1e-6 + 0.95 / (1 - 1e-6));
  for (const float g : download(grad_on).data) EXPECT_NEAR(g, dead_grad, 1e-5 * -dead_grad);
}

TEST_P(PenaltyConformance, NoRowsGiveZeroPenalty) {
  for (Kind kind : {Kind::l1, Kind::kl}) {
    const BackendMatrix a_on = upload(filled_matrix(0, 5, 0.0f));
    const BackendMatrix grad_on = upload(filled_matrix(0, 5, 0.0f));
    Buffer<float> loss_on = upload(std::vector<float>{kPoison});
    if (kind == Kind::l1) {
      backend().l1_activity_penalty(1.0f, a_on.const_view(), grad_on.view(), loss_on.data());
      EXPECT_EQ(download(loss_on)[0], 0.0f) << "l1";
    } else {
      // No rows: rho_hat = 0 clamped to 1e-6 for each of the 5 units, which is still finite.
      backend().kl_sparsity_penalty(0.05f, 1.0f, a_on.const_view(), grad_on.view(), loss_on.data());
      EXPECT_TRUE(std::isfinite(download(loss_on)[0])) << "kl";
    }
  }
}

TEST_P(PenaltyConformance, RejectsMismatchedShapes) {
  Buffer<float> a(backend(), 6 * 5);
  Buffer<float> grad(backend(), 6 * 5);
  Buffer<float> loss(backend(), 1);
  EXPECT_TRUE(throws_error(
      [&] { backend().l1_activity_penalty(1.0f, a.matrix(6, 5), grad.matrix(5, 6), loss.data()); },
      "l1_activity_penalty: a 6x5 and grad 5x6 differ", true));
  EXPECT_TRUE(throws_error(
      [&] {
        backend().kl_sparsity_penalty(0.05f, 1.0f, a.matrix(6, 5), grad.matrix(6, 4), loss.data());
      },
      "kl_sparsity_penalty: a 6x5 and grad 6x4 differ", true));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(PenaltyConformance);

// ==== sum of squares ====

class SumOfSquaresConformance : public BackendTest {
 protected:
  float run(const std::vector<float>& x) {
    const Buffer<float> x_on = upload(x);
    Buffer<float> out = upload(std::vector<float>{kPoison});
    backend().sum_of_squares(x_on.data(), static_cast<std::int64_t>(x.size()), out.data());
    return download(out)[0];
  }
};

TEST_P(SumOfSquaresConformance, EmptyAndSingle) {
  EXPECT_EQ(run({}), 0.0f) << "n = 0 must write 0";
  EXPECT_EQ(run({-3.0f}), 9.0f);
  EXPECT_EQ(run({1e-3f}), 1e-3f * 1e-3f);
}

TEST_P(SumOfSquaresConformance, MatchesReference) {
  std::uint64_t seed = 9000;
  for (const std::int64_t n : {2, 31, 1000, 65537, (1 << 20) + 3}) {
    std::mt19937_64 rng(++seed);
    const std::vector<float> x = reference::random_log_uniform_floats(rng, n, -4.0, 1.0);
    const double expected = reference::sum_of_squares(x);
    // Every term is positive, so the sum is its own magnitude; squaring adds half an ulp.
    EXPECT_NEAR(run(x), expected, (product_tolerance(n) + kEps) * expected) << "n = " << n;
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(SumOfSquaresConformance);

// ==== scale_values (a rank's gradient weighted by its share of the batch) ====

class ScaleValuesConformance : public BackendTest {};

TEST_P(ScaleValuesConformance, EachValueTimesTheFactorRoundedOnce) {
  std::uint64_t seed = 9100;
  for (const std::int64_t n : {0, 1, 31, 65537, (1 << 20) + 3}) {
    std::mt19937_64 rng(++seed);
    const std::vector<float> x = reference::random_log_uniform_floats(rng, n, -4.0, 1.0);
    Buffer<float> x_on = upload(x);
    const float factor = 0.371f;
    backend().scale_values(x_on.data(), n, factor);
    const std::vector<float> scaled = download(x_on);
    ASSERT_EQ(scaled.size(), x.size());
    // One float multiply per value: the product rounded once, the same bits on every backend.
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(scaled[i], x[i] * factor) << "n = " << n << ", value " << i;
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(ScaleValuesConformance);

}  // namespace
}  // namespace sparseae::test::conformance
