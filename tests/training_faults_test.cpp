// Faults while training: a non-finite loss stops training with the step named (--on-nan stop)
// or skips that step's update (--on-nan skip, the optimizer leaving parameters and moments
// untouched); a stop request mid-epoch leaves a state that resumes to the same parameters, bit
// for bit on cpu, as an uninterrupted run; and the real sae binary, sent SIGINT or SIGTERM,
// finishes its step, writes its checkpoint and exits with a resume hint, while kill -9 at any
// moment leaves a checkpoint that loads and resumes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "backend_fixture.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/io.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"

#ifndef SAE_BINARY
#error "SAE_BINARY must name the sae executable"
#endif

namespace sparseae::test {
namespace {

namespace fs = std::filesystem;

class OptimizerGate : public BackendTest {};

// A non-finite squared norm under skip_nonfinite leaves everything as it was; a finite one
// updates exactly as without the flag.
TEST_P(OptimizerGate, NonFiniteNormSkipsTheStepAndFiniteNormUpdates) {
  const std::vector<float> params{0.5f, -1.0f, 2.0f, 0.25f};
  const std::vector<float> grads{0.1f, -0.2f, 0.3f, std::numeric_limits<float>::quiet_NaN()};
  OptimizerConfig config;
  config.skip_nonfinite = true;
  for (const float norm :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    Buffer<float> p = upload(params);
    Buffer<float> first = upload(std::vector<float>{0.01f, 0.02f, 0.03f, 0.04f});
    Buffer<float> second = upload(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f});
    const Buffer<float> g = upload(grads);
    const Buffer<float> sum_squares = upload(std::vector<float>{norm});
    backend().optimizer_step(config, 3, 4, p.data(), g.data(), first.data(), second.data(),
                             sum_squares.data());
    EXPECT_EQ(download(p), params) << norm;
    EXPECT_EQ(download(first), (std::vector<float>{0.01f, 0.02f, 0.03f, 0.04f})) << norm;
    EXPECT_EQ(download(second), (std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f})) << norm;
  }
  const std::vector<float> finite_grads{0.1f, -0.2f, 0.3f, 0.4f};
  const Buffer<float> g = upload(finite_grads);
  const Buffer<float> sum_squares = upload(std::vector<float>{0.3f});
  Buffer<float> skipping = upload(params);
  Buffer<float> plain = upload(params);
  Buffer<float> moments[4] = {Buffer<float>(backend(), 4), Buffer<float>(backend(), 4),
                              Buffer<float>(backend(), 4), Buffer<float>(backend(), 4)};
  for (Buffer<float>& m : moments) m.fill_zero();
  backend().optimizer_step(config, 1, 4, skipping.data(), g.data(), moments[0].data(),
                           moments[1].data(), sum_squares.data());
  backend().optimizer_step(OptimizerConfig{}, 1, 4, plain.data(), g.data(), moments[2].data(),
                           moments[3].data(), nullptr);
  EXPECT_EQ(download(skipping), download(plain));
  EXPECT_NE(download(skipping), params);
  EXPECT_THROW(backend().optimizer_step(config, 1, 4, plain.data(), g.data(), moments[2].data(),
                                        moments[3].data(), nullptr),
               Error)
      << "skipping needs the norm";
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(OptimizerGate);

HostCsr topic_data(std::int64_t rows) {
  TopicDataConfig config;
  config.rows = rows;
  return generate_topic_counts(config);
}

ModelConfig small_model(std::int64_t cols) {
  ModelConfig model;
  model.input_dim = cols;
  model.hidden = {16};
  model.latent = 4;
  return model;
}

TrainConfig short_training() {
  TrainConfig train;
  train.epochs = 3;
  train.batch_size = 32;
  train.optimizer.learning_rate = 3e-3f;
  return train;
}

// The data with one NaN count in the first training row (the split is seeded, so that row is
// known), which poisons the loss and the gradient of exactly the step whose batch holds it.
HostCsr with_nan_in_a_training_row(HostCsr data, const TrainConfig& train) {
  const std::int64_t row = split_rows(data.rows, train.val_fraction, train.seed).first.front();
  EXPECT_LT(data.row_offsets[row], data.row_offsets[row + 1]) << "the row has a count";
  data.values[static_cast<std::size_t>(data.row_offsets[row])] =
      std::numeric_limits<float>::quiet_NaN();
  return data;
}

// Every count loss on heavy-tailed counts: read raw, its finite losses blow up (rates driven into
// the trillions, steps averaging orders above the validation loss) and training stops saying it
// diverged, never returning the useless model silently; read as log(1 + count), as sae train does
// by default, every one of them trains and ends below the untrained model's validation loss.
TEST(TrainingFaults, NoCountLossDivergesSilentlyOnHeavyTailedCounts) {
  const HostCsr data = heavy_tailed_counts();
  const auto backend = make_backend(BackendChoice::cpu);
  ModelConfig model;
  model.input_dim = data.cols;
  model.hidden = {64};
  model.latent = 8;
  for (const LossKind loss :
       {LossKind::poisson, LossKind::nb, LossKind::zinb, LossKind::hurdle, LossKind::hurdle_nb}) {
    SCOPED_TRACE(loss_name(loss));
    TrainConfig train;
    train.loss = loss;
    train.epochs = 6;
    train.batch_size = 64;
    train.input_transform = InputTransform::none;
    Trainer raw(*backend, model, train, data);
    const std::string message = error_message([&] { raw.train(); });
    EXPECT_EQ(message.rfind("training diverged: ", 0), 0u) << message;
    EXPECT_TRUE(contains(message, "try --input-transform log1p")) << message;

    train.input_transform = InputTransform::log1p;
    Trainer transformed(*backend, model, train, data);
    const double untrained = transformed.validation_loss();
    EXPECT_NO_THROW(transformed.train());
    const double trained = transformed.validation_loss();
    EXPECT_TRUE(std::isfinite(trained));
    EXPECT_LT(trained, untrained);
  }
}

TEST(TrainingFaults, NonFiniteLossStopsTrainingNamingTheStep) {
  const auto backend = make_backend(BackendChoice::cpu);
  const TrainConfig train = short_training();
  const HostCsr data = with_nan_in_a_training_row(topic_data(200), train);
  Trainer trainer(*backend, small_model(data.cols), train, data);
  const std::string message = error_message([&] { trainer.train(); });
  EXPECT_TRUE(contains(message, "training diverged: the loss of step ")) << message;
  EXPECT_TRUE(contains(message, "(epoch 1, step ")) << message;
  EXPECT_TRUE(contains(message, " of 6) is nan; the checkpoint of epoch 0 is the last good state"))
      << message;
  EXPECT_EQ(trainer.completed_epochs(), 0);
}

TEST(TrainingFaults, SkipPolicySkipsThePoisonedStepAndTrainsOn) {
  const auto backend = make_backend(BackendChoice::cpu);
  TrainConfig train = short_training();
  train.on_nonfinite = NonFinitePolicy::skip;
  const HostCsr data = with_nan_in_a_training_row(topic_data(200), train);
  Trainer trainer(*backend, small_model(data.cols), train, data);
  const std::vector<EpochReport> reports = trainer.train();
  ASSERT_EQ(reports.size(), 3u);
  for (const EpochReport& report : reports) {
    EXPECT_EQ(report.skipped_steps, 1) << "the one batch holding the NaN row, every epoch";
    EXPECT_TRUE(std::isfinite(report.train_loss));
    EXPECT_TRUE(std::isfinite(report.val_loss));
  }
  EXPECT_LT(reports.back().train_loss, reports.front().train_loss) << "it still learns";
  for (const float p : trainer.state().parameters) ASSERT_TRUE(std::isfinite(p));
}

// Stopped after step 8 (epoch 2 of 3, 6 steps an epoch), saved, loaded into a new trainer and
// resumed: the same parameters and moments as the uninterrupted run, bit for bit.
TEST(TrainingFaults, InterruptedRunResumesBitIdentically) {
  const auto backend = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_data(200);
  const ModelConfig model = small_model(data.cols);
  const TrainConfig train = short_training();
  Trainer straight(*backend, model, train, data);
  straight.train();
  EXPECT_FALSE(straight.interrupted());

  Trainer first(*backend, model, train, data);
  TrainObserver stop_at_step_8;
  stop_at_step_8.stop_requested = [&] { return first.completed_steps() == 8; };
  first.train(stop_at_step_8);
  ASSERT_TRUE(first.interrupted());
  EXPECT_EQ(first.completed_steps(), 8);
  EXPECT_EQ(first.completed_epochs(), 1);
  RunConfig run;
  run.model = model;
  run.train = train;
  const std::string path = ::testing::TempDir() + "interrupted.ckpt";
  save_checkpoint(path, {run, first.state()});

  const Checkpoint loaded = load_checkpoint(path);
  Trainer resumed(*backend, loaded.config.model, loaded.config.train, data);
  resumed.restore(loaded.state);
  const std::vector<EpochReport> reports = resumed.train();
  EXPECT_FALSE(resumed.interrupted());
  ASSERT_EQ(reports.size(), 2u) << "the rest of epoch 2, then epoch 3";
  EXPECT_EQ(reports.front().epoch, 2);
  const Trainer::State want = straight.state();
  const Trainer::State got = resumed.state();
  EXPECT_EQ(got.step, want.step);
  EXPECT_EQ(got.parameters, want.parameters);
  EXPECT_EQ(got.first_moment, want.first_moment);
  EXPECT_EQ(got.second_moment, want.second_moment);
}

// A batch too large for the device: the error gives the memory asked for and free, and the
// largest batch that fits, found by building the trainer again at smaller batches. Needs a
// device (the cpu backend allocates host memory and has no such limit).
TEST(TrainingFaults, DeviceOutOfMemoryNamesTheLargestBatchThatFits) {
  std::string reason;
  if (!cuda_device_available(&reason))
    GTEST_SKIP() << "cuda backend: no device answers (" << reason << ")";
  const auto backend = make_backend(BackendChoice::cuda);
  const HostCsr data = topic_data(400000);
  ModelConfig model = small_model(data.cols);
  model.hidden = {65536};  // about 0.8 MB of activations and scratch per batch row
  TrainConfig train = short_training();
  train.epochs = 0;
  train.batch_size = data.rows;
  const std::string message = error_message([&] { Trainer(*backend, model, train, data); });
  EXPECT_TRUE(contains(message, "cuda: out of device memory: asked for ")) << message;
  EXPECT_TRUE(contains(message, " MiB free of ")) << message;
  EXPECT_TRUE(contains(message, "; the largest batch that fits is ")) << message;
  const std::size_t at = message.find("(--batch ");
  ASSERT_NE(at, std::string::npos) << message;
  const std::int64_t fits = std::stoll(message.substr(at + 9));
  train.batch_size = fits;
  EXPECT_NO_THROW(Trainer(*backend, model, train, data)) << "the advice holds";
}

// ---- the real binary ----

std::string sae_binary() {
  const char* from_environment = std::getenv("SAE_BINARY");
  return from_environment != nullptr ? from_environment : SAE_BINARY;
}

class TrainingProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("sparseae-faults-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
            std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_matrix_market((dir_ / "x.mtx").string(), topic_data(3000), true);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Starts `sae train` on x.mtx (many epochs, a checkpoint each), or resumes c.ckpt; stderr to
  // err.txt.
  pid_t start_training(bool resume = false) {
    const std::string run =
        resume ? "--resume c.ckpt" : "--hidden 64 --latent 8 --epochs 400 --batch 64 --no-pca";
    const std::string command = "exec '" + sae_binary() + "' train --data x.mtx --backend cpu " +
                                run + " --quiet --checkpoint c.ckpt 2> err.txt";
    const pid_t pid = fork();
    if (pid == 0) {
      if (chdir(dir_.c_str()) != 0) _exit(127);
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }

  // Waits until the first epoch's checkpoint exists (at most a minute).
  bool wait_for_checkpoint() const {
    for (int i = 0; i < 600; ++i) {
      if (fs::exists(dir_ / "c.ckpt")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  static int wait_exit_code(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
  }

  std::string read(const std::string& name) const {
    std::ifstream in(dir_ / name);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  int run(const std::string& args) const {
    const std::string command = "cd '" + dir_.string() + "' && '" + sae_binary() + "' " + args +
                                " > /dev/null 2> resume-err.txt";
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  fs::path dir_;
};

TEST_F(TrainingProcess, SignalsFinishTheStepSaveAndExitWithAResumeHint) {
  for (const int signal : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(signal == SIGINT ? "SIGINT" : "SIGTERM");
    fs::remove(dir_ / "c.ckpt");
    const pid_t pid = start_training();
    ASSERT_TRUE(wait_for_checkpoint()) << read("err.txt");
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // mid-epoch, most likely
    kill(pid, signal);
    EXPECT_EQ(wait_exit_code(pid), 128 + signal);
    const std::string err = read("err.txt");
    EXPECT_TRUE(contains(err, signal == SIGINT ? "sae: SIGINT: stopped after step "
                                               : "sae: SIGTERM: stopped after step "))
        << err;
    EXPECT_TRUE(contains(err, "; c.ckpt holds it: resume with sae train --resume c.ckpt\n")) << err;
    const Checkpoint saved = load_checkpoint((dir_ / "c.ckpt").string());
    EXPECT_GT(saved.state.step, 0);
    EXPECT_TRUE(contains(err, "stopped after step " + std::to_string(saved.state.step) + " ("))
        << "the checkpoint holds the step the message names: " << err;
  }
  const Checkpoint saved = load_checkpoint((dir_ / "c.ckpt").string());
  EXPECT_EQ(run("train --resume c.ckpt --epochs " + std::to_string(saved.state.epoch + 1) +
                " --quiet --no-pca --checkpoint c.ckpt"),
            0)
      << read("resume-err.txt");
  EXPECT_EQ(load_checkpoint((dir_ / "c.ckpt").string()).state.epoch, saved.state.epoch + 1);
}

// kill -9 at several moments after the first checkpoint: whatever it interrupted (a step, or
// the checkpoint's write), the checkpoint on disk loads and the run resumes from it.
TEST_F(TrainingProcess, KillNineNeverLeavesACorruptCheckpoint) {
  for (const int delay_ms : {0, 37, 210, 650}) {
    SCOPED_TRACE(delay_ms);
    const pid_t pid = start_training(delay_ms != 0);
    if (delay_ms == 0) {
      ASSERT_TRUE(wait_for_checkpoint()) << read("err.txt");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    EXPECT_EQ(wait_exit_code(pid), 128 + SIGKILL);
    Checkpoint checkpoint;
    ASSERT_NO_THROW(checkpoint = load_checkpoint((dir_ / "c.ckpt").string()));
    EXPECT_GE(checkpoint.state.epoch, 1);
  }
  const Checkpoint last = load_checkpoint((dir_ / "c.ckpt").string());
  ASSERT_EQ(run("train --resume c.ckpt --epochs " + std::to_string(last.state.epoch + 1) +
                " --quiet --no-pca --checkpoint c.ckpt"),
            0)
      << read("resume-err.txt");
  EXPECT_EQ(load_checkpoint((dir_ / "c.ckpt").string()).state.epoch, last.state.epoch + 1);
}

}  // namespace
}  // namespace sparseae::test
