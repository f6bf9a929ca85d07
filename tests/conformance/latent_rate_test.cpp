// Conformance of quantize_latents and latent_rate_penalty (kernels/penalties.cu,
// src/backend/cpu/penalties.cpp): the integer codes, the training noise and the latents' code
// length under their prior, against the float64 references.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

#include "conformance_fixtures.hpp"

namespace sparseae::test::conformance {
namespace {

class LatentQuantizeConformance : public BackendTest {};

// Rounding is exact: ties to even, the clamp at 2^24, NaN to -2^24, padding untouched.
TEST_P(LatentQuantizeConformance, RoundsToIntegerCodes) {
  const std::vector<float> values = {0.0f,
                                     0.49999997f,
                                     0.5f,
                                     1.5f,
                                     2.5f,
                                     -0.5f,
                                     -1.5f,
                                     -2.7f,
                                     3.2f,
                                     1e30f,
                                     -1e30f,
                                     16777215.0f,
                                     1e-30f,
                                     7.5f,
                                     -7.25f,
                                     100.5f,
                                     16777217.0f,
                                     std::numeric_limits<float>::quiet_NaN(),
                                     std::numeric_limits<float>::infinity()};
  const auto cols = static_cast<std::int64_t>(values.size());
  FloatMatrix z(2, cols, cols + 3, reference::kPoison);
  for (std::int64_t c = 0; c < cols; ++c) {
    z(0, c) = values[static_cast<std::size_t>(c)];
    z(1, c) = -values[static_cast<std::size_t>(c)];
  }
  const BackendMatrix z_on = upload(z);
  backend().quantize_latents(z_on.view(), nullptr);
  const FloatMatrix got = download(z_on);
  for (std::int64_t r = 0; r < 2; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const double expected = reference::latent_code(z(r, c));
      EXPECT_EQ(got(r, c), static_cast<float>(expected))
          << "z(" << r << ", " << c << ") = " << z(r, c);
    }
  EXPECT_TRUE(padding_untouched(got));
}

// The noise is the reference's, bit for bit, on every shape; the seed is read when the op runs
// (what a captured step relies on), and another seed draws other noise.
TEST_P(LatentQuantizeConformance, AddsTheSeededNoise) {
  std::uint64_t seed_value = 9000;
  for (const Shape& s : kElementwiseShapes) {
    std::mt19937_64 rng(++seed_value);
    const FloatMatrix z = random_matrix(rng, s.rows, s.cols, -20.0f, 20.0f, s.cols + 2);
    Buffer<std::uint64_t> seed = upload(std::vector<std::uint64_t>{seed_value * 977});
    const BackendMatrix z_on = upload(z);
    backend().quantize_latents(z_on.view(), seed.data());
    const FloatMatrix got = download(z_on);
    std::int64_t mismatches = 0;
    double mean = 0.0;
    for (std::int64_t r = 0; r < s.rows; ++r)
      for (std::int64_t c = 0; c < s.cols; ++c) {
        const double noise =
            reference::latent_noise(seed_value * 977, static_cast<std::uint64_t>(r * s.cols + c));
        mean += noise;
        ASSERT_GE(noise, -0.5);
        ASSERT_LT(noise, 0.5);
        // The op's float add of the exact noise.
        mismatches += got(r, c) != z(r, c) + static_cast<float>(noise);
      }
    EXPECT_EQ(mismatches, 0) << s.rows << "x" << s.cols;
    EXPECT_TRUE(padding_untouched(got));
    if (s.rows * s.cols >= 4096) {
      EXPECT_NEAR(mean / static_cast<double>(s.rows * s.cols), 0.0, 0.02) << "noise not centred";
    }
  }
  // The seed's value at the time the op runs: rewritten between two runs on the same input.
  const FloatMatrix zeros = filled_matrix(4, 8, 0.0f);
  Buffer<std::uint64_t> seed = upload(std::vector<std::uint64_t>{1});
  const BackendMatrix first = upload(zeros);
  backend().quantize_latents(first.view(), seed.data());
  seed.upload(std::vector<std::uint64_t>{2});
  const BackendMatrix second = upload(zeros);
  backend().quantize_latents(second.view(), seed.data());
  const FloatMatrix a = download(first);
  const FloatMatrix b = download(second);
  EXPECT_EQ(a(3, 7), static_cast<float>(reference::latent_noise(1, 31)));
  EXPECT_EQ(b(3, 7), static_cast<float>(reference::latent_noise(2, 31)));
  EXPECT_NE(a.data, b.data);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LatentQuantizeConformance);

class LatentRateConformance : public BackendTest {
 protected:
  // Applies the penalty to z (NaN padding) into a grad pre-filled with grad_in, a NaN prior
  // gradient and a NaN loss slot.
  void check(float weight, const std::vector<float>& prior, const FloatMatrix& z,
             const FloatMatrix& grad_in) {
    std::ostringstream trace;
    trace << "rate weight=" << weight << " z " << z.rows << "x" << z.cols << " (ld " << z.ld << ")";
    SCOPED_TRACE(trace.str());
    const std::vector<double> prior_double(prior.begin(), prior.end());
    const reference::RatePenaltyResult expected = reference::latent_rate_penalty(
        weight, prior_double, reference::to_double(z), reference::to_double(grad_in));
    const BackendMatrix z_on = upload(z);
    const BackendMatrix grad_on = upload(grad_in);
    const Buffer<float> prior_on = upload(prior);
    Buffer<float> prior_grad_on = upload(std::vector<float>(prior.size(), kPoison));
    Buffer<float> loss_on = upload(std::vector<float>{kPoison});
    backend().latent_rate_penalty(weight, prior_on.data(), z_on.const_view(), grad_on.view(),
                                  prior_grad_on.data(), loss_on.data());
    // Each element's terms are evaluated in double and rounded to float (kElementwiseTolerance);
    // the value and the prior's gradients sum rows x cols and rows of them.
    const FloatMatrix grad = download(grad_on);
    EXPECT_TRUE(matrix_close(grad, expected.grad, expected.grad_magnitude, kElementwiseTolerance))
        << "gradient (pre-filled, added to)";
    EXPECT_TRUE(padding_untouched(grad));
    EXPECT_TRUE(vector_close(download(prior_grad_on), expected.prior_grad,
                             expected.prior_grad_magnitude,
                             kElementwiseTolerance + product_tolerance(z.rows)))
        << "prior gradient (locations, then log-scales)";
    const float loss = download(loss_on)[0];
    EXPECT_NEAR(
        loss, expected.loss,
        (kElementwiseTolerance + product_tolerance(z.rows * z.cols)) * expected.loss_magnitude +
            kSubnormalFloor)
        << "rate value";
  }

