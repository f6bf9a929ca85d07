// Library-size handling and the per-feature dispersion: the ops (input transform, row log size
// factors, row offsets, bias-only outputs) against float64 references on each backend, and the
// whole path through Trainer, TrainedModel and checkpoints: the trained model applies each
// row's size factor when it sees the counts, the reference library size when it decodes codes
// alone, and a dispersion per feature is the same for every row.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "model/batch_input.hpp"
#include "reference.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/io.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"
#include "trained_run.hpp"

namespace sparseae::test {
namespace {

constexpr double kEps = std::numeric_limits<float>::epsilon();

class LibrarySizeOps : public BackendTest {};

// log1p of float values: one float rounding of a double-precision log1p.
TEST_P(LibrarySizeOps, TransformValuesIsLog1pOrTheValues) {
  const std::vector<float> values{0.0f, 1.0f, 2.5f, 7.0f, 1e5f, 3e-8f};
  const Buffer<float> in = upload(values);
  Buffer<float> out(backend(), values.size());
  backend().transform_values(InputTransform::log1p, in.data(), 6, out.data());
  const std::vector<float> got = download(out);
  for (std::size_t i = 0; i < values.size(); ++i)
    EXPECT_NEAR(got[i], std::log1p(static_cast<double>(values[i])),
                2 * kEps * std::log1p(static_cast<double>(values[i])))
        << values[i];
  backend().transform_values(InputTransform::none, in.data(), 6, out.data());
  EXPECT_EQ(download(out), values);
}

// log(max(1, row total)) - log(reference), from CSR and dense batches alike; empty rows take a
// one-count row's factor.
TEST_P(LibrarySizeOps, RowLogSizeFactorsFromCsrAndDenseAgree) {
  std::mt19937_64 rng(41);
  const HostCsr batch = reference::random_csr(rng, 37, 50, 0.2, 0.2, 300);
  const float log_reference = static_cast<float>(std::log(23.5));
  std::vector<double> want;
  for (std::int64_t r = 0; r < batch.rows; ++r) {
    double total = 0.0;
    for (RowOffset k = batch.row_offsets[r]; k < batch.row_offsets[r + 1]; ++k)
      total += batch.values[static_cast<std::size_t>(k)];
    want.push_back(std::log(std::max(total, 1.0)) - static_cast<double>(log_reference));
  }
  const BackendCsr batch_on(backend(), batch);
  Buffer<float> from_csr(backend(), static_cast<std::size_t>(batch.rows));
  backend().row_log_size_factors(batch_on.view(), log_reference, from_csr.data());
  reference::FloatMatrix dense(batch.rows, batch.cols, batch.cols + 3, reference::kPoison);
  for (std::int64_t r = 0; r < batch.rows; ++r)
    for (std::int64_t c = 0; c < batch.cols; ++c) dense(r, c) = 0.0f;
  for (std::int64_t r = 0; r < batch.rows; ++r)
    for (RowOffset k = batch.row_offsets[r]; k < batch.row_offsets[r + 1]; ++k)
      dense(r, batch.col_indices[static_cast<std::size_t>(k)]) =
          batch.values[static_cast<std::size_t>(k)];
  const BackendMatrix dense_on = upload(dense);
  Buffer<float> from_dense(backend(), static_cast<std::size_t>(batch.rows));
  backend().row_log_size_factors(dense_on.const_view(), log_reference, from_dense.data());
  const std::vector<float> csr_got = download(from_csr);
  int empty_rows = 0;
  for (std::int64_t r = 0; r < batch.rows; ++r) {
    empty_rows += batch.row_offsets[r] == batch.row_offsets[r + 1];
    EXPECT_NEAR(csr_got[r], want[r], 4 * kEps * (std::fabs(want[r]) + log_reference)) << r;
  }
  EXPECT_GT(empty_rows, 0) << "the batch has empty rows";
  EXPECT_EQ(download(from_dense), csr_got) << "the same sums in the same order";
}

TEST_P(LibrarySizeOps, AddRowOffsetsShiftsEachRowOfABlock) {
  std::mt19937_64 rng(7);
  const reference::FloatMatrix m = reference::random_matrix(rng, 9, 12, -3.0f, 3.0f, 15);
  BackendMatrix m_on = upload(m);
  const std::vector<float> offsets{0.5f, -1.0f, 2.0f, 0.0f, 3.5f, -0.25f, 1.0f, 7.0f, -2.0f};
  const Buffer<float> offsets_on = upload(offsets);
  // Columns 4..8 only: the offset head of a wider output.
  backend().add_row_offsets(DenseView{m_on.buffer.data() + 4, 9, 5, 15}, offsets_on.data());
  const reference::FloatMatrix got = download(m_on);
  for (std::int64_t r = 0; r < 9; ++r)
    for (std::int64_t c = 0; c < 15; ++c) {
      const float want = c >= 4 && c < 9 ? m(r, c) + offsets[r] : m(r, c);
      if (c < 12 || (c >= 4 && c < 9)) {
        EXPECT_EQ(got(r, c), want) << r << ", " << c;
      } else {
        EXPECT_TRUE(std::isnan(got(r, c))) << "padding written at " << r << ", " << c;
      }
    }
}

// A null z: every row is activation(bias).
TEST_P(LibrarySizeOps, BiasActivationWithoutInputBroadcastsTheBias) {
  const std::vector<float> bias{-2.0f, 0.0f, 0.5f, 3.0f};
  const Buffer<float> bias_on = upload(bias);
  BackendMatrix y_on = upload(reference::filled_matrix(5, 4, reference::kPoison, 6));
  backend().bias_activation_forward(Activation::softplus, ConstDenseView{}, bias_on.data(),
                                    y_on.view());
  const reference::FloatMatrix y = download(y_on);
  for (std::int64_t r = 0; r < 5; ++r)
    for (std::int64_t c = 0; c < 4; ++c)
      EXPECT_NEAR(y(r, c), reference::activate(Activation::softplus, bias[c]), 2 * kEps * 4) << r;
}

HostCsr topic_data(std::int64_t rows) {
  TopicDataConfig config;
  config.rows = rows;
  return generate_topic_counts(config);
}

RunConfig small_run(LossKind loss, std::int64_t cols) {
  RunConfig run;
  run.model.input_dim = cols;
  run.model.hidden = {24};
  run.model.latent = 6;
  run.train.loss = loss;
  run.train.epochs = 2;
  run.train.batch_size = 64;
  run.train.optimizer.learning_rate = 3e-3f;
  return run;
}

// With size factors, the model sees each row's total: the log-mean head of its outputs moves by
// exactly the row's log size factor over the outputs for codes alone (decoded at the reference
// library size), and the reference is the training rows' median total.
TEST(LibrarySize, OutputsCarryEachRowsSizeFactorAndCodesDecodeAtTheReference) {
  const auto backend = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_data(400);
  RunConfig run = small_run(LossKind::nb, data.cols);
  run.train.loss_params.size_factors = true;
  run.train.input_transform = InputTransform::log1p;
  const TrainedRun t = train_run(*backend, run, data);
  EXPECT_GT(t.run.reference_library_size, 1.0);
  const double median = detail::median_row_total(data);
  EXPECT_NEAR(t.run.reference_library_size, median, 0.25 * median)
      << "the training rows' median total is near the whole data's";

  TrainedModel model(*backend, t.run, t.parameters);
  const HostDense outputs = model.outputs(t.validation);
  const HostDense from_codes = model.decode_outputs(model.encode(t.validation));
  const std::int64_t cols = data.cols;
  for (std::int64_t r = 0; r < t.validation.rows; ++r) {
    double total = 0.0;
    for (RowOffset k = t.validation.row_offsets[r]; k < t.validation.row_offsets[r + 1]; ++k)
      total += t.validation.values[static_cast<std::size_t>(k)];
    const double offset = std::log(std::max(total, 1.0)) - std::log(t.run.reference_library_size);
    for (std::int64_t c = 0; c < cols; c += 37) {
      const std::size_t at = static_cast<std::size_t>(r * outputs.cols + c);
      EXPECT_NEAR(outputs.values[at] - from_codes.values[at], offset,
                  1e-4 * (1 + std::fabs(offset)))
          << "row " << r << " column " << c;
      const std::size_t dispersion = at + static_cast<std::size_t>(cols);
      EXPECT_EQ(outputs.values[dispersion], from_codes.values[dispersion])
          << "the dispersion head takes no offset";
    }
  }
}

// Dense rows (the dense first layer) reach the model as sparse ones do: log1p-transformed and
// with their size factors, so their codes and outputs are the sparse rows' (to the order of the
// sums; the bug this guards against was off by 0.3 to 1.4).
TEST_P(LibrarySizeOps, DenseRowsReadTheTransformAndSizeFactorsAsSparseRows) {
  const HostCsr data = topic_data(300);
  RunConfig run = small_run(LossKind::nb, data.cols);
  run.train.loss_params.size_factors = true;
  run.train.input_transform = InputTransform::log1p;
  const TrainedRun t = train_run(backend(), run, data);
  TrainedModel model(backend(), t.run, t.parameters);
  const HostDense dense = to_dense(t.validation);
  const auto expect_near = [](const HostDense& got, const HostDense& want, const char* what) {
    ASSERT_EQ(got.values.size(), want.values.size()) << what;
    for (std::size_t i = 0; i < want.values.size(); ++i)
      ASSERT_NEAR(got.values[i], want.values[i], 1e-3 * (1 + std::fabs(want.values[i])))
          << what << ", value " << i;
  };
  expect_near(model.encode(dense), model.encode(t.validation), "codes");
  expect_near(model.outputs(dense), model.outputs(t.validation), "outputs");
}

// The configuration survives a checkpoint, and the reloaded model gives the same outputs.
TEST(LibrarySize, CheckpointKeepsTransformSizeFactorsAndDispersion) {
  const auto backend = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_data(200);
  RunConfig run = small_run(LossKind::zinb, data.cols);
  run.train.epochs = 1;
  run.train.loss_params.size_factors = true;
  run.train.loss_params.dispersion = Dispersion::feature;
  run.train.input_transform = InputTransform::log1p;
  Trainer trainer(*backend, run.model, run.train, data);
  trainer.train();
  run.reference_library_size = trainer.reference_library_size();
  const std::string path = ::testing::TempDir() + "library_size.ckpt";
  save_checkpoint(path, {run, trainer.state()});
  const Checkpoint loaded = load_checkpoint(path);
  EXPECT_EQ(loaded.config.train.input_transform, InputTransform::log1p);
  EXPECT_TRUE(loaded.config.train.loss_params.size_factors);
  EXPECT_EQ(loaded.config.train.loss_params.dispersion, Dispersion::feature);
  EXPECT_EQ(loaded.config.reference_library_size, run.reference_library_size);
  EXPECT_EQ(loaded.config.model.feature_head, 1);
  EXPECT_EQ(loaded.config.model.offset_head, 0);
  TrainedModel original(*backend, run, trainer.state().parameters);
  TrainedModel reloaded(*backend, loaded.config, loaded.state.parameters);
  EXPECT_EQ(original.outputs(trainer.validation_counts()).values,
            reloaded.outputs(trainer.validation_counts()).values);
}

// A dispersion per feature: the output layer has no weights for that head (the model is
// input_dim x last hidden width smaller), and every row gets the same dispersion per column.
TEST(LibrarySize, DispersionPerFeatureIsSharedByEveryRow) {
  const auto backend = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_data(300);
  RunConfig per_entry = small_run(LossKind::hurdle_nb, data.cols);
  RunConfig per_feature = per_entry;
  per_feature.train.loss_params.dispersion = Dispersion::feature;
  const ModelLayout entry_layout(
      with_loss_heads(per_entry.model, per_entry.train.loss, per_entry.train.loss_params));
  const ModelLayout feature_layout(
      with_loss_heads(per_feature.model, per_feature.train.loss, per_feature.train.loss_params));
  EXPECT_EQ(entry_layout.layers().back().weight_cols, 3 * data.cols);
  EXPECT_EQ(feature_layout.layers().back().weight_cols, 2 * data.cols);
  EXPECT_LT(feature_layout.parameter_count(), entry_layout.parameter_count() - 23 * data.cols);
  EXPECT_TRUE(contains(feature_layout.describe(), "head 2 per feature"));

  const TrainedRun t = train_run(*backend, per_feature, data);
  TrainedModel model(*backend, t.run, t.parameters);
  const HostDense outputs = model.outputs(t.validation);
  ASSERT_GT(outputs.rows, 2);
  for (std::int64_t c = 0; c < data.cols; ++c) {
    const std::int64_t at = 2 * data.cols + c;
    for (std::int64_t r = 1; r < outputs.rows; ++r)
      ASSERT_EQ(outputs.values[static_cast<std::size_t>(r * outputs.cols + at)],
                outputs.values[static_cast<std::size_t>(at)])
          << "row " << r << " column " << c;
  }
  const ReconstructionMetrics metrics = model.evaluate(t.validation);
  EXPECT_TRUE(std::isfinite(metrics.nll_bits_per_row));
  EXPECT_GT(metrics.nonzero_exact_fraction, 0.0);
}

TEST(LibrarySize, TrainerRefusesOptionsTheLossCannotUse) {
  const auto backend = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_data(50);
  RunConfig run = small_run(LossKind::mse, data.cols);
  run.train.loss_params.size_factors = true;
  EXPECT_EQ(error_message([&] { Trainer(*backend, run.model, run.train, data); }),
            "--size-factors needs a loss with a log-mean (poisson, nb, zinb, hurdle, hurdle_nb); "
            "--loss mse has none");
  run = small_run(LossKind::poisson, data.cols);
  run.train.loss_params.dispersion = Dispersion::feature;
  EXPECT_EQ(error_message([&] { Trainer(*backend, run.model, run.train, data); }),
            "--dispersion feature needs a loss with a dispersion (nb, zinb, hurdle_nb); --loss "
            "poisson has none");
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LibrarySizeOps);

}  // namespace
}  // namespace sparseae::test
