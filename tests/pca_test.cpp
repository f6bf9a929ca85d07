// The PCA baseline (pca.hpp) against the float64 reference of tests/reference.cpp: the same
// subspace (principal angles), the same explained variance, the same reconstruction error; CSR
// and dense input alike, both solvers, both backends; and the PCA as a checkpoint that the
// model commands run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "reference.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/pca.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"

namespace sparseae::test {
namespace {

using test::contains;
using test::error_message;

constexpr std::int64_t kComponents = 6;

// 3000 rows x 48 columns of topic counts from 6 topics of 8 columns: six strong directions, then
// a gap (checked below), so the leading subspace is well defined.
HostCsr topic_rows(std::int64_t rows = 3000, std::uint64_t seed = 11) {
  TopicDataConfig config;
  config.rows = rows;
  config.cols = 48;
  config.topics = 6;
  config.columns_per_topic = 8;
  config.mean_nonzeros = 6;
  config.seed = seed;
  return generate_topic_counts(config);
}

std::vector<double> to_double(const std::vector<float>& values) {
  return {values.begin(), values.end()};
}

// The smallest cosine of the principal angles between the model's and the reference's subspaces.
// The model's components are float, unit length only to ~1e-7, which alone would move the
// cosines by as much; they are orthonormalised in float64 first (Gram-Schmidt, which keeps the
// subspace), so that what is measured is the angle.
double worst_cosine(const PcaModel& model, const reference::Pca& expected) {
  const std::int64_t k = model.component_count();
  const std::int64_t d = model.input_dim();
  std::vector<double> rows = to_double(model.components);
  for (std::int64_t i = 0; i < k; ++i) {
    for (std::int64_t j = 0; j < i; ++j) {
      double dot = 0.0;
      for (std::int64_t c = 0; c < d; ++c) dot += rows[i * d + c] * rows[j * d + c];
      for (std::int64_t c = 0; c < d; ++c) rows[i * d + c] -= dot * rows[j * d + c];
    }
    double norm = 0.0;
    for (std::int64_t c = 0; c < d; ++c) norm += rows[i * d + c] * rows[i * d + c];
    for (std::int64_t c = 0; c < d; ++c) rows[i * d + c] /= std::sqrt(norm);
  }
  return reference::principal_angle_cosines(rows, expected.components, k, d).front();
}

void expect_relative(double actual, double expected, double tolerance, const std::string& what) {
  EXPECT_LE(std::fabs(actual - expected), tolerance * std::fabs(expected))
      << what << ": " << actual << " vs " << expected;
}

// The reference checks itself on matrices whose eigenpairs are known.
TEST(ReferenceSymmetricEigen, KnownMatrices) {
  // [[2, 1], [1, 2]]: 1 with (1, -1)/√2 and 3 with (1, 1)/√2 (up to sign).
  const reference::SymmetricEigen two = reference::symmetric_eigen({2, 1, 1, 2}, 2);
  EXPECT_NEAR(two.values[0], 1.0, 1e-12);
  EXPECT_NEAR(two.values[1], 3.0, 1e-12);
  EXPECT_NEAR(std::fabs(two.vectors[0] + two.vectors[1]), 0.0, 1e-12);
  EXPECT_NEAR(std::fabs(two.vectors[2] - two.vectors[3]), 0.0, 1e-12);
  EXPECT_NEAR(std::fabs(two.vectors[2]), std::sqrt(0.5), 1e-12);
  const reference::SymmetricEigen three =
      reference::symmetric_eigen({5, 0, 0, 0, -1, 0, 0, 0, 2}, 3);
  EXPECT_EQ(three.values, (std::vector<double>{-1, 2, 5}));
  EXPECT_EQ(three.vectors, (std::vector<double>{0, 1, 0, 0, 0, 1, 1, 0, 0}));
  // Principal angles: a subspace against itself, and against an orthogonal one.
  const std::vector<double> plane{1, 0, 0, 0, 1, 0};
  EXPECT_NEAR(reference::principal_angle_cosines(plane, plane, 2, 3).front(), 1.0, 1e-12);
  const std::vector<double> tilted{1, 0, 0, 0, 0, 1};
  const std::vector<double> cosines = reference::principal_angle_cosines(plane, tilted, 2, 3);
  EXPECT_NEAR(cosines[0], 0.0, 1e-12);
  EXPECT_NEAR(cosines[1], 1.0, 1e-12);
}

class Pca : public BackendTest {};
SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(Pca);

// Against the float64 reference: a block's float products of integer counts are exact (block
// rows x 30² < 2^24) and everything after runs in float64, so what remains is the float storage
// of the mean and the components (about 1e-7 relative).
TEST_P(Pca, CovarianceSolverMatchesTheFloat64Reference) {
  const HostCsr data = topic_rows();
  const reference::Pca expected = reference::pca(data, kComponents + 1);
  // Not vacuous: the k-th component stands clear of the next one.
  ASSERT_GT(expected.explained_variance[kComponents - 1],
            1.5 * expected.explained_variance[kComponents]);

  PcaConfig config;
  config.components = kComponents;
  config.block_rows = 512;  // several blocks, the last one short
  const PcaModel model = fit_pca(backend(), data, config);
  EXPECT_EQ(model.solver, PcaSolver::covariance);
  EXPECT_EQ(model.rows, data.rows);
  ASSERT_EQ(model.component_count(), kComponents);
  EXPECT_GE(worst_cosine(model, expected), 1.0 - 1e-12) << 1.0 - worst_cosine(model, expected);
  for (std::int64_t i = 0; i < kComponents; ++i) {
    expect_relative(model.explained_variance[i], expected.explained_variance[i], 1e-6,
                    "explained variance " + std::to_string(i));
    double norm = 0.0;
    float largest = 0.0f;
    for (std::int64_t c = 0; c < model.input_dim(); ++c) {
      const float v = model.components[i * model.input_dim() + c];
      norm += static_cast<double>(v) * v;
      if (std::fabs(v) > std::fabs(largest)) largest = v;
    }
    EXPECT_NEAR(norm, 1.0, 1e-6) << "component " << i << " is not a unit vector";
    EXPECT_GT(largest, 0.0f) << "component " << i << ": its largest entry is made positive";
  }
  expect_relative(model.total_variance, expected.total_variance, 1e-12, "total variance");
  const std::vector<double> ratio = model.explained_variance_ratio();
  expect_relative(ratio[0], expected.explained_variance[0] / expected.total_variance, 1e-6,
                  "explained variance ratio");
  for (std::int64_t c = 0; c < model.input_dim(); ++c)
    EXPECT_NEAR(model.mean[c], expected.mean[c], 1e-6 * (1.0 + expected.mean[c]));

  // The reconstruction through the model sae runs (the tied linear autoencoder).
  TrainedModel as_model(backend(), pca_run_config(model, "", 0.1, 1), pca_parameters(model));
  const double expected_mse =
      reference::pca_reconstruction_mse(data, expected.mean, expected.components, kComponents);
  expect_relative(as_model.evaluate(data).mse, expected_mse, 1e-4, "reconstruction mse");
}

TEST_P(Pca, RandomizedSolverFindsTheSameSubspace) {
  const HostCsr data = topic_rows();
  const reference::Pca expected = reference::pca(data, kComponents);
  PcaConfig config;
  config.components = kComponents;
  config.solver = PcaSolver::randomized;
  config.block_rows = 700;
  for (const bool dense : {false, true}) {
    const PcaModel model =
        dense ? fit_pca(backend(), to_dense(data), config) : fit_pca(backend(), data, config);
    SCOPED_TRACE(dense ? "dense input" : "CSR input");
    EXPECT_EQ(model.solver, PcaSolver::randomized);
    EXPECT_GE(worst_cosine(model, expected), 1.0 - 1e-10) << 1.0 - worst_cosine(model, expected);
    for (std::int64_t i = 0; i < kComponents; ++i)
      expect_relative(model.explained_variance[i], expected.explained_variance[i], 1e-5,
                      "explained variance " + std::to_string(i));
    TrainedModel as_model(backend(), pca_run_config(model, "", 0.1, 1), pca_parameters(model));
    expect_relative(
        as_model.evaluate(data).mse,
        reference::pca_reconstruction_mse(data, expected.mean, expected.components, kComponents),
        1e-4, "reconstruction mse");
  }
}

TEST_P(Pca, DenseInputGivesTheModelOfTheSameRowsInCsr) {
  const HostCsr data = topic_rows(1000);
  const HostDense dense = to_dense(data);
  PcaConfig config;
  config.components = kComponents;
  config.block_rows = 300;
  const PcaModel from_csr = fit_pca(backend(), data, config);
  const PcaModel from_dense = fit_pca(backend(), dense, config);
  EXPECT_EQ(from_dense.mean, from_csr.mean);
  for (std::size_t i = 0; i < from_csr.components.size(); ++i)
    ASSERT_NEAR(from_dense.components[i], from_csr.components[i], 1e-5) << "entry " << i;
  for (std::int64_t i = 0; i < kComponents; ++i)
    expect_relative(from_dense.explained_variance[i], from_csr.explained_variance[i], 1e-6,
                    "explained variance " + std::to_string(i));

  // Transform and inverse transform of dense rows agree with those of the same rows in CSR.
  TrainedModel model(backend(), pca_run_config(from_csr, "", 0.1, 1), pca_parameters(from_csr));
  const HostDense codes = model.encode(data);
  const HostDense dense_codes = model.encode(dense);
  ASSERT_EQ(dense_codes.values.size(), codes.values.size());
  for (std::size_t i = 0; i < codes.values.size(); ++i)
    ASSERT_NEAR(dense_codes.values[i], codes.values[i], 1e-4) << "code " << i;
  const HostDense back = model.decode(codes);
  const HostDense dense_back = model.reconstruct(data);
  for (std::size_t i = 0; i < back.values.size(); ++i)
    ASSERT_NEAR(back.values[i], dense_back.values[i], 1e-4) << "value " << i;
}

// Dense rows far from the origin: a float sum of x xᵀ would lose the spread to the offset
// (relative error ~1e-7 of 10^6 against variances of order 1); centring each block on the float
// mean first, and correcting for that mean's rounding in float64, keeps it.
TEST_P(Pca, DenseDataFarFromTheOriginKeepsItsAccuracy) {
  HostDense dense = to_dense(topic_rows(2000));
  for (float& v : dense.values) v += 1000.0f;
  const HostCsr as_csr = to_csr(dense);
  const reference::Pca expected = reference::pca(as_csr, kComponents);
  PcaConfig config;
  config.components = kComponents;
  const PcaModel model = fit_pca(backend(), dense, config);
  EXPECT_GE(worst_cosine(model, expected), 1.0 - 1e-10) << 1.0 - worst_cosine(model, expected);
  for (std::int64_t i = 0; i < kComponents; ++i)
    expect_relative(model.explained_variance[i], expected.explained_variance[i], 1e-5,
                    "explained variance " + std::to_string(i));
}

TEST_P(Pca, ACheckpointOfThePcaIsAModelThatEncodesAndDecodesIt) {
  const HostCsr data = topic_rows(500);
  PcaConfig config;
  config.components = 3;
  const PcaModel pca = fit_pca(backend(), data, config);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparseae-pca-" + std::to_string(::getpid()) + ".ckpt"))
                               .string();
  Checkpoint checkpoint{pca_run_config(pca, "data.mtx", 0.2, 5), {}};
  checkpoint.state.parameters = pca_parameters(pca);
  const std::size_t count = checkpoint.state.parameters.size();
  checkpoint.state.first_moment.assign(count, 0.0f);
  checkpoint.state.second_moment.assign(count, 0.0f);
  checkpoint.state.best_parameters = checkpoint.state.parameters;
  save_checkpoint(path, checkpoint);
  const Checkpoint loaded = load_checkpoint(path);
  std::filesystem::remove(path);
  EXPECT_EQ(loaded.config.data_source, "data.mtx");
  EXPECT_EQ(loaded.config.train.val_fraction, 0.2);
  EXPECT_EQ(loaded.config.train.seed, 5u);

  TrainedModel model(backend(), loaded.config, loaded.state.parameters);
  const HostDense codes = model.encode(data);
  const HostDense values = model.decode(codes);
  const std::int64_t d = pca.input_dim();
  const HostDense dense = to_dense(data);
  for (std::int64_t r = 0; r < data.rows; ++r) {
    // codes = (x - μ)·Vᵀ and reconstruction = μ + codes·V, in float64.
    std::vector<double> back(pca.mean.begin(), pca.mean.end());
    for (std::int64_t i = 0; i < 3; ++i) {
      double code = 0.0;
      for (std::int64_t c = 0; c < d; ++c)
        code += (dense.values[r * d + c] - pca.mean[c]) * pca.components[i * d + c];
      ASSERT_NEAR(codes.values[r * 3 + i], code, 1e-4 * (1.0 + std::fabs(code))) << "row " << r;
      for (std::int64_t c = 0; c < d; ++c) back[c] += code * pca.components[i * d + c];
    }
    for (std::int64_t c = 0; c < d; ++c)
      ASSERT_NEAR(values.values[r * d + c], back[c], 1e-4) << "row " << r << " column " << c;
  }
  // Discrete reconstruction: rounded, never below zero.
  const HostCsr counts = round_to_counts(values);
  for (float v : counts.values) EXPECT_TRUE(v >= 1.0f && v == std::round(v)) << v;
}

TEST_P(Pca, BadInputIsRefusedWithTheReason) {
  const HostCsr data = topic_rows(20);
  PcaConfig config;
  config.components = 0;
  EXPECT_TRUE(contains(error_message([&] { fit_pca(backend(), data, config); }),
                       "pca: components must lie in [1, 48] (the columns), got 0"));
  config.components = 49;
  EXPECT_TRUE(
      contains(error_message([&] { fit_pca(backend(), to_dense(data), config); }), "got 49"));
  config.components = 2;
  config.block_rows = 0;
  EXPECT_TRUE(contains(error_message([&] { fit_pca(backend(), data, config); }),
                       "pca: block rows must be positive"));
  config.block_rows = 16;
  EXPECT_TRUE(contains(error_message([&] {
                         fit_pca(backend(), select_rows(data, std::vector<std::int64_t>{3}),
                                 config);
                       }),
                       "pca: needs at least 2 rows to fit, got 1"));
}

// Wide data takes the randomized solver unless told otherwise, and still gives orthonormal
// components that explain no more than all the variance.
TEST_P(Pca, WideDataTakesTheRandomizedSolver) {
  EXPECT_EQ(resolve_pca_solver(PcaSolver::automatic, kRandomizedPcaMaxCovarianceColumns),
            PcaSolver::covariance);
  EXPECT_EQ(resolve_pca_solver(PcaSolver::automatic, kRandomizedPcaMaxCovarianceColumns + 1),
            PcaSolver::randomized);
  EXPECT_EQ(resolve_pca_solver(PcaSolver::covariance, 10000), PcaSolver::covariance);
  TopicDataConfig wide;
  wide.rows = 200;
  wide.cols = kRandomizedPcaMaxCovarianceColumns + 1;
  wide.topics = 4;
  wide.seed = 3;
  PcaConfig config;
  config.components = 4;
  const PcaModel model = fit_pca(backend(), generate_topic_counts(wide), config);
  EXPECT_EQ(model.solver, PcaSolver::randomized);
  const std::vector<double> cosines = reference::principal_angle_cosines(
      to_double(model.components), to_double(model.components), 4, wide.cols);
  EXPECT_NEAR(cosines.front(), 1.0, 1e-5) << "orthonormal components";
  double explained = 0.0;
  for (double v : model.explained_variance) explained += v;
  EXPECT_GT(explained, 0.0);
  EXPECT_LE(explained, model.total_variance * (1.0 + 1e-9));
}

TEST(PcaBackends, CpuAndCudaAgree) {
  std::string reason;
  if (!cuda_device_available(&reason))
    GTEST_SKIP() << "cuda backend: no device answers (" << reason << ")";
  const HostCsr data = topic_rows();
  PcaConfig config;
  config.components = kComponents;
  for (const PcaSolver solver : {PcaSolver::covariance, PcaSolver::randomized}) {
    SCOPED_TRACE(pca_solver_name(solver));
    config.solver = solver;
    const PcaModel cpu = fit_pca(*make_backend(BackendChoice::cpu), data, config);
    const PcaModel cuda = fit_pca(*make_backend(BackendChoice::cuda), data, config);
    for (std::size_t i = 0; i < cpu.components.size(); ++i)
      ASSERT_NEAR(cuda.components[i], cpu.components[i], 1e-5) << "entry " << i;
    for (std::int64_t i = 0; i < kComponents; ++i)
      expect_relative(cuda.explained_variance[i], cpu.explained_variance[i], 1e-6,
                      "explained variance " + std::to_string(i));
  }
}

// The baseline of sae train and compare: fitted on the training rows of the trainer's split and
// measured on its validation rows, decoded by round.
TEST(PcaBaseline, FitsTheTrainingRowsAndMeasuresTheValidationRows) {
  const auto backend = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_rows(1000);
  const ComparisonRow row = pca_baseline(*backend, data, 4, 0.2, 9, 3);
  const auto split = split_rows(data.rows, 0.2, 9);
  PcaConfig config;
  config.components = 4;
  config.seed = 9;
  const PcaModel fitted = fit_pca(*backend, select_rows(data, split.first), config);
  TrainedModel model(*backend, pca_run_config(fitted, "", 0.2, 9), pca_parameters(fitted));
  const ReconstructionMetrics expected =
      model.evaluate(select_rows(data, split.second), DecodeMode::round);
  EXPECT_TRUE(row.pca);
  EXPECT_EQ(row.decode, DecodeMode::round);
  EXPECT_TRUE(row.epochs.empty());
  EXPECT_EQ(row.metrics.rows, 200);
  EXPECT_EQ(row.metrics.to_json(), expected.to_json());
  EXPECT_EQ(row.detail.row_wrong_entries.size(), 200u);
  EXPECT_EQ(row.sample_counts.rows, 3);
  EXPECT_GT(row.seconds, 0.0);
  EXPECT_NEAR(row.samples_per_second * row.seconds, 800.0, 1e-6);
}

// ---- the PCA-anchored model (ModelConfig::linear_skip, anchor_at_pca) ----

ModelConfig anchored_model(std::int64_t input_dim) {
  ModelConfig model;
  model.input_dim = input_dim;
  model.hidden = {16};
  model.latent = kComponents;
  model.latent_activation = Activation::identity;
  model.linear_skip = true;
  model.seed = 5;
  return model;
}

TrainConfig anchored_training(LossKind loss) {
  TrainConfig config;
  config.loss = loss;
  config.val_fraction = 0.2;
  config.seed = 9;
  config.epochs = 2;
  return config;
}

RunConfig run_of(const Trainer& trainer, const ModelConfig& model) {
  RunConfig run;
  run.model = model;
  run.train = trainer.config();
  run.scale = trainer.scale();
  run.reference_library_size = trainer.reference_library_size();
  return run;
}

void expect_close(const HostDense& actual, const HostDense& expected, double tolerance,
                  const std::string& what) {
  ASSERT_EQ(actual.rows, expected.rows) << what;
  ASSERT_EQ(actual.cols, expected.cols) << what;
  double worst = 0.0;
  for (std::size_t i = 0; i < actual.values.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(actual.values[i]) - expected.values[i]));
  EXPECT_LT(worst, tolerance) << what;
}

// Before its first step the anchored model is the PCA of its training rows: the same codes and
// the same reconstruction (so the same exact counts) on the validation rows, and the PCA it
// returns is the one fitted on those rows.
TEST_P(Pca, AnchoredModelStartsAsThePcaOfItsTrainingRows) {
  const HostCsr data = topic_rows(1000);
  const ModelConfig model = anchored_model(data.cols);
  Trainer trainer(backend(), model, anchored_training(LossKind::mse), data);
  const PcaModel anchor = anchor_at_pca(backend(), trainer);

  PcaConfig config;
  config.components = kComponents;
  config.seed = 9;
  const auto split = split_rows(data.rows, 0.2, 9);
  const PcaModel fitted = fit_pca(backend(), select_rows(data, split.first), config);
  EXPECT_EQ(anchor.components, fitted.components);
  EXPECT_EQ(anchor.mean, fitted.mean);

  TrainedModel pca(backend(), pca_run_config(fitted, "", 0.2, 9), pca_parameters(fitted));
  TrainedModel anchored(backend(), run_of(trainer, model), trainer.state().parameters);
  const HostCsr& validation = trainer.validation_counts();
  // Counts below 30 over 48 columns, codes and reconstructions of order 10: float sums.
  expect_close(anchored.encode(validation), pca.encode(validation), 1e-3, "codes");
  const HostDense reconstruction = pca.reconstruct(validation);
  expect_close(anchored.reconstruct(validation), reconstruction, 1e-3, "reconstruction");
  // Rounding agrees wherever PCA's value is not within float error of a half.
  std::int64_t ties = 0;
  for (const float value : reconstruction.values)
    ties += std::abs(value - std::floor(value) - 0.5f) < 1e-3f ? 1 : 0;
  const ReconstructionMetrics expected = pca.evaluate(validation, DecodeMode::round);
  const ReconstructionMetrics actual = anchored.evaluate(validation, DecodeMode::round);
  EXPECT_NEAR(actual.exact_f1, expected.exact_f1, static_cast<double>(ties + 1) / 1000.0);
  EXPECT_GT(expected.exact_f1, 0.0);

  // Its checkpoint keeps the skip: the loaded model is the same model.
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparseae-anchored-" + std::to_string(::getpid()) + ".ckpt"))
                               .string();
  save_checkpoint(path, {run_of(trainer, model), trainer.state()});
  const Checkpoint loaded = load_checkpoint(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(loaded.config.model.linear_skip);
  TrainedModel reloaded(backend(), loaded.config, loaded.state.parameters);
  EXPECT_EQ(reloaded.encode(validation).values, anchored.encode(validation).values);
}

// A count loss: the codes start at PCA's (of the log1p input, here), the count heads read them
// through the decoder's branch; training from there moves the model.
TEST_P(Pca, AnchoredCountModelStartsWithPcaCodesOfItsInput) {
  const HostCsr data = topic_rows(1000);
  ModelConfig model = with_loss_heads(anchored_model(data.cols), LossKind::hurdle, {});
  TrainConfig training = anchored_training(LossKind::hurdle);
  training.input_transform = InputTransform::log1p;
  Trainer trainer(backend(), model, training, data);
  anchor_at_pca(backend(), trainer);

  HostCsr logged = select_rows(data, split_rows(data.rows, 0.2, 9).first);
  for (float& value : logged.values) value = std::log1p(value);
  PcaConfig config;
  config.components = kComponents;
  config.seed = 9;
  const PcaModel fitted = fit_pca(backend(), logged, config);
  TrainedModel pca(backend(), pca_run_config(fitted, "", 0.2, 9), pca_parameters(fitted));
  TrainedModel anchored(backend(), run_of(trainer, model), trainer.state().parameters);
  HostCsr validation_logged = trainer.validation_counts();
  for (float& value : validation_logged.values) value = std::log1p(value);
  expect_close(anchored.encode(trainer.validation_counts()), pca.encode(validation_logged), 1e-4,
               "codes");

  const std::vector<float> start = trainer.state().parameters;
  trainer.train();
  EXPECT_NE(trainer.state().parameters, start);
  EXPECT_TRUE(std::isfinite(trainer.validation_loss()));
}

TEST_P(Pca, AnchoringRefusesModelsItCannotStartAtPca) {
  const HostCsr data = topic_rows(300);
  const auto refused = [&](const ModelConfig& model, bool after_training) {
    Trainer trainer(backend(), model, anchored_training(LossKind::mse), data);
    if (after_training) trainer.train();
    return error_message([&] { anchor_at_pca(backend(), trainer); });
  };
  ModelConfig no_skip = anchored_model(data.cols);
  no_skip.linear_skip = false;
  EXPECT_TRUE(contains(refused(no_skip, false), "no linear skip")) << refused(no_skip, false);
  ModelConfig relu_latent = anchored_model(data.cols);
  relu_latent.latent_activation = Activation::relu;
  EXPECT_TRUE(contains(refused(relu_latent, false), "latent activation must be identity"));
  EXPECT_TRUE(contains(refused(anchored_model(data.cols), true), "trained already"));
  EXPECT_THROW(ModelLayout([] {
                 ModelConfig tied = anchored_model(48);
                 tied.tied_weights = true;
                 return tied;
               }()),
               Error);
  EXPECT_THROW(ModelLayout([] {
                 ModelConfig shallow = anchored_model(48);
                 shallow.hidden = {};
                 return shallow;
               }()),
               Error);
}

}  // namespace
}  // namespace sparseae::test
