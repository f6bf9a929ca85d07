// Conformance of optimizer_step: sgd, Adam and AdamW, gradient clipping and step scalars; and of
// unit_norm_rows, the decoder's dictionary after the step (kernels/optimizer.cu,
// src/backend/cpu/optimizer.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "conformance_fixtures.hpp"
#include "math/op_math.hpp"
#include "sparseae/error.hpp"

namespace sparseae::test::conformance {
namespace {

// One optimizer step from identical float state, relative to the sum of |terms| of each update:
// about ten float roundings per parameter.
constexpr double kOptimizerTolerance = 16.0 * kEps;

struct OptimizerCase {
  const char* label;
  OptimizerKind kind;
  float weight_decay;
  float momentum;
};

constexpr OptimizerCase kOptimizerCases[] = {
    {"adam", OptimizerKind::adam, 0.0f, 0.0f},
    {"adam + L2 0.01", OptimizerKind::adam, 0.01f, 0.0f},
    {"adamw", OptimizerKind::adamw, 0.0f, 0.0f},
    {"adamw + decoupled decay 0.01", OptimizerKind::adamw, 0.01f, 0.0f},
    {"sgd", OptimizerKind::sgd, 0.0f, 0.0f},
    {"sgd + L2 0.01", OptimizerKind::sgd, 0.01f, 0.0f},
    {"sgd momentum 0.9", OptimizerKind::sgd, 0.0f, 0.9f},
    {"sgd momentum 0.9 + L2 0.01", OptimizerKind::sgd, 0.01f, 0.9f},
};

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Clipping multiplies every gradient by min(1, max_norm / sqrt(sum_squares)): sqrtf, a division
// and the float rounding of the squared norm handed in add about 2 roundings to each update term,
// on top of kOptimizerTolerance.
constexpr double kClipScaleTolerance = 4.0 * kEps;

class OptimizerConformance : public BackendTest {
 protected:
  // One step of the backend from its current state, checked against the reference step run from
  // the same state (downloaded first), so rounding cannot accumulate over steps. With
  // config.max_grad_norm > 0 the backend gets the float of the exact squared norm of grads (the
  // reduction itself is sum_of_squares' own test).
  void step_and_compare(const OptimizerConfig& config, int step, const std::vector<float>& grads,
                        Buffer<float>& params, Buffer<float>& first, Buffer<float>& second) {
    SCOPED_TRACE("step " + std::to_string(step));
    const bool adam_like = config.kind != OptimizerKind::sgd;
    const std::size_t n = grads.size();
    reference::OptimizerState state{
        to_double(download(params)), to_double(download(first)),
        adam_like ? to_double(download(second)) : std::vector<double>{}};
    const reference::OptimizerState before = state;
    const std::vector<double> grads_double = to_double(grads);
    reference::optimizer_step(config, step, grads_double, state);

    const bool clipping = config.max_grad_norm > 0.0f;
    const double sum_squares = reference::sum_of_squares(grads);
    const double clip = clipping ? reference::clip_scale(config.max_grad_norm, sum_squares) : 1.0;
    const Buffer<float> grads_on = upload(grads);
    const Buffer<float> sum_squares_on =
        upload(std::vector<float>{static_cast<float>(sum_squares)});
    backend().optimizer_step(config, step, static_cast<std::int64_t>(n), params.data(),
                             grads_on.data(), first.data(), adam_like ? second.data() : nullptr,
                             clipping ? sum_squares_on.data() : nullptr);

    // Scales: each result's sum of |terms|, from the state before the step.
    const double lr = config.learning_rate;
    const double decay = config.weight_decay;
    const double beta1 = config.beta1;
    const double beta2 = config.beta2;
    const double correction1 = 1.0 - std::pow(beta1, step);
    const double correction2 = 1.0 - std::pow(beta2, step);
    std::vector<double> param_scale(n), first_scale(n), second_scale(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double p = std::fabs(before.params[i]);
      const double g = clip * std::fabs(grads_double[i]);
      if (adam_like) {
        const double g_terms = g + (config.kind == OptimizerKind::adam ? decay * p : 0.0);
        first_scale[i] = beta1 * std::fabs(before.first_moment[i]) + (1 - beta1) * g_terms;
        second_scale[i] = beta2 * before.second_moment[i] + (1 - beta2) * g_terms * g_terms;
        const double denominator = std::sqrt(state.second_moment[i] / correction2) + config.epsilon;
        param_scale[i] = p + (config.kind == OptimizerKind::adamw ? lr * decay * p : 0.0) +
                         lr * (first_scale[i] / correction1) / denominator;
      } else {
        first_scale[i] = config.momentum * std::fabs(before.first_moment[i]) + g + decay * p;
        param_scale[i] = p + lr * first_scale[i];
      }
    }
    const double tolerance = kOptimizerTolerance + (clipping ? kClipScaleTolerance : 0.0);
    EXPECT_TRUE(vector_close(download(params), state.params, param_scale, tolerance))
        << "parameters";
    EXPECT_TRUE(vector_close(download(first), state.first_moment, first_scale, tolerance))
        << (adam_like ? "first moment" : "velocity");
    if (adam_like) {
      EXPECT_TRUE(vector_close(download(second), state.second_moment, second_scale, tolerance))
          << "second moment";
    }
  }

