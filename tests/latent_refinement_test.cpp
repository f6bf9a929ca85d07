// Latent refinement (RunConfig::latent_refinement): each row's code moved by Adam on the model's
// loss of that row, through the decoder alone. On a briefly trained model, once per backend: the
// refined codes lower the validation rows' loss, and encode, outputs, decode_outputs and evaluate
// all read the same refined codes; relu codes stay non-negative; 0 steps is the encoder's code.
// Then what is refused, and the checkpoint key. Network::latent_gradient, which the refinement
// follows, is checked against central differences in gradient_check_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"
#include "trained_run.hpp"

namespace sparseae::test {
namespace {

// 3 epochs on 400 rows of the topic generator: a model whose encoder has not converged, as an
// encoder never has on rows it did not see.
TrainedRun train_briefly(Backend& backend, LossKind loss, Activation latent_activation) {
  TopicDataConfig data_config;
  data_config.rows = 400;
  const HostCsr data = generate_topic_counts(data_config);
  RunConfig run;
  run.model.input_dim = data.cols;
  run.model.hidden = {24};
  run.model.latent = 6;
  run.model.latent_activation = latent_activation;
  run.train.loss = loss;
  run.train.epochs = 3;
  run.train.batch_size = 32;
  run.train.val_fraction = 0.25;
  run.train.optimizer.learning_rate = 3e-3f;
  return train_run(backend, run, data);
}

// Relative difference of two float vectors, NaN counting as large.
double largest_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (!(d <= worst)) worst = d;
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return worst / std::max(scale, 1e-30);
}

class LatentRefinementTest : public BackendTest {};

TEST_P(LatentRefinementTest, RefinedCodesLowerTheLossAndEveryUseReadsThem) {
  const TrainedRun t = train_briefly(backend(), LossKind::hurdle_nb, Activation::identity);
  // Batches of 37 rows: the validation rows span several, the last one short.
  TrainedModel encoder_codes(backend(), t.run, t.parameters, 37);
  RunConfig refined_run = t.run;
  refined_run.latent_refinement = {30, 0.03};
  TrainedModel refined(backend(), refined_run, t.parameters, 37);

  const double before = encoder_codes.evaluate(t.validation, DecodeMode::mean).nll_bits_per_row;
  const double after = refined.evaluate(t.validation, DecodeMode::mean).nll_bits_per_row;
  std::printf("  hurdle_nb, 3 epochs: %.2f bits/row with the encoder's codes, %.2f refined\n",
              before, after);
  EXPECT_LT(after, 0.98 * before) << "30 steps must lower the validation rows' loss";

  const HostDense codes = refined.encode(t.validation);
  EXPECT_GT(largest_difference(codes.values, encoder_codes.encode(t.validation).values), 1e-3)
      << "refinement did not move the codes";
  // The outputs are the decoder's of the refined codes: decoding the codes encode returns gives
  // them back (the same float ops on the same codes).
  EXPECT_LE(largest_difference(refined.decode_outputs(codes).values,
                               refined.outputs(t.validation).values),
            1e-6);

  // 0 steps is the encoder's code, bit for bit.
  refined.set_latent_refinement({0, 0.03});
  EXPECT_EQ(refined.encode(t.validation).values, encoder_codes.encode(t.validation).values);
  EXPECT_EQ(refined.latent_refinement().steps, 0);
}

TEST_P(LatentRefinementTest, ReluCodesStayNonNegative) {
  const TrainedRun t = train_briefly(backend(), LossKind::mse, Activation::relu);
  RunConfig run = t.run;
  run.latent_refinement = {40, 0.1};
  TrainedModel refined(backend(), run, t.parameters);
  const HostDense codes = refined.encode(t.validation);
  EXPECT_GE(*std::min_element(codes.values.begin(), codes.values.end()), 0.0f);
  TrainedModel encoder_codes(backend(), t.run, t.parameters);
  EXPECT_LT(refined.evaluate(t.validation).mse, encoder_codes.evaluate(t.validation).mse);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LatentRefinementTest);

TEST(LatentRefinement, RefusedWhereCodesCannotMoveOrOutOfRange) {
  ModelConfig model;
  model.input_dim = 8;
  model.latent = 4;
  model.latent_activation = Activation::identity;
  const LatentRefinement some{5, 0.03};
  EXPECT_NO_THROW(check_latent_refinement(model, some));
  model.latent_activation = Activation::relu;
  EXPECT_NO_THROW(check_latent_refinement(model, some));

  ModelConfig quantised = model;
  quantised.latent_activation = Activation::identity;
  quantised.latent_prior = true;
  expect_error_containing([&] { check_latent_refinement(quantised, some); }, "quantised");
  ModelConfig topk = model;
  topk.latent_sparsity = LatentSparsity::topk;
  topk.latent_k = 2;
  expect_error_containing([&] { check_latent_refinement(topk, some); }, "dense codes");
  ModelConfig bounded = model;
  bounded.latent_activation = Activation::sigmoid;
  expect_error_containing([&] { check_latent_refinement(bounded, some); }, "sigmoid");
  // No steps: nothing to refuse.
  EXPECT_NO_THROW(check_latent_refinement(bounded, LatentRefinement{}));

  expect_error_containing([] { validate_latent_refinement({-1, 0.03}, "x"); }, "x: -1 refinement");
  expect_error_containing(
      [] {
        validate_latent_refinement({kMaxRefineSteps + 1, 0.03}, "x");
      },
      "from 0 to");
  expect_error_containing([] { validate_latent_refinement({5, 0.0}, "x"); }, "rate");
  EXPECT_NO_THROW(validate_latent_refinement({5, kMaxRefineRate}, "x"));
  expect_error_containing(
      [] {
        validate_latent_refinement({5, 1e30}, "x");
      },
      "x: refinement rate 1e+30 is not in (0, 10]");
  expect_error_containing(
      [] {
        validate_latent_refinement({5, std::numeric_limits<double>::quiet_NaN()}, "x");
      },
      "rate");
}

TEST(LatentRefinement, CheckpointKeyRoundTripsAndIsOptional) {
  RunConfig run;
  run.model.input_dim = 8;
  run.model.latent = 4;
  run.model.latent_activation = Activation::identity;
  EXPECT_EQ(run_config_to_json(run).find("latent_refinement"), std::string::npos)
      << "no key without refinement: older readers see the configuration they know";
  EXPECT_EQ(run_config_from_json(run_config_to_json(run), "c").latent_refinement.steps, 0);
  run.latent_refinement = {12, 0.05};
  const RunConfig back = run_config_from_json(run_config_to_json(run), "c");
  EXPECT_EQ(back.latent_refinement.steps, 12);
  EXPECT_DOUBLE_EQ(back.latent_refinement.rate, 0.05);

  std::string json = run_config_to_json(run);
  const std::size_t steps = json.find("12", json.find("latent_refinement"));
  ASSERT_NE(steps, std::string::npos);
  json.replace(steps, 2, "-3");
  expect_error_containing([&] { run_config_from_json(json, "c"); }, "c: latent_refinement");

  // A rate above kMaxRefineRate, which files written before that bound may hold, still loads;
  // a model refuses it until a rate given for the run replaces it.
  run.latent_refinement = {12, 20.0};
  const RunConfig fast = run_config_from_json(run_config_to_json(run), "c");
  EXPECT_DOUBLE_EQ(fast.latent_refinement.rate, 20.0);
  expect_error_containing([&] { validate_latent_refinement(fast.latent_refinement, "model"); },
                          "model: refinement rate 20 is not in (0, 10]");
}

}  // namespace
}  // namespace sparseae::test
