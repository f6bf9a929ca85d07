// Choosing a backend by name, the names of activations and optimizers, and the memory types
// (Buffer, BackendCsr) every op relies on.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backend_fixture.hpp"
#include "reference.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "sparseae/ops.hpp"
#include "test_util.hpp"

namespace sparseae::test {
namespace {

using test::contains;
using test::error_message;

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// ---- backend choice ----

TEST(BackendChoice, ParsesTheThreeNames) {
  EXPECT_EQ(parse_backend_choice("auto"), BackendChoice::automatic);
  EXPECT_EQ(parse_backend_choice("cpu"), BackendChoice::cpu);
  EXPECT_EQ(parse_backend_choice("cuda"), BackendChoice::cuda);
}

TEST(BackendChoice, RejectsOtherNamesNamingTheBadValue) {
  for (const std::string bad : {"gpu", "CPU", "", "cuda ", "automatic"}) {
    const std::string message = error_message([&] { parse_backend_choice(bad); });
    EXPECT_TRUE(contains(message, "'" + bad + "'"))
        << "message \"" << message << "\" does not name '" << bad << "'";
  }
}

TEST(BackendChoice, BackendNames) {
  EXPECT_STREQ(backend_name(BackendKind::cpu), "cpu");
  EXPECT_STREQ(backend_name(BackendKind::cuda), "cuda");
}

TEST(MakeBackend, CpuGivesTheCpuBackend) {
  const std::unique_ptr<Backend> backend = make_backend(BackendChoice::cpu);
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->kind(), BackendKind::cpu);
  EXPECT_TRUE(starts_with(backend->description(), "cpu")) << backend->description();
}

TEST(MakeBackend, AutomaticTakesCudaWhenADeviceAnswersElseCpuWithANotice) {
  std::string reason;
  const bool device = cuda_device_available(&reason);
  std::string notice;
  const std::unique_ptr<Backend> backend = make_backend(BackendChoice::automatic, &notice);
  ASSERT_NE(backend, nullptr);
  if (device) {
    EXPECT_EQ(backend->kind(), BackendKind::cuda);
  } else {
    EXPECT_FALSE(reason.empty()) << "cuda_device_available says no device without saying why";
    EXPECT_EQ(backend->kind(), BackendKind::cpu);
    EXPECT_TRUE(contains(notice, "using cpu")) << "notice: \"" << notice << "\"";
    EXPECT_TRUE(contains(notice, reason))
        << "notice \"" << notice << "\" omits the reason \"" << reason << "\"";
  }
  // Without a place for the notice, automatic still works.
  EXPECT_NE(make_backend(BackendChoice::automatic), nullptr);
}

TEST(MakeBackend, CudaWithoutADeviceThrowsSayingWhy) {
  if (cuda_device_available()) {
    EXPECT_EQ(make_backend(BackendChoice::cuda)->kind(), BackendKind::cuda);
    return;
  }
  const std::string message = error_message([] { make_backend(BackendChoice::cuda); });
  EXPECT_TRUE(starts_with(message, "backend cuda unavailable")) << message;
}

// ---- names of activations and optimizers ----

TEST(OpNames, ActivationsRoundTrip) {
  for (Activation a : {Activation::identity, Activation::relu, Activation::leaky_relu,
                       Activation::sigmoid, Activation::tanh, Activation::softplus})
    EXPECT_EQ(parse_activation(activation_name(a)), a) << activation_name(a);
  EXPECT_STREQ(activation_name(Activation::leaky_relu), "leaky_relu");
  EXPECT_STREQ(activation_name(Activation::softplus), "softplus");
}

TEST(OpNames, RejectsUnknownActivations) {
  for (const std::string bad : {"gelu", "ReLU", "", "leaky-relu"}) {
    const std::string message = error_message([&] { parse_activation(bad); });
    EXPECT_TRUE(contains(message, "'" + bad + "'")) << message;
  }
}

TEST(OpNames, OptimizersRoundTrip) {
  for (OptimizerKind k : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd})
    EXPECT_EQ(parse_optimizer(optimizer_name(k)), k) << optimizer_name(k);
  EXPECT_STREQ(optimizer_name(OptimizerKind::adamw), "adamw");
}

TEST(OpNames, RejectsUnknownOptimizers) {
  for (const std::string bad : {"rmsprop", "Adam", ""}) {
    const std::string message = error_message([&] { parse_optimizer(bad); });
    EXPECT_TRUE(contains(message, "'" + bad + "'")) << message;
  }
}

// ---- memory, on each backend ----

class BackendMemory : public BackendTest {};