  // Runs kSteps steps of every optimizer case from fresh state; max_norm_factor > 0 turns
  // clipping on with max_grad_norm = max_norm_factor * the norm of the first step's gradients.
  void run_cases(double max_norm_factor, std::uint64_t seed) {
    constexpr std::int64_t kParams = 3001;
    constexpr int kSteps = 5;
    for (const OptimizerCase& c : kOptimizerCases) {
      SCOPED_TRACE(c.label);
      OptimizerConfig config;
      config.kind = c.kind;
      config.learning_rate = 0.01f;
      config.weight_decay = c.weight_decay;
      config.momentum = c.momentum;
      const bool adam_like = c.kind != OptimizerKind::sgd;
      std::mt19937_64 rng(++seed);
      const auto n = static_cast<std::size_t>(kParams);
      Buffer<float> params = upload(reference::random_log_uniform_floats(rng, kParams, -3.0, 1.0));
      Buffer<float> first = upload(std::vector<float>(n, 0.0f));
      Buffer<float> second = upload(std::vector<float>(adam_like ? n : 0, 0.0f));
      for (int step = 1; step <= kSteps; ++step) {
        // Gradients from 1e-9 (where adam's epsilon matters) to 10.
        const std::vector<float> grads = reference::random_log_uniform_floats(rng, kParams, -9, 1);
        if (max_norm_factor > 0.0 && step == 1) {
          config.max_grad_norm =
              static_cast<float>(max_norm_factor * std::sqrt(reference::sum_of_squares(grads)));
        }
        step_and_compare(config, step, grads, params, first, second);
      }
    }
  }
};

// Five consecutive steps on the same buffers (so bias correction sees t = 1..5); sgd runs with no
// second-moment buffer.
TEST_P(OptimizerConformance, ConsecutiveStepsMatchReference) { run_cases(0.0, 6000); }

// Clipping to a quarter of the gradient norm (every step of the five draws gradients of about
// the same norm, so it stays active), against the reference that clips in double.
TEST_P(OptimizerConformance, ClippingActiveMatchesReference) { run_cases(0.25, 6100); }

// A max norm four times the gradient norm leaves the gradients as they are.
TEST_P(OptimizerConformance, ClippingInactiveMatchesReference) { run_cases(4.0, 6200); }

// Scaling by exactly 1 changes nothing: an inactive clip gives bit for bit the unclipped step.
TEST_P(OptimizerConformance, InactiveClipIsBitIdenticalToNoClip) {
  constexpr std::size_t kParams = 1001;
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    SCOPED_TRACE(optimizer_name(kind));
    std::mt19937_64 rng(6300);
    const std::vector<float> start = reference::random_log_uniform_floats(rng, kParams, -3, 1);
    const std::vector<float> grads = reference::random_log_uniform_floats(rng, kParams, -6, 0);
    const auto sum_squares = static_cast<float>(reference::sum_of_squares(grads));
    std::vector<float> results[2];
    for (int clipped = 0; clipped < 2; ++clipped) {
      OptimizerConfig config;
      config.kind = kind;
      config.weight_decay = 0.01f;
      config.max_grad_norm = clipped ? 2.0f * std::sqrt(sum_squares) : 0.0f;
      Buffer<float> params = upload(start);
      const Buffer<float> grads_on = upload(grads);
      Buffer<float> first = upload(std::vector<float>(kParams, 0.0f));
      Buffer<float> second = upload(std::vector<float>(kParams, 0.0f));
      const Buffer<float> norm_on = upload(std::vector<float>{sum_squares});
      for (int step = 1; step <= 3; ++step)
        backend().optimizer_step(config, step, kParams, params.data(), grads_on.data(),
                                 first.data(), second.data(), clipped ? norm_on.data() : nullptr);
      results[clipped] = download(params);
    }
    EXPECT_TRUE(exactly_equal(results[1], results[0], kParams, "inactive clip vs no clip"));
  }
}

// What a captured step does: the learning rate and bias corrections read from backend memory
// (StepScalars) replace the config's and the step's, bit for bit.
TEST_P(OptimizerConformance, StepScalarsInBackendMemoryReplaceRateAndStep) {
  constexpr std::size_t kParams = 1001;
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    SCOPED_TRACE(optimizer_name(kind));
    std::mt19937_64 rng(6350);
    const std::vector<float> start = reference::random_log_uniform_floats(rng, kParams, -3, 1);
    const std::vector<float> grads = reference::random_log_uniform_floats(rng, kParams, -6, 0);
    const std::vector<float> moment = reference::random_log_uniform_floats(rng, kParams, -6, -2);
    std::vector<float> square_moment(moment);
    for (float& v : square_moment) v = std::fabs(v);  // a second moment is never negative
    OptimizerConfig config;
    config.kind = kind;
    config.weight_decay = 0.01f;
    config.learning_rate = 3e-3f;
    constexpr std::int64_t kStep = 7;
    std::vector<float> results[2];
    for (int from_memory = 0; from_memory < 2; ++from_memory) {
      Buffer<float> params = upload(start);
      const Buffer<float> grads_on = upload(grads);
      Buffer<float> first = upload(moment);
      Buffer<float> second = upload(square_moment);
      const Buffer<StepScalars> scalars(
          backend(), std::vector<StepScalars>{math::make_step_scalars(config, kStep)});
      OptimizerConfig given = config;
      if (from_memory) given.learning_rate = 0.5f;  // replaced, as the step is
      backend().optimizer_step(given, from_memory ? 1 : kStep, kParams, params.data(),
                               grads_on.data(), first.data(), second.data(), nullptr,
                               from_memory ? scalars.data() : nullptr);
      results[from_memory] = download(params);
    }
    EXPECT_TRUE(exactly_equal(results[1], results[0], kParams, "scalars from memory vs given"));
    EXPECT_FALSE(exactly_equal(results[0], start, kParams, "")) << "the step changed nothing";
  }
}

