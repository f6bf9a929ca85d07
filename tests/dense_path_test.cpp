// The dense path: dense rows gathered on the backend, a GEMM first layer and a dense-target loss.
// Its ops must agree with the sparse path's references, and training on the same counts, held
// dense or sparse, must end in the same place.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend_fixture.hpp"
#include "reference.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/io.hpp"
#include "sparseae/model.hpp"
#include "sparseae/network.hpp"
#include "sparseae/trainer.hpp"
#include "train/row_source.hpp"

namespace sparseae {
namespace {

using test::BackendTest;

// The dense-target loss sums the same float terms as the sparse one in another order: within
// 64 float epsilons of the reference's magnitude (the sum of the absolute parts), which allows
// any summation order over 512 columns.
constexpr double kLossTolerance = 64 * std::numeric_limits<float>::epsilon();

HostDense dense_counts(std::mt19937_64& rng, std::int64_t rows, std::int64_t cols) {
  const HostCsr sparse = reference::random_csr(rng, rows, cols, 0.2, 0.2);
  return to_dense(sparse);
}

class DensePath : public BackendTest {};

TEST_P(DensePath, GatherCopiesTheNamedRowsInOrder) {
  std::mt19937_64 rng(11);
  const reference::FloatMatrix source = reference::random_matrix(rng, 37, 13, -5.0f, 5.0f, 16);
  const std::vector<std::int64_t> ids{36, 0, 5, 5, 17, 2};
  const auto source_on = upload(source);
  const auto ids_on = upload(ids);
  reference::FloatMatrix out(static_cast<std::int64_t>(ids.size()), 13, 14, reference::kPoison);
  const auto out_on = upload(out);
  backend().gather_dense_rows(source_on.const_view(), ids_on.data(),
                              static_cast<std::int64_t>(ids.size()), out_on.view());
  const reference::FloatMatrix got = download(out_on);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    for (std::int64_t c = 0; c < 13; ++c)
      ASSERT_EQ(got(static_cast<std::int64_t>(i), c), source(ids[i], c)) << "row " << i;
    EXPECT_TRUE(std::isnan(got(static_cast<std::int64_t>(i), 13))) << "padding written";
  }
}

TEST_P(DensePath, GatherOfNoRowsWritesNothing) {
  const reference::FloatMatrix source(4, 3, 3, 1.0f);
  const auto source_on = upload(source);
  const Buffer<std::int64_t> ids_on(backend(), 1);
  const reference::FloatMatrix out(0, 3, 3, reference::kPoison);
  const auto out_on = upload(out);
  EXPECT_NO_THROW(
      backend().gather_dense_rows(source_on.const_view(), ids_on.data(), 0, out_on.view()));
}

TEST_P(DensePath, GatherRejectsOrZeroesARowOutOfRange) {
  const reference::FloatMatrix source(4, 3, 3, 7.0f);
  const auto source_on = upload(source);
  const auto ids_on = upload(std::vector<std::int64_t>{1, 4});
  const auto out_on = upload(reference::FloatMatrix(2, 3, 3, reference::kPoison));
  if (is_cpu()) {
    try {
      backend().gather_dense_rows(source_on.const_view(), ids_on.data(), 2, out_on.view());
      FAIL() << "an id past the last row was accepted";
    } catch (const Error& error) {
      EXPECT_STREQ(error.what(), "gather_rows: row id 4 outside [0, 4)");
    }
    return;
  }
  // The cuda backend cannot check without waiting for the device: it writes a zero row.
  backend().gather_dense_rows(source_on.const_view(), ids_on.data(), 2, out_on.view());
  const reference::FloatMatrix got = download(out_on);
  for (std::int64_t c = 0; c < 3; ++c) {
    EXPECT_EQ(got(0, c), 7.0f);
    EXPECT_EQ(got(1, c), 0.0f);
  }
}

TEST_P(DensePath, DenseTargetLossMatchesTheSparseReference) {
  std::mt19937_64 rng(23);
  LossParams params;
  params.cosine_weight = 0.3f;
  params.zero_weight = 0.2f;
  params.huber_delta = 1.5f;
  for (const LossKind kind : {LossKind::mse, LossKind::mae, LossKind::bce, LossKind::mse_cosine,
                              LossKind::poisson, LossKind::weighted_mse, LossKind::huber}) {
    for (const auto& [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{
             {1, 1}, {7, 13}, {33, 512}, {128, 64}}) {
      SCOPED_TRACE(std::string(loss_name(kind)) + " " + std::to_string(rows) + "x" +
                   std::to_string(cols));
      const HostDense target = dense_counts(rng, rows, cols);
      reference::FloatMatrix target_view(rows, cols, cols, 0.0f);
      target_view.data = target.values;
      // Logits for bce, log-rates for poisson, counts-like outputs for the others.
      const auto [low, high] = kind == LossKind::bce       ? std::pair(-6.0f, 6.0f)
                               : kind == LossKind::poisson ? std::pair(-4.0f, 3.0f)
                                                           : std::pair(-1.0f, 4.0f);
      const reference::FloatMatrix y = reference::random_matrix(rng, rows, cols, low, high, cols);
      const reference::LossResult want =
          reference::reconstruction_loss(kind, params, y, to_csr(target));
      const auto y_on = upload(y);
      const auto target_on = upload(target_view);
      const auto grad_on = upload(reference::FloatMatrix(rows, cols, cols, reference::kPoison));
      const auto row_loss_on = upload(std::vector<float>(static_cast<std::size_t>(rows),
                                                         reference::kPoison));
      backend().reconstruction_loss(kind, params, y_on.const_view(), target_on.const_view(),
                                    grad_on.view(), row_loss_on.data());
      const reference::FloatMatrix grad = download(grad_on);
      const std::vector<float> row_loss = download(row_loss_on);
      for (std::int64_t r = 0; r < rows; ++r) {
        ASSERT_NEAR(row_loss[r], want.row_loss[r], kLossTolerance * want.row_loss_magnitude[r] +
                                                       std::numeric_limits<float>::min())
            << "row " << r;
        for (std::int64_t c = 0; c < cols; ++c)
          ASSERT_NEAR(grad(r, c), want.grad(r, c),
                      kLossTolerance * want.grad_magnitude(r, c) +
                          std::numeric_limits<float>::min())
              << "grad (" << r << ", " << c << ")";
      }
    }
  }
}

// Training on the same counts held dense or sparse: the same split, permutations and
// initialisation, only the first layer's summation order differs (GEMM over every column vs SpMM
// over the non-zeros). After 2 epochs of Adam the losses agree to 1e-4 relative.
constexpr double kPathAgreement = 1e-4;

TEST_P(DensePath, TrainsLikeTheSparsePathOnTheSameCounts) {
  TopicDataConfig data_config;
  data_config.rows = 1200;
  const HostCsr sparse = generate_topic_counts(data_config);
  const HostDense dense = to_dense(sparse);
  ModelConfig model;
  model.input_dim = sparse.cols;
  model.hidden = {48};
  model.latent = 12;
  TrainConfig config;
  config.epochs = 2;
  config.batch_size = 100;
  Trainer sparse_trainer(backend(), model, config, sparse);
  Trainer dense_trainer(backend(), model, config, dense);
  const std::vector<EpochReport> sparse_reports = sparse_trainer.train();
  const std::vector<EpochReport> dense_reports = dense_trainer.train();
  ASSERT_EQ(sparse_reports.size(), dense_reports.size());
  for (std::size_t e = 0; e < sparse_reports.size(); ++e) {
    EXPECT_NEAR(dense_reports[e].train_loss, sparse_reports[e].train_loss,
                kPathAgreement * sparse_reports[e].train_loss);
    EXPECT_NEAR(dense_reports[e].val_loss, sparse_reports[e].val_loss,
                kPathAgreement * sparse_reports[e].val_loss);
  }
  EXPECT_EQ(dense_trainer.validation_counts().values, sparse_trainer.validation_counts().values);
}

// 64-16-4-16-64: the network of the first-layer choice tests.
ModelLayout small_layout() {
  ModelConfig model;
  model.input_dim = 64;
  model.hidden = {16};
  model.latent = 4;
  return ModelLayout(model);
}

// A sparse batch at or above the backend's dense_first_layer_density is densified for the first
// layer: its outputs and gradients are then those of the same rows given dense, to the bit. A
// sparser batch goes through spmm and agrees to rounding.
TEST_P(DensePath, DenseEnoughSparseBatchesAreDensifiedForTheFirstLayer) {
  const ModelLayout layout = small_layout();
  std::mt19937_64 rng(5);
  const double threshold = backend().dense_first_layer_density();
  for (const double density : {0.02, 0.5}) {
    SCOPED_TRACE("density " + std::to_string(density));
    const HostCsr rows = reference::random_csr(rng, 32, 64, density, 0.0);
    const BackendCsr sparse(backend(), rows);
    const Buffer<float> dense(backend(), to_dense(rows).values);
    const std::vector<float> output_gradient = reference::random_floats(rng, 32 * 64, -1, 1);
    // The network's outputs and its parameters' gradients for one forward and backward.
    const auto run = [&](Network& net, auto batch) {
      net.forward(batch);
      std::vector<float> output(output_gradient.size());
      backend().download_bytes(output.data(), net.output().data, output.size() * sizeof(float));
      backend().upload_bytes(net.output_gradient().data, output_gradient.data(),
                             output_gradient.size() * sizeof(float));
      net.backward(batch);
      return std::make_pair(output, net.gradients().download());
    };
    Network from_sparse(backend(), layout, 32);
    Network from_dense(backend(), layout, 32);
    const auto sparse_result = run(from_sparse, sparse.view());
    const auto dense_result = run(from_dense, ConstDenseView(dense.matrix(32, 64)));
    const bool densified = static_cast<double>(rows.nnz()) >= threshold * 32 * 64;
    EXPECT_EQ(from_sparse.first_layer_densified(), densified);
    EXPECT_FALSE(from_dense.first_layer_densified());
    if (densified) {
      EXPECT_TRUE(sparse_result.first == dense_result.first) << "outputs differ";
      EXPECT_TRUE(sparse_result.second == dense_result.second) << "gradients differ";
    } else {
      for (const auto& [got, want] :
           {std::make_pair(&sparse_result.first, &dense_result.first),
            std::make_pair(&sparse_result.second, &dense_result.second)}) {
        float largest = 0.0f;
        for (const float v : *want) largest = std::max(largest, std::fabs(v));
        for (std::size_t i = 0; i < want->size(); ++i)
          ASSERT_NEAR((*got)[i], (*want)[i], 1e-5f * largest) << i;
      }
    }
  }
  if (is_cpu()) {
    EXPECT_GT(threshold, 0.02) << "the sparse batch above would have been densified";
    EXPECT_LE(threshold, 0.5) << "the dense batch above would have gone through spmm";
  }
}

// The trainer's batches choose between spmm and densifying by the data's mean density, the last
// shorter batch too: it once compared a full batch's mean non-zeros with its own fewer entries,
// and densified a short batch of data far sparser than the crossover.
TEST_P(DensePath, EveryTrainingBatchChoosesByTheDataMeanDensity) {
  const double threshold = backend().dense_first_layer_density();
  const ModelLayout layout = small_layout();
  std::mt19937_64 rng(9);
  std::vector<std::int64_t> ids(40);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
  const Buffer<std::int64_t> device_ids(backend(), ids);
  // Below the crossover, and above it where the backend has one (cuda's is infinite).
  for (const double density : {0.8 * std::min(threshold, 0.5), 1.5 * threshold}) {
    if (density > 0.9) continue;
    const HostCsr rows = reference::random_csr(rng, 40, 64, density, 0.0);
    const bool densified = static_cast<double>(rows.nnz()) >= threshold * 40 * 64;
    for (const DataPlacement placement : {DataPlacement::resident, DataPlacement::streamed}) {
      SCOPED_TRACE("density " + std::to_string(density) +
                   (placement == DataPlacement::resident ? ", resident" : ", streamed"));
      const auto source = detail::make_row_source(backend(), rows, 32, {}, placement);
      source->prepare_batches(device_ids.data(), 40, 32);
      Network net(backend(), layout, 32);
      for (std::int64_t batch = 0; batch < 2; ++batch) {  // 32 rows, then 8
        detail::forward(net, source->gather(batch));
        EXPECT_EQ(net.first_layer_densified(), densified) << "batch " << batch;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, DensePath, ::testing::Values("cpu", "cuda"),
                         test::backend_param_name);

}  // namespace
}  // namespace sparseae