  void check_random(float weight, std::int64_t rows, std::int64_t cols, float spread,
                    std::int64_t pad, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    const FloatMatrix z = random_matrix(rng, rows, cols, -spread, spread, cols + pad);
    const FloatMatrix grad_in = random_matrix(rng, rows, cols, -1.0f, 1.0f, cols + pad);
    std::vector<float> prior(static_cast<std::size_t>(2 * cols));
    for (std::int64_t c = 0; c < cols; ++c) {
      prior[static_cast<std::size_t>(c)] = static_cast<float>(reference::uniform(rng, -2.0, 2.0));
      prior[static_cast<std::size_t>(cols + c)] =
          static_cast<float>(reference::uniform(rng, -2.0, 1.5));
    }
    check(weight, prior, z, grad_in);
  }
};

TEST_P(LatentRateConformance, MatchesReference) {
  std::uint64_t seed = 9100;
  for (const Shape& s : kElementwiseShapes) check_random(0.25f, s.rows, s.cols, 6.0f, 0, ++seed);
  check_random(1.0f / 512.0f, 256, 32, 3.0f, 5, ++seed);  // a training batch's latents
  check_random(3.0f, 33, 65, 0.6f, 7, ++seed);            // near the locations
}

// Log-scales beyond +-8 are clamped: their gradient is 0, and the value is that of the clamp.
// The narrow densities' latents lie within 0.4 of their locations, where the reference's
// difference of sigmoids keeps its digits.
TEST_P(LatentRateConformance, ClampsTheLogScale) {
  std::mt19937_64 rng(9200);
  FloatMatrix z = random_matrix(rng, 17, 4, -3.0f, 3.0f, 6);
  for (std::int64_t r = 0; r < z.rows; ++r) {
    z(r, 1) = static_cast<float>(1.0 + reference::uniform(rng, -0.4, 0.4));
    z(r, 3) = static_cast<float>(0.5 + reference::uniform(rng, -0.4, 0.4));
  }
  const FloatMatrix grad_in = random_matrix(rng, 17, 4, -1.0f, 1.0f, 6);
  check(0.5f, {0.0f, 1.0f, -1.0f, 0.5f, 9.0f, -9.0f, 8.0f, -7.5f}, z, grad_in);
}

// Far in the tails, where the mass underflows any difference of sigmoids, the value and the
// gradients stay finite: the code length grows linearly with the distance.
TEST_P(LatentRateConformance, StaysFiniteInTheTails) {
  FloatMatrix z(1, 4, 4, 0.0f);
  z.data = {1e6f, -1e6f, 3e4f, -40.0f};
  const BackendMatrix z_on = upload(z);
  const BackendMatrix grad_on = upload(filled_matrix(1, 4, 0.0f));
  const Buffer<float> prior_on = upload(std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f,  //
                                                           -8.0f, 0.0f, 8.0f, -3.0f});
  Buffer<float> prior_grad_on = upload(std::vector<float>(8, kPoison));
  Buffer<float> loss_on = upload(std::vector<float>{kPoison});
  backend().latent_rate_penalty(1.0f, prior_on.data(), z_on.const_view(), grad_on.view(),
                                prior_grad_on.data(), loss_on.data());
  EXPECT_TRUE(std::isfinite(download(loss_on)[0]));
  EXPECT_GT(download(loss_on)[0], 1e9f);  // 1e6 / e^-8 nats, about
  for (const float g : download(grad_on).data) EXPECT_TRUE(std::isfinite(g)) << g;
  for (const float g : download(prior_grad_on)) EXPECT_TRUE(std::isfinite(g)) << g;
}

// By hand: z = mu gives p = sigmoid(1/2s) - sigmoid(-1/2s) = tanh(1/4s); at s = 1 the value is
// -log tanh(1/4), and the location's gradient is 0 by symmetry.
TEST_P(LatentRateConformance, ValueByHand) {
  const BackendMatrix z_on = upload(filled_matrix(2, 1, 0.75f));
  const BackendMatrix grad_on = upload(filled_matrix(2, 1, 0.0f));
  const Buffer<float> prior_on = upload(std::vector<float>{0.75f, 0.0f});
  Buffer<float> prior_grad_on = upload(std::vector<float>(2, kPoison));
  Buffer<float> loss_on = upload(std::vector<float>{kPoison});
  backend().latent_rate_penalty(2.0f, prior_on.data(), z_on.const_view(), grad_on.view(),
                                prior_grad_on.data(), loss_on.data());
  // weight 2 over 2 rows: the sum of the two rows' values.
  EXPECT_NEAR(download(loss_on)[0], -2.0 * std::log(std::tanh(0.25)), 1e-6);
  EXPECT_NEAR(download(prior_grad_on)[0], 0.0, 1e-7);
  for (const float g : download(grad_on).data) EXPECT_NEAR(g, 0.0, 1e-7);
}

TEST_P(LatentRateConformance, RejectsMismatchedShapes) {
  Buffer<float> z(backend(), 6 * 5);
  Buffer<float> grad(backend(), 6 * 5);
  Buffer<float> prior(backend(), 10);
  Buffer<float> prior_grad(backend(), 10);
  Buffer<float> loss(backend(), 1);
  EXPECT_TRUE(throws_error(
      [&] {
        backend().latent_rate_penalty(1.0f, prior.data(), z.matrix(6, 5), grad.matrix(5, 6),
                                      prior_grad.data(), loss.data());
      },
      "latent_rate_penalty: z 6x5 and grad 5x6 differ", true));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LatentRateConformance);

}  // namespace
}  // namespace sparseae::test::conformance