// By hand: gradients (3, 4) have norm 5; clipped to 1 they become (0.6, 0.8), and plain sgd
// with learning rate 1 subtracts exactly that. At the boundary (max norm 5) nothing changes.
TEST_P(OptimizerConformance, ClipScaleIsMaxNormOverNorm) {
  // 0.6 and 0.8 are not exact in float: a few roundings of the scale and the update.
  constexpr double kTolerance = 4.0 * kEps;
  for (const float max_norm : {1.0f, 5.0f, 10.0f}) {
    SCOPED_TRACE("max_grad_norm " + std::to_string(max_norm));
    OptimizerConfig config;
    config.kind = OptimizerKind::sgd;
    config.learning_rate = 1.0f;
    config.momentum = 0.0f;
    config.max_grad_norm = max_norm;
    Buffer<float> params = upload(std::vector<float>{0.0f, 0.0f});
    const Buffer<float> grads = upload(std::vector<float>{3.0f, 4.0f});
    Buffer<float> velocity = upload(std::vector<float>{0.0f, 0.0f});
    const Buffer<float> sum_squares = upload(std::vector<float>{25.0f});
    backend().optimizer_step(config, 1, 2, params.data(), grads.data(), velocity.data(), nullptr,
                             sum_squares.data());
    const double scale = std::min(1.0, max_norm / 5.0);
    const std::vector<float> p = download(params);
    EXPECT_NEAR(p[0], -3.0 * scale, kTolerance * 3.0);
    EXPECT_NEAR(p[1], -4.0 * scale, kTolerance * 4.0);
  }
}

