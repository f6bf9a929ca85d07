// fit (fit.hpp): one call gives a model that decodes as its validation measured, on the rows it
// says, with the hurdle threshold, the decode and the PCA anchor sae train would give it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "sparseae/checkpoint.hpp"
#include "sparseae/fit.hpp"
#include "sparseae/io.hpp"
#include "sparseae/pca.hpp"
#include "test_util.hpp"

namespace sparseae::test {
namespace {

// A small model that trains in a second on narrow_topic_counts.
FitOptions small_fit(LossKind loss) {
  FitOptions options;
  options.model.hidden = {32};
  options.model.latent = 8;
  options.model.seed = 5;
  options.train.loss = loss;
  options.train.epochs = 3;
  options.train.batch_size = 64;
  options.train.val_fraction = 0.2;
  options.train.seed = 5;
  options.train.optimizer.learning_rate = 3e-3f;
  return options;
}

class Fit : public ::testing::Test {
 protected:
  Backend& backend() { return *backend_; }

 private:
  std::unique_ptr<Backend> backend_ = make_backend(BackendChoice::cpu);
};

TEST_F(Fit, ModelEvaluatesToTheReportedValidationMetrics) {
  const HostCsr data = narrow_topic_counts(600, 3);
  const FitResult result = fit(backend(), data, small_fit(LossKind::mse));
  ASSERT_FALSE(result.interrupted);
  EXPECT_EQ(result.epochs.size(), 3u);
  EXPECT_EQ(result.run.model.input_dim, data.cols);
  ASSERT_TRUE(result.run.decode.has_value());
  const HostCsr validation = select_rows(data, split_rows(data.rows, 0.2, 5).second);
  EXPECT_EQ(result.validation.rows, validation.rows);
  TrainedModel model = result.model(backend());
  EXPECT_EQ(model.evaluate(validation).to_json(), result.validation.to_json());
  // The kept epoch is the best by validation F1: no epoch reported a higher one.
  for (const EpochReport& epoch : result.epochs)
    EXPECT_LE(epoch.score, result.validation.exact_f1 + 1e-12) << "epoch " << epoch.epoch;
}

// A hurdle model gets the threshold chosen on its validation rows and the better of its two
// decodes, both stored in its run, so that its checkpoint decodes the same.
TEST_F(Fit, HurdleStoresItsThresholdAndDecode) {
  const HostCsr data = narrow_topic_counts(600, 3);
  const FitResult result = fit(backend(), data, small_fit(LossKind::hurdle));
  const HostCsr validation = select_rows(data, split_rows(data.rows, 0.2, 5).second);
  RunConfig unthresholded = result.run;
  unthresholded.hurdle_threshold = kDefaultHurdleThreshold;
  TrainedModel untuned(backend(), unthresholded, result.state.parameters);
  EXPECT_EQ(result.run.hurdle_threshold, choose_hurdle_threshold(untuned, validation));

  ASSERT_TRUE(result.run.decode.has_value());
  ASSERT_TRUE(result.other_decode.has_value());
  EXPECT_NE(*result.other_decode, *result.run.decode);
  EXPECT_GE(result.validation.exact_f1, result.other_decode_f1);
  TrainedModel loaded(backend(), result.checkpoint().config, result.checkpoint().state.parameters);
  EXPECT_EQ(loaded.evaluate(validation).to_json(), result.validation.to_json());
}

TEST_F(Fit, AskedDecodeIsKept) {
  const HostCsr data = narrow_topic_counts(400, 3);
  FitOptions options = small_fit(LossKind::poisson);
  options.decode = DecodeMode::mode;
  const FitResult result = fit(backend(), data, options);
  EXPECT_EQ(result.run.decode, DecodeMode::mode);
  EXPECT_EQ(result.other_decode, default_decode(LossKind::poisson));
}

// The caller's validation rows are the ones measured and selected on; given the rows the split
// would give, the fit is the one-matrix fit, bit for bit.
TEST_F(Fit, ExplicitValidationRowsAreTheOnesMeasured) {
  const HostCsr data = narrow_topic_counts(600, 3);
  const auto split = split_rows(data.rows, 0.2, 5);
  const HostCsr train_rows = select_rows(data, split.first);
  const HostCsr validation_rows = select_rows(data, split.second);
  const FitOptions options = small_fit(LossKind::mse);
  const FitResult split_fit = fit(backend(), data, options);
  const FitResult explicit_fit = fit(backend(), train_rows, validation_rows, options);
  EXPECT_EQ(explicit_fit.state.parameters, split_fit.state.parameters);
  EXPECT_EQ(explicit_fit.validation.to_json(), split_fit.validation.to_json());

  const HostCsr other_rows = narrow_topic_counts(77, 4);
  const FitResult other_fit = fit(backend(), train_rows, other_rows, options);
  EXPECT_EQ(other_fit.validation.rows, 77);
  EXPECT_EQ(other_fit.model(backend()).evaluate(other_rows).to_json(),
            other_fit.validation.to_json());
}

// A model with linear skips starts at PCA of exactly its training rows, and keeps its start
// unless an epoch beats it: it ends no worse than that PCA on the validation rows.
TEST_F(Fit, LinearSkipModelIsAnchoredAtPcaOfItsTrainingRows) {
  const HostCsr train_rows = narrow_topic_counts(500, 3);
  const HostCsr validation_rows = narrow_topic_counts(150, 4);
  FitOptions options = small_fit(LossKind::mse);
  options.model.hidden = {16};
  options.model.latent = 4;
  options.model.latent_activation = Activation::identity;
  options.model.linear_skip = true;
  const FitResult result = fit(backend(), train_rows, validation_rows, options);
  ASSERT_TRUE(result.anchor.has_value());
  EXPECT_EQ(result.anchor->rows, train_rows.rows);

  PcaConfig config;
  config.components = 4;
  config.seed = 5;
  const PcaModel pca = fit_pca(backend(), train_rows, config);
  TrainedModel pca_model(backend(), pca_run_config(pca, "", 0.0, 5), pca_parameters(pca));
  const double pca_f1 = pca_model.evaluate(validation_rows, DecodeMode::round).exact_f1;
  EXPECT_GE(result.validation.exact_f1, pca_f1 - 2e-3);
  // Untrained, the anchored model is that PCA (float sums apart).
  options.train.epochs = 0;
  const FitResult start = fit(backend(), train_rows, validation_rows, options);
  EXPECT_NEAR(start.validation.exact_f1, pca_f1, 2e-3);
}

// fit on a Trainer the caller built (what sae train does) is the one-call fit, and gives what its
// report shows besides: the threshold curve, the chosen decode's detail; a reduction over one
// rank changes nothing; a resumed trainer is not anchored again.
TEST_F(Fit, OnTheCallersTrainerIsTheOneCallFitWithItsExtras) {
  const HostCsr data = narrow_topic_counts(600, 3);
  FitOptions options = small_fit(LossKind::hurdle);
  const FitResult one_call = fit(backend(), data, options);

  RunConfig run;
  run.model = options.model;
  run.model.input_dim = data.cols;
  run.train = options.train;
  Trainer trainer(backend(), run.model, run.train, data);
  std::vector<ThresholdScore> curve;
  ReconstructionDetail detail;
  FitSteps steps;
  steps.threshold_scores = &curve;
  steps.decode_detail = &detail;
  const FitResult stepped = fit(backend(), trainer, run, options, steps);
  EXPECT_EQ(run_config_to_json(stepped.run), run_config_to_json(one_call.run));
  EXPECT_EQ(run_config_to_json(run), run_config_to_json(one_call.run)) << "run is completed";
  EXPECT_EQ(stepped.state.parameters, one_call.state.parameters);
  EXPECT_EQ(curve.size(), 19u);
  EXPECT_EQ(detail.column_nonzeros.size(), static_cast<std::size_t>(data.cols));

  RunConfig summed_run = run;
  summed_run.decode.reset();
  Trainer summed_trainer(backend(), summed_run.model, summed_run.train, data);
  FitSteps one_rank;
  int sums = 0;
  one_rank.sum_over_ranks = [&sums](std::vector<double>&) { ++sums; };
  const FitResult summed = fit(backend(), summed_trainer, summed_run, options, one_rank);
  EXPECT_EQ(run_config_to_json(summed.run), run_config_to_json(one_call.run));
  EXPECT_EQ(summed.validation.to_json(), one_call.validation.to_json());
  EXPECT_GE(sums, 3) << "the threshold's counts and both decodes' metrics are summed";

  // A linear_skip model resumed from its state starts where the state says, not at PCA again.
  FitOptions anchored = small_fit(LossKind::mse);
  anchored.model.linear_skip = true;
  anchored.model.latent_activation = Activation::identity;
  const FitResult first = fit(backend(), data, anchored);
  ASSERT_TRUE(first.anchor.has_value());
  RunConfig resumed_run = first.run;
  resumed_run.train.epochs = 4;
  Trainer resumed(backend(), resumed_run.model, resumed_run.train, data);
  resumed.restore(first.state);
  FitSteps resume_steps;
  resume_steps.resumed = true;
  bool anchored_again = false;
  resume_steps.on_anchor = [&anchored_again](const PcaModel&) { anchored_again = true; };
  const FitResult continued = fit(backend(), resumed, resumed_run, anchored, resume_steps);
  EXPECT_FALSE(anchored_again);
  EXPECT_FALSE(continued.anchor.has_value());
  EXPECT_EQ(continued.epochs.size(), 1u);
}

// sae train is fit with the command line's options: from the same rows, the same configuration
// (scale, reference library size, hurdle threshold, decode) and the same parameters, for a count
// loss and for a model anchored at PCA.
TEST_F(Fit, GivesTheModelSaeTrainGives) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("sparseae-fit-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const HostCsr data = narrow_topic_counts(300, 3);
  write_matrix_market((dir / "x.mtx").string(), data, true);
  const char* from_environment = std::getenv("SAE_BINARY");
  for (const std::string model_options : {"--loss hurdle", "--loss mse --pca-anchor"}) {
    const std::string command =
        "cd '" + dir.string() + "' && '" + (from_environment ? from_environment : SAE_BINARY) +
        "' train --data x.mtx " + model_options +
        " --epochs 2 --hidden 32 --latent 8 --batch 64 --checkpoint m.ckpt --no-pca --quiet "
        "--backend cpu > out.txt 2> err.txt";
    const int status = std::system(command.c_str());
    std::ifstream err(dir / "err.txt");
    ASSERT_EQ(status, 0) << std::string(std::istreambuf_iterator<char>(err), {});
    const Checkpoint trained = load_checkpoint((dir / "m.ckpt").string());

    FitOptions options;
    options.model = trained.config.model;
    options.train = trained.config.train;
    options.data_source = trained.config.data_source;
    const FitResult result = fit(backend(), data, options);
    // sae train also records where the data lies from the checkpoint it writes; fit writes none.
    RunConfig expected = trained.config;
    expected.data_source_relative_to_checkpoint.clear();
    EXPECT_EQ(run_config_to_json(result.run), run_config_to_json(expected)) << model_options;
    EXPECT_EQ(result.state.parameters, trained.state.parameters) << model_options;
  }
  fs::remove_all(dir);
}

TEST_F(Fit, RefusesOptionsThatDoNotFitBeforeTraining) {
  const HostCsr data = narrow_topic_counts(100, 3);
  FitOptions wrong_width = small_fit(LossKind::mse);
  wrong_width.model.input_dim = 64;
  EXPECT_EQ(error_message([&] { fit(backend(), data, wrong_width); }),
            "fit: the model's input_dim is 64, the data has 128 columns (0 takes the data's)");
  FitOptions unscaled_bce = small_fit(LossKind::bce);
  EXPECT_EQ(error_message([&] { fit(backend(), data, unscaled_bce); }),
            "fit: the loss bce needs targets in [0, 1]: set train.scale to ScaleMode::max");
  FitOptions bounded_poisson = small_fit(LossKind::poisson);
  bounded_poisson.model.output_activation = Activation::relu;
  EXPECT_EQ(error_message([&] { fit(backend(), data, bounded_poisson); }),
            "fit: the loss poisson reads logits or log-rates: its output activation must be "
            "identity");
  FitOptions mode_of_mse = small_fit(LossKind::mse);
  mode_of_mse.decode = DecodeMode::mode;
  EXPECT_FALSE(error_message([&] { fit(backend(), data, mode_of_mse); }).empty());
  const HostCsr narrow = generate_topic_counts([] {
    TopicDataConfig config;
    config.rows = 20;
    config.cols = 64;
    config.topics = 4;
    config.columns_per_topic = 8;
    config.mean_nonzeros = 8;
    return config;
  }());
  EXPECT_EQ(error_message([&] { fit(backend(), data, narrow, small_fit(LossKind::mse)); }),
            "the validation rows have 64 columns, the training rows 128");
}

}  // namespace
}  // namespace sparseae::test
