// The NCCL communicator on one GPU: one rank bootstrapped through one process's communicator, no
// MPI. It cannot show that ranks sum (that needs two GPUs), but it runs the code a multi-GPU job
// runs on every step — ncclCommInitRank, ncclAllReduce in place on the backend's stream between
// the backward pass and the optimizer — on the GPU check's one device, where an error in the
// buffer, count, type or stream would show.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "backend/communicator_factory.hpp"
#include "core/communicator.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"

namespace sparseae::test {
namespace {

class NcclOneRank : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string reason;
    if (!cuda_device_available(&reason))
      GTEST_SKIP() << "NCCL runs on the cuda backend: no device answers (" << reason << ")";
    backend_ = make_backend(BackendChoice::cuda);
  }
  Backend& backend() { return *backend_; }

 private:
  std::unique_ptr<Backend> backend_;
};

TEST_F(NcclOneRank, AllReduceOfOneRankLeavesTheGradients) {
  auto nccl = detail::make_nccl_communicator(backend(), make_single_process_communicator());
  EXPECT_EQ(nccl->rank(), 0);
  EXPECT_EQ(nccl->size(), 1);
  EXPECT_NE(nccl->description().find("NCCL"), std::string::npos) << nccl->description();

  std::vector<float> values(1000003);  // odd: no count that a vectorised copy would round to
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<float>(i % 97) * 0.25f - 7.0f;
  Buffer<float> gradients(backend(), values);
  nccl->all_reduce_gradients(gradients.data(), static_cast<std::int64_t>(values.size()));
  EXPECT_EQ(gradients.download(), values);

  std::vector<double> sums = {1.5, -2.0};
  nccl->all_reduce_sum(sums.data(), 2);
  EXPECT_EQ(sums, (std::vector<double>{1.5, -2.0}));
}

TEST_F(NcclOneRank, TrainsTheParametersOfOneProcess) {
  const HostCsr rows = narrow_topic_counts(600, 3);
  ModelConfig model;
  model.input_dim = rows.cols;
  model.hidden = {32};
  model.latent = 8;
  model.seed = 7;
  TrainConfig config;
  config.epochs = 2;
  config.batch_size = 64;
  config.val_fraction = 0.2;
  config.seed = 7;
  const RowShard whole{0, rows.rows};

  auto alone = make_single_process_communicator();
  Trainer expected(backend(), model, config, rows, whole, *alone);
  expected.train();

  auto nccl = detail::make_nccl_communicator(backend(), make_single_process_communicator());
  Trainer trainer(backend(), model, config, rows, whole, *nccl);
  trainer.train();

  EXPECT_EQ(trainer.state().parameters, expected.state().parameters);
}

}  // namespace
}  // namespace sparseae::test
