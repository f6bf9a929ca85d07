// The precision of the dense products (TrainConfig::precision, sae train --precision): on both
// backends (tensor cores on cuda, an emulation on cpu), tf32 and bf16 products stay within their
// formats' rounding of the float64 reference, the precision lasts only while training, and a
// model trained in tf32 or bf16 reproduces the counts about as well as one trained in fp32 (the
// bounds below).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "math/op_math.hpp"
#include "reference.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"

namespace sparseae::test {
namespace {

TEST(MatmulPrecision, NamesParseAndPrint) {
  for (const MatmulPrecision p :
       {MatmulPrecision::fp32, MatmulPrecision::tf32, MatmulPrecision::bf16})
    EXPECT_EQ(parse_matmul_precision(matmul_precision_name(p)), p);
  EXPECT_EQ(error_message([] { parse_matmul_precision("fp8"); }),
            "unknown precision 'fp8': expected fp32, tf32 or bf16");
}

// The operand rounding the cpu emulates: to nearest, ties to even, at bf16's 2^-7 and tf32's
// 2^-10 spacing above 1.
TEST(MatmulPrecision, OperandsRoundToNearestTiesToEven) {
  using math::round_operand;
  constexpr MatmulPrecision bf16 = MatmulPrecision::bf16;
  constexpr MatmulPrecision tf32 = MatmulPrecision::tf32;
  EXPECT_EQ(round_operand(bf16, 1.0f), 1.0f);
  EXPECT_EQ(round_operand(bf16, 1.0f + 0x1p-8f), 1.0f);            // a tie: to the even 1
  EXPECT_EQ(round_operand(bf16, 1.0f + 0x3p-8f), 1.0f + 0x1p-6f);  // a tie: to the even 1 + 2^-6
  EXPECT_EQ(round_operand(bf16, 1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);
  EXPECT_EQ(round_operand(bf16, -(1.0f + 0x3p-8f)), -(1.0f + 0x1p-6f));
  EXPECT_EQ(round_operand(tf32, 1.0f + 0x1p-11f), 1.0f);
  EXPECT_EQ(round_operand(tf32, 1.0f + 0x3p-11f), 1.0f + 0x1p-9f);
  EXPECT_EQ(round_operand(tf32, 1.0f + 0x1p-12f + 0x1p-11f), 1.0f + 0x1p-10f);
  EXPECT_EQ(round_operand(MatmulPrecision::fp32, 1.0f + 0x1p-23f), 1.0f + 0x1p-23f);
  const float largest = std::numeric_limits<float>::max();
  EXPECT_EQ(round_operand(bf16, largest), std::numeric_limits<float>::infinity());
  EXPECT_EQ(round_operand(bf16, -std::numeric_limits<float>::infinity()),
            -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(round_operand(bf16, std::numeric_limits<float>::quiet_NaN())));
}

class Precision : public BackendTest {
 public:
  BackendMatrix upload_matrix(const reference::FloatMatrix& m) { return upload(m); }
  reference::FloatMatrix download_matrix(const BackendMatrix& m) { return download(m); }
};

// The largest error of backend's c = a·b against the float64 product, relative to the largest
// |a|·|b| sum of a row and column (the scale every rounding error is measured against). fused:
// through gemm_bias_activation (identity, no bias: on cuda cublasLt rather than cuBLAS).
double gemm_error(Precision& test, Backend& backend, const reference::FloatMatrix& a,
                  const reference::FloatMatrix& b, bool fused = false) {
  const BackendMatrix da = test.upload_matrix(a);
  const BackendMatrix db = test.upload_matrix(b);
  BackendMatrix dc = test.upload_matrix(reference::filled_matrix(a.rows, b.cols, 0.0f));
  if (fused)
    backend.gemm_bias_activation(Activation::identity, Transpose::no, Transpose::no,
                                 da.const_view(), db.const_view(), nullptr, dc.view());
  else
    backend.gemm(Transpose::no, Transpose::no, 1.0f, da.const_view(), db.const_view(), 0.0f,
                 dc.view());
  const reference::FloatMatrix c = test.download_matrix(dc);
  const reference::DoubleMatrix want =
      reference::gemm(Transpose::no, Transpose::no, 1.0, a, b, 0.0, c);
  const reference::DoubleMatrix scale = reference::gemm(
      Transpose::no, Transpose::no, 1.0, reference::absolute(a), reference::absolute(b), 0.0, c);
  double worst = 0.0;
  for (std::int64_t i = 0; i < c.rows; ++i)
    for (std::int64_t j = 0; j < c.cols; ++j)
      worst = std::max(worst, std::fabs(c(i, j) - want(i, j)) / std::max(1e-30, scale(i, j)));
  return worst;
}

// tf32 keeps 10 of fp32's 23 mantissa bits: each operand is off by up to 2^-11 of itself, so a
// product's error against the sum of |a||b| stays below about 2^-10; bf16 keeps 7 (2^-8 an
// operand, 2^-7 a product); fp32's stays near 2^-24 times a small multiple of the inner
// dimension.
constexpr double kTf32RelativeError = 1.0 / 1024.0;
constexpr double kBf16RelativeError = 1.0 / 128.0;
constexpr double kFp32RelativeError = 1e-5;

TEST_P(Precision, Tf32ProductsRoundAsTf32AndOnlyWhileSet) {
  std::mt19937_64 rng(11);
  const reference::FloatMatrix a = reference::random_matrix(rng, 256, 512, -1.0f, 1.0f);
  const reference::FloatMatrix b = reference::random_matrix(rng, 512, 128, -1.0f, 1.0f);
  const double fp32 = gemm_error(*this, backend(), a, b);
  backend().set_matmul_precision(MatmulPrecision::tf32);
  const double tf32 = gemm_error(*this, backend(), a, b);
  backend().set_matmul_precision(MatmulPrecision::fp32);
  const double fp32_again = gemm_error(*this, backend(), a, b);
  EXPECT_LT(fp32, kFp32RelativeError);
  EXPECT_LT(tf32, kTf32RelativeError);
  // Rounded operands show: tf32 is measurably coarser than fp32 (at least 10x here).
  EXPECT_GT(tf32, 10.0 * fp32) << "tf32 products look like fp32 ones: the mode did not apply";
  EXPECT_EQ(fp32_again, fp32);
}

TEST_P(Precision, Bf16ProductsRoundAsBf16AndOnlyWhileSet) {
  std::mt19937_64 rng(12);
  const reference::FloatMatrix a = reference::random_matrix(rng, 256, 512, -1.0f, 1.0f);
  const reference::FloatMatrix b = reference::random_matrix(rng, 512, 128, -1.0f, 1.0f);
  backend().set_matmul_precision(MatmulPrecision::tf32);
  const double tf32 = gemm_error(*this, backend(), a, b);
  backend().set_matmul_precision(MatmulPrecision::bf16);
  const double bf16 = gemm_error(*this, backend(), a, b);
  backend().set_matmul_precision(MatmulPrecision::fp32);
  const double fp32 = gemm_error(*this, backend(), a, b);
  EXPECT_LT(bf16, kBf16RelativeError);
  // Three fewer mantissa bits than tf32: coarser by about 8x (at least 3x here).
  EXPECT_GT(bf16, 3.0 * tf32)
      << "bf16 products look like tf32 ones: the compute type did not apply";
  EXPECT_LT(fp32, kFp32RelativeError);
}

TEST_P(Precision, TheFusedLayerForwardRoundsAsSet) {
  // gemm_bias_activation takes the precision too (on cuda cublasLt's compute type).
  std::mt19937_64 rng(13);
  const reference::FloatMatrix a = reference::random_matrix(rng, 256, 512, -1.0f, 1.0f);
  const reference::FloatMatrix b = reference::random_matrix(rng, 512, 128, -1.0f, 1.0f);
  const double fp32 = gemm_error(*this, backend(), a, b, true);
  EXPECT_LT(fp32, kFp32RelativeError);
  backend().set_matmul_precision(MatmulPrecision::tf32);
  const double tf32 = gemm_error(*this, backend(), a, b, true);
  backend().set_matmul_precision(MatmulPrecision::bf16);
  const double bf16 = gemm_error(*this, backend(), a, b, true);
  backend().set_matmul_precision(MatmulPrecision::fp32);
  EXPECT_LT(tf32, kTf32RelativeError);
  EXPECT_GT(tf32, 10.0 * fp32) << "fused tf32 products look like fp32 ones";
  EXPECT_LT(bf16, kBf16RelativeError);
  EXPECT_GT(bf16, 3.0 * tf32) << "fused bf16 products look like tf32 ones";
}

HostCsr counts() { return narrow_topic_counts(2000, 5); }

RunConfig run_with(MatmulPrecision precision, std::int64_t cols) {
  RunConfig run;
  run.model.input_dim = cols;
  run.model.hidden = {64};
  run.model.latent = 16;
  run.train.loss = LossKind::poisson;
  run.train.epochs = 8;
  run.train.batch_size = 128;
  run.train.optimizer.learning_rate = 3e-3f;
  run.train.precision = precision;
  return run;
}

struct Trained {
  double validation_loss;
  ReconstructionMetrics metrics;
};

Trained train_and_measure(Backend& backend, const HostCsr& data, const RunConfig& run) {
  Trainer trainer(backend, run.model, run.train, data);
  const std::vector<EpochReport> reports = trainer.train();
  RunConfig trained = run;
  trained.model = trainer.network().layout().config();
  TrainedModel model(backend, trained, trainer.state().parameters);
  return {reports.back().val_loss, model.evaluate(trainer.validation_counts())};
}

TEST_P(Precision, ReducedPrecisionTrainingCostsLittleFidelity) {
  const HostCsr data = counts();
  const Trained fp32 =
      train_and_measure(backend(), data, run_with(MatmulPrecision::fp32, data.cols));
  const Trained tf32 =
      train_and_measure(backend(), data, run_with(MatmulPrecision::tf32, data.cols));
  const Trained bf16 =
      train_and_measure(backend(), data, run_with(MatmulPrecision::bf16, data.cols));
  // The bounds this test holds tf32 to: the validation loss within 2 % of fp32's, and the exact
  // non-zeros and support F1 within 2 percentage points; bf16, with 3 mantissa bits fewer: 5 %
  // and 5 points.
  EXPECT_NEAR(tf32.validation_loss, fp32.validation_loss, 0.02 * fp32.validation_loss);
  EXPECT_NEAR(tf32.metrics.nonzero_exact_fraction, fp32.metrics.nonzero_exact_fraction, 0.02);
  EXPECT_NEAR(tf32.metrics.support_f1, fp32.metrics.support_f1, 0.02);
  EXPECT_NEAR(bf16.validation_loss, fp32.validation_loss, 0.05 * fp32.validation_loss);
  EXPECT_NEAR(bf16.metrics.nonzero_exact_fraction, fp32.metrics.nonzero_exact_fraction, 0.05);
  EXPECT_NEAR(bf16.metrics.support_f1, fp32.metrics.support_f1, 0.05);
  // Training set tf32 and put fp32 back: the backend multiplies in fp32 again.
  std::mt19937_64 rng(3);
  const reference::FloatMatrix a = reference::random_matrix(rng, 64, 256, -1.0f, 1.0f);
  const reference::FloatMatrix b = reference::random_matrix(rng, 256, 64, -1.0f, 1.0f);
  EXPECT_LT(gemm_error(*this, backend(), a, b), kFp32RelativeError);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(Precision);

}  // namespace
}  // namespace sparseae::test