// All-zero gradients have norm 0: no division by zero, nothing moves (sgd without decay).
TEST_P(OptimizerConformance, ClippingZeroGradientsStaysFinite) {
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    SCOPED_TRACE(optimizer_name(kind));
    OptimizerConfig config;
    config.kind = kind;
    config.max_grad_norm = 1.0f;
    const std::vector<float> start{1.0f, -2.0f, 0.5f};
    Buffer<float> params = upload(start);
    const Buffer<float> grads = upload(std::vector<float>(3, 0.0f));
    Buffer<float> first = upload(std::vector<float>(3, 0.0f));
    Buffer<float> second = upload(std::vector<float>(3, 0.0f));
    const Buffer<float> sum_squares = upload(std::vector<float>{0.0f});
    backend().optimizer_step(config, 1, 3, params.data(), grads.data(), first.data(), second.data(),
                             sum_squares.data());
    EXPECT_EQ(download(params), start);
    for (const float m : download(first)) EXPECT_EQ(m, 0.0f);
  }
}

TEST_P(OptimizerConformance, ClippingNeedsTheSquaredNorm) {
  OptimizerConfig config;
  config.max_grad_norm = 1.0f;
  Buffer<float> params = upload(std::vector<float>(4, 1.0f));
  const Buffer<float> grads = upload(std::vector<float>(4, 1.0f));
  Buffer<float> first = upload(std::vector<float>(4, 0.0f));
  Buffer<float> second = upload(std::vector<float>(4, 0.0f));
  EXPECT_TRUE(throws_error(
      [&] {
        backend().optimizer_step(config, 1, 4, params.data(), grads.data(), first.data(),
                                 second.data(), nullptr);
      },
      "optimizer_step: clipping needs the squared gradient norm", true));
}

// The update must stop at n: a launch that rounds n up to whole blocks must not touch the rest.
TEST_P(OptimizerConformance, UpdatesExactlyNParameters) {
  constexpr std::size_t kUsed = 1000;
  constexpr std::size_t kAllocated = 1031;
  constexpr float kSentinel = 1234.5f;
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    SCOPED_TRACE(optimizer_name(kind));
    OptimizerConfig config;
    config.kind = kind;
    Buffer<float> params = upload(std::vector<float>(kAllocated, kSentinel));
    const Buffer<float> grads = upload(std::vector<float>(kAllocated, 1.0f));
    Buffer<float> first = upload(std::vector<float>(kAllocated, kSentinel));
    Buffer<float> second = upload(std::vector<float>(kAllocated, kSentinel));
    for (std::int64_t n : {std::int64_t{0}, static_cast<std::int64_t>(kUsed)}) {
      backend().optimizer_step(config, 1, n, params.data(), grads.data(), first.data(),
                               second.data(), nullptr);
      const std::vector<float> p = download(params);
      const std::vector<float> m = download(first);
      const auto used = static_cast<std::size_t>(n);
      for (std::size_t i = 0; i < kAllocated; ++i) {
        if (i < used) {
          ASSERT_NE(p[i], kSentinel) << "parameter " << i << " of " << n << " not updated";
        } else {
          ASSERT_EQ(p[i], kSentinel) << "parameter " << i << " beyond n = " << n << " changed";
          ASSERT_EQ(m[i], kSentinel) << "moment " << i << " beyond n = " << n << " changed";
        }
      }
    }
  }
}

