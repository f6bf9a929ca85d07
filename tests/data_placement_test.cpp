// Where the rows live while training (TrainConfig::placement): streamed rows, gathered on the host
// and copied through page-locked staging memory while the batch before computes, train exactly as
// resident rows gathered on the device; the automatic choice follows the budget; and the staged
// uploads underneath copy what they are given, in their slots.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/model.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"
#include "training_outcome.hpp"

namespace sparseae::test {
namespace {

// 600 rows of 128 columns: 540 training rows in 9 batches of 64 (the last one 28 rows), and 60
// validation rows in one.
HostCsr small_counts() { return narrow_topic_counts(600, 7); }

ModelConfig small_model(std::int64_t cols) {
  ModelConfig model;
  model.input_dim = cols;
  model.hidden = {32};
  model.latent = 8;
  return model;
}

TrainConfig config_with(DataPlacement placement) {
  TrainConfig config;
  config.loss = LossKind::poisson;
  config.epochs = 2;
  config.batch_size = 64;
  config.placement = placement;
  return config;
}

template <typename Matrix>
Outcome train(Backend& backend, const Matrix& data, const TrainConfig& config) {
  return train_outcome(backend, small_model(data.cols), data, config);
}

class DataPlacementTraining : public BackendTest {};

TEST_P(DataPlacementTraining, StreamedRowsTrainAsResidentRows) {
  const HostCsr data = small_counts();
  const Outcome resident = train(backend(), data, config_with(DataPlacement::resident));
  const Outcome streamed = train(backend(), data, config_with(DataPlacement::streamed));
  expect_same_training(streamed, resident, is_cpu());
}

TEST_P(DataPlacementTraining, DenseRowsStreamAsTheirCsr) {
  // Streamed rows are CSR whatever the file held: dense rows streamed train as their CSR does
  // resident (the sparse first layer), not as the dense path would.
  const HostCsr data = small_counts();
  const Outcome resident = train(backend(), data, config_with(DataPlacement::resident));
  const Outcome streamed = train(backend(), to_dense(data), config_with(DataPlacement::streamed));
  expect_same_training(streamed, resident, is_cpu());
}

TEST_P(DataPlacementTraining, AStreamedRunStoppedMidEpochResumesExactly) {
  // A restored state starts mid-epoch, so the first batch the streamed source copies is not
  // batch 0; and the batch it had staged for the stopped run is dropped.
  const HostCsr data = small_counts();
  const TrainConfig streamed = config_with(DataPlacement::streamed);
  const Outcome straight = train(backend(), data, config_with(DataPlacement::resident));

  Trainer first(backend(), small_model(data.cols), streamed, data);
  int steps = 0;
  TrainObserver stop_after_four;
  stop_after_four.stop_requested = [&] { return ++steps == 4; };
  first.train(stop_after_four);
  ASSERT_TRUE(first.interrupted());
  ASSERT_EQ(first.completed_steps(), 4);

  Trainer second(backend(), small_model(data.cols), streamed, data);
  second.restore(first.state());
  Outcome resumed;
  for (const EpochReport& report : second.train()) {
    resumed.train_losses.push_back(report.train_loss);
    resumed.val_losses.push_back(report.val_loss);
  }
  resumed.state = second.state();
  ASSERT_EQ(resumed.train_losses.size(), 2u);
  EXPECT_EQ(resumed.state.step, straight.state.step);
  // The first epoch's loss of the resumed run counts only its steps; compare what follows.
  Outcome tail = straight;
  resumed.train_losses.erase(resumed.train_losses.begin());
  tail.train_losses.erase(tail.train_losses.begin());
  resumed.val_losses.erase(resumed.val_losses.begin());
  tail.val_losses.erase(tail.val_losses.begin());
  expect_same_training(resumed, tail, is_cpu());
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(DataPlacementTraining);

TEST(DataPlacement, AutomaticFollowsTheBudget) {
  const auto backend = make_backend(BackendChoice::cpu);
  const HostCsr data = small_counts();
  const ModelConfig model = small_model(data.cols);
  TrainConfig config = config_with(DataPlacement::automatic);
  const auto placement = [&] { return Trainer(*backend, model, config, data).data_placement(); };
  // The cpu backend has no device memory of its own: resident, in host memory.
  EXPECT_TRUE(contains(placement(), " KiB of rows in host memory (cpu backend)")) << placement();
  EXPECT_TRUE(contains(placement(), "resident: ")) << placement();
  // The rows (about 60 KiB) against a budget of 1 MiB, then of 1 KiB.
  config.device_memory_budget = 1 << 20;
  EXPECT_TRUE(contains(placement(), " KiB of rows within a 1.0 MiB device-memory budget"))
      << placement();
  EXPECT_TRUE(contains(placement(), "resident: ")) << placement();
  config.device_memory_budget = 1 << 10;
  EXPECT_TRUE(contains(placement(),
                       " KiB of rows exceed a 1.0 KiB device-memory budget, a batch "
                       "copied while the one before computes"))
      << placement();
  EXPECT_TRUE(contains(placement(), "streamed: ")) << placement();
  // A budget too small for the rows trains them streamed, exactly as resident.
  const Outcome automatic = train(*backend, data, config);
  const Outcome resident = train(*backend, data, config_with(DataPlacement::resident));
  expect_same_training(automatic, resident, true);

  config.placement = DataPlacement::resident;
  EXPECT_TRUE(contains(placement(), "resident (chosen): ")) << placement();
  config.placement = DataPlacement::streamed;
  EXPECT_TRUE(contains(placement(), "streamed (chosen): ")) << placement();
}

TEST(DataPlacement, NamesParseAndPrint) {
  for (const DataPlacement p :
       {DataPlacement::automatic, DataPlacement::resident, DataPlacement::streamed})
    EXPECT_EQ(parse_data_placement(data_placement_name(p)), p);
  EXPECT_EQ(error_message([] { parse_data_placement("device"); }),
            "unknown data placement 'device': expected auto, resident or stream");
}

// ---- the staged uploads themselves ----

class StagedUploads : public BackendTest {};

TEST_P(StagedUploads, EachSlotCopiesItsStagingMemoryWhenUsed) {
  constexpr std::size_t kCount = 3000;
  PinnedBuffer<float> staging[Backend::kUploadSlots] = {PinnedBuffer<float>(backend(), kCount),
                                                        PinnedBuffer<float>(backend(), kCount)};
  Buffer<float> device[Backend::kUploadSlots] = {Buffer<float>(backend(), kCount),
                                                 Buffer<float>(backend(), kCount)};
  std::vector<float> sent[Backend::kUploadSlots];
  // Three rounds through both slots: each round refills a slot's staging memory only after
  // begin_uploads said the slot's last copy had read it.
  for (int round = 0; round < 3; ++round)
    for (int slot = 0; slot < Backend::kUploadSlots; ++slot) {
      backend().begin_uploads(slot);
      sent[slot].assign(kCount, 0.0f);
      for (std::size_t i = 0; i < kCount; ++i) {
        sent[slot][i] = static_cast<float>(round * 100000 + slot * 10000) + static_cast<float>(i);
        staging[slot].data()[i] = sent[slot][i];
      }
      backend().upload_async(slot, device[slot].data(), staging[slot].data(),
                             kCount * sizeof(float));
      backend().use_uploads(slot);
    }
  for (int slot = 0; slot < Backend::kUploadSlots; ++slot)
    EXPECT_EQ(device[slot].download(), sent[slot]) << "slot " << slot;
}

TEST_P(StagedUploads, ASlotOutsideTheRangeIsAnError) {
  EXPECT_EQ(error_message([&] { backend().begin_uploads(Backend::kUploadSlots); }),
            "begin_uploads: upload slot 2 is not in [0, 2)");
  EXPECT_EQ(error_message([&] { backend().use_uploads(-1); }),
            "use_uploads: upload slot -1 is not in [0, 2)");
  float value = 0.0f;
  EXPECT_EQ(error_message([&] { backend().upload_async(5, &value, &value, sizeof value); }),
            "upload_async: upload slot 5 is not in [0, 2)");
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(StagedUploads);

}  // namespace
}  // namespace sparseae::test