TEST_P(BackendMemory, BufferRoundTripsData) {
  std::mt19937_64 rng(77);
  for (std::int64_t n : {1, 7, 1000, 100003}) {
    const std::vector<float> floats = reference::random_floats(rng, n, -1e6f, 1e6f);
    EXPECT_EQ(download(upload(floats)), floats) << n << " floats";
    std::vector<std::int64_t> wide(static_cast<std::size_t>(n));
    for (std::int64_t& v : wide) v = static_cast<std::int64_t>(rng());
    EXPECT_EQ(download(upload(wide)), wide) << n << " int64";
    std::vector<std::int32_t> narrow(static_cast<std::size_t>(n));
    for (std::int32_t& v : narrow) v = static_cast<std::int32_t>(rng());
    EXPECT_EQ(download(upload(narrow)), narrow) << n << " int32";
  }
}

TEST_P(BackendMemory, EmptyBufferHoldsNothing) {
  Buffer<float> empty(backend(), 0);
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(download(empty).empty());
  EXPECT_TRUE(download(upload(std::vector<float>{})).empty());
}

TEST_P(BackendMemory, ShortUploadFillsTheStartOnly) {
  Buffer<float> buffer = upload(std::vector<float>{9, 9, 9, 9});
  buffer.upload({1, 2});
  EXPECT_EQ(download(buffer), (std::vector<float>{1, 2, 9, 9}));
}

TEST_P(BackendMemory, UploadLongerThanTheBufferThrows) {
  Buffer<float> buffer(backend(), 2);
  EXPECT_THROW(buffer.upload({1, 2, 3}), Error);
}

TEST_P(BackendMemory, FillZeroAndCopy) {
  Buffer<float> buffer = upload(std::vector<float>{1, 2, 3, 4, 5});
  Buffer<float> copy(backend(), 5);
  backend().copy_bytes(copy.data(), buffer.data(), 5 * sizeof(float));
  buffer.fill_zero();
  EXPECT_EQ(download(buffer), std::vector<float>(5, 0.0f));
  EXPECT_EQ(download(copy), (std::vector<float>{1, 2, 3, 4, 5}));
}

TEST_P(BackendMemory, MoveLeavesTheSourceEmpty) {
  Buffer<float> source = upload(std::vector<float>{1, 2, 3});
  const float* storage = source.data();
  Buffer<float> moved(std::move(source));
  EXPECT_EQ(source.data(), nullptr);  // NOLINT(bugprone-use-after-move): checking that state
  EXPECT_EQ(source.size(), 0u);
  EXPECT_TRUE(source.empty());
  EXPECT_EQ(moved.data(), storage);
  EXPECT_EQ(download(moved), (std::vector<float>{1, 2, 3}));

  Buffer<float> assigned = upload(std::vector<float>{7});
  assigned = std::move(moved);
  EXPECT_EQ(moved.data(), nullptr);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(moved.size(), 0u);
  EXPECT_EQ(assigned.data(), storage);
  EXPECT_EQ(download(assigned), (std::vector<float>{1, 2, 3}));
}

TEST_P(BackendMemory, MatrixViewMustFitTheBuffer) {
  Buffer<float> buffer(backend(), 12);
  const DenseView view = buffer.matrix(3, 4);
  EXPECT_EQ(view.data, buffer.data());
  EXPECT_EQ(view.rows, 3);
  EXPECT_EQ(view.cols, 4);
  EXPECT_EQ(view.ld, 4);
  EXPECT_THROW(buffer.matrix(4, 4), Error);
}

TEST_P(BackendMemory, BackendCsrUploadsAHostCsr) {
  std::mt19937_64 rng(78);
  const HostCsr host = reference::random_csr(rng, 57, 33, 0.2, 0.3);
  const BackendCsr on_backend(backend(), host);
  EXPECT_EQ(on_backend.rows(), host.rows);
  EXPECT_EQ(on_backend.cols(), host.cols);
  EXPECT_EQ(on_backend.nnz(), host.nnz());
  const CsrView view = on_backend.view();
  EXPECT_EQ(view.rows, host.rows);
  EXPECT_EQ(view.cols, host.cols);
  EXPECT_EQ(view.nnz, host.nnz());

  std::vector<RowOffset> offsets(host.row_offsets.size());
  std::vector<ColIndex> columns(host.col_indices.size());
  std::vector<float> values(host.values.size());
  backend().download_bytes(offsets.data(), view.row_offsets, offsets.size() * sizeof(RowOffset));
  backend().download_bytes(columns.data(), view.col_indices, columns.size() * sizeof(ColIndex));
  backend().download_bytes(values.data(), view.values, values.size() * sizeof(float));
  EXPECT_EQ(offsets, host.row_offsets);
  EXPECT_EQ(columns, host.col_indices);
  EXPECT_EQ(values, host.values);
}

TEST_P(BackendMemory, BackendCsrRejectsAnInvalidHostCsr) {
  HostCsr host;
  host.rows = 2;
  host.cols = 3;
  host.row_offsets = {0, 2, 3};
  host.col_indices = {0, 5, 1};  // 5 is outside [0, 3)
  host.values = {1, 2, 3};
  const std::string message = error_message([&] { const BackendCsr rejected(backend(), host); });
  EXPECT_TRUE(contains(message, "column index 5")) << message;
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(BackendMemory);

}  // namespace
}  // namespace sparseae::test