TEST_P(OptimizerConformance, AdamNeedsASecondMoment) {
  Buffer<float> params = upload(std::vector<float>(16, 1.0f));
  const Buffer<float> grads = upload(std::vector<float>(16, 1.0f));
  Buffer<float> first = upload(std::vector<float>(16, 0.0f));
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw}) {
    OptimizerConfig config;
    config.kind = kind;
    EXPECT_THROW(backend().optimizer_step(config, 1, 16, params.data(), grads.data(), first.data(),
                                          nullptr, nullptr),
                 Error)
        << optimizer_name(kind);
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(OptimizerConformance);

// ==== unit_norm_rows (--decoder-norm) ====

// Relative to the reference entry: the one rounding of the double quotient to float is half an
// ulp, and the double sum of squares, sqrt and division (a relative error of n 2^-53 at most,
// 5e-13 at 4096 columns) stay far below the other half, whatever order a backend sums in.
constexpr double kUnitNormTolerance = kEps;

class UnitNormConformance : public BackendTest {};

TEST_P(UnitNormConformance, RescalesEachRowToUnitNormAndLeavesZeroRowsZero) {
  std::mt19937_64 rng(2600);
  for (const std::int64_t width :
       {std::int64_t{1}, std::int64_t{7}, std::int64_t{128}, std::int64_t{4096}}) {
    SCOPED_TRACE("width " + std::to_string(width));
    // Padded rows; row 1 all zeros; row 2 so small that its squares would underflow in float.
    FloatMatrix m = random_matrix(rng, 6, width, -2.0f, 2.0f, width + 3);
    for (std::int64_t c = 0; c < width; ++c) {
      m(1, c) = 0.0f;
      m(2, c) *= 1e-22f;
    }
    const DoubleMatrix expected = reference::unit_norm_rows(m);
    const BackendMatrix m_on = upload(m);
    backend().unit_norm_rows(m_on.view());
    const FloatMatrix got = download(m_on);
    DoubleMatrix scale = expected;
    for (double& value : scale.data) value = std::fabs(value);
    EXPECT_TRUE(matrix_close(got, expected, scale, kUnitNormTolerance));
    EXPECT_TRUE(padding_untouched(got));
    for (std::int64_t c = 0; c < width; ++c) EXPECT_EQ(got(1, c), 0.0f) << "column " << c;
  }
}

// A launch whose grid covers fewer blocks than rows must still reach every row: as many rows as
// latents are, with one non-zero each, which comes out as exactly +-1.
TEST_P(UnitNormConformance, ReachesEveryRow) {
  constexpr std::int64_t kRows = 70000;
  FloatMatrix m = filled_matrix(kRows, 3, 0.0f);
  for (std::int64_t r = 0; r < kRows; ++r) m(r, r % 3) = r % 2 == 0 ? 0.5f : -3.0f;
  const BackendMatrix m_on = upload(m);
  backend().unit_norm_rows(m_on.view());
  const FloatMatrix got = download(m_on);
  std::int64_t wrong = 0;
  for (std::int64_t r = 0; r < kRows; ++r) wrong += got(r, r % 3) != (r % 2 == 0 ? 1.0f : -1.0f);
  EXPECT_EQ(wrong, 0);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(UnitNormConformance);

}  // namespace
}  // namespace sparseae::test::conformance
