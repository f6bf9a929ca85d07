// Comparing losses and the HTML report: the per-column and per-row detail of the metrics on a
// case worked out by hand, compare_losses on tiny data (same split for every loss, the numbers a
// lone training run gives, its checks), and the report's shape, numbers, escaping and atomic
// write, with the image grid for square column counts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "report/html_report.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/compare.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/io.hpp"
#include "sparseae/metrics.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"

namespace sparseae {
namespace {

using test::contains;
using test::error_message;

namespace fs = std::filesystem;

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
    ++count;
  return count;
}

// rows x cols counts, about a third of them non-zero (1 to 4), from a fixed LCG.
HostCsr small_counts(std::int64_t rows, std::int64_t cols) {
  HostDense dense{rows, cols, std::vector<float>(static_cast<std::size_t>(rows * cols), 0.0f)};
  std::uint64_t state = 12345;
  for (float& v : dense.values) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const unsigned draw = static_cast<unsigned>(state >> 33);
    if (draw % 3 == 0) v = static_cast<float>(1 + (draw / 3) % 4);
  }
  return to_csr(dense);
}

// The mse case of metrics_test: targets and outputs round to
//   row 0: target [2, 0, 1, 0], counts [2, 0, 1, 1]: 1 wrong entry, |k - x| sum 1
//   row 1: target [0, 3, 0, 0], counts [0, 2, 0, 0]: 1 wrong entry, sum 1
//   row 2: target [0, 0, 0, 0], counts [0, 0, 0, 0]: exact
// Column non-zeros 1, 1, 1, 0, of which exact 1, 0, 1, 0.
TEST(ReconstructionDetail, PerColumnAndPerRowOnAHandCase) {
  const HostCsr target = to_csr(HostDense{3, 4, {2, 0, 1, 0, 0, 3, 0, 0, 0, 0, 0, 0}});
  const std::vector<float> outputs = {2.2f, 0.4f, 0.6f,  0.51f, -0.7f, 2.4f,
                                      0.2f, 0.0f, 0.49f, -3.0f, 0.1f,  0.3f};
  const auto check = [](const ReconstructionDetail& d) {
    EXPECT_EQ(d.column_nonzeros, (std::vector<std::int64_t>{1, 1, 1, 0}));
    EXPECT_EQ(d.column_exact_nonzeros, (std::vector<std::int64_t>{1, 0, 1, 0}));
    EXPECT_EQ(d.row_wrong_entries, (std::vector<std::int64_t>{1, 1, 0}));
    EXPECT_EQ(d.row_absolute_error, (std::vector<double>{1, 1, 0}));
  };
  MetricsAccumulator whole(LossKind::mse, 1.0f);
  whole.collect_detail();
  whole.add(ConstDenseView(outputs.data(), 3, 4), target.view());
  check(whole.detail());
  // In two batches: the same.
  MetricsAccumulator split(LossKind::mse, 1.0f);
  split.collect_detail();
  split.add(ConstDenseView(outputs.data(), 2, 4), select_rows(target, {0, 1}).view());
  split.add(ConstDenseView(outputs.data() + 8, 1, 4), select_rows(target, {2}).view());
  check(split.detail());
  // Not asked for: nothing collected.
  MetricsAccumulator plain(LossKind::mse, 1.0f);
  plain.add(ConstDenseView(outputs.data(), 3, 4), target.view());
  EXPECT_TRUE(plain.detail().column_nonzeros.empty());
  EXPECT_TRUE(plain.detail().row_wrong_entries.empty());
}

CompareConfig tiny_config() {
  CompareConfig config;
  config.model.hidden = {8};
  config.model.latent = 4;
  config.train.epochs = 2;
  config.train.batch_size = 16;
  config.train.val_fraction = 0.25;
  config.train.seed = 7;
  config.model.seed = 7;
  config.train.optimizer.learning_rate = 0.01f;
  config.losses = {LossKind::mse, LossKind::poisson, LossKind::bce};
  config.sample_rows = 3;
  return config;
}

// The detail agrees with the metrics it came with.
void expect_detail_matches(const ComparisonRow& row) {
  const ReconstructionDetail& d = row.detail;
  ASSERT_EQ(static_cast<std::int64_t>(d.row_wrong_entries.size()), row.metrics.rows);
  std::int64_t nonzeros = 0, exact = 0, exact_rows = 0;
  for (std::size_t c = 0; c < d.column_nonzeros.size(); ++c) {
    nonzeros += d.column_nonzeros[c];
    exact += d.column_exact_nonzeros[c];
  }
  for (std::int64_t wrong : d.row_wrong_entries) exact_rows += wrong == 0;
  EXPECT_DOUBLE_EQ(static_cast<double>(exact) / static_cast<double>(nonzeros),
                   row.metrics.nonzero_exact_fraction);
  EXPECT_DOUBLE_EQ(static_cast<double>(exact_rows) / static_cast<double>(row.metrics.rows),
                   row.metrics.row_exact_fraction);
}

TEST(CompareLosses, SameSplitEveryLossAndTheNumbersOfALoneRun) {
  const HostCsr data = small_counts(120, 16);
  const auto backend = make_backend(BackendChoice::cpu);
  const CompareConfig config = tiny_config();
  std::vector<std::string> started;
  std::size_t epochs_seen = 0;
  CompareObserver observer;
  observer.on_loss_start = [&](LossKind loss, std::size_t, std::size_t count) {
    EXPECT_EQ(count, 3u);
    started.push_back(loss_name(loss));
  };
  observer.train.on_epoch = [&](const EpochReport&) { ++epochs_seen; };
  const std::vector<ComparisonRow> rows = compare_losses(*backend, data, config, observer);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(started, (std::vector<std::string>{"mse", "poisson", "bce"}));
  EXPECT_EQ(epochs_seen, 6u);

  const HostCsr validation = comparison_validation_rows(data, config);
  EXPECT_EQ(validation.rows, 30);
  for (const ComparisonRow& row : rows) {
    SCOPED_TRACE(loss_name(row.loss));
    EXPECT_EQ(row.metrics.rows, validation.rows) << "every loss on the same validation rows";
    EXPECT_EQ(row.epochs.size(), 2u);
    EXPECT_GT(row.seconds, 0.0);
    EXPECT_GT(row.samples_per_second, 0.0);
    EXPECT_EQ(row.sample_counts.rows, 3);
    EXPECT_EQ(row.sample_counts.cols, 16);
    EXPECT_EQ(row.decode, default_decode(row.loss));
    expect_detail_matches(row);
  }
  EXPECT_EQ(rows[0].scale, ScaleMode::none);
  EXPECT_EQ(rows[1].scale, ScaleMode::none);
  EXPECT_EQ(rows[2].scale, ScaleMode::max) << "bce trains on counts scaled to [0, 1]";
  EXPECT_TRUE(std::isnan(rows[0].metrics.nll_bits_per_row));
  EXPECT_TRUE(std::isfinite(rows[1].metrics.nll_bits_per_row));

  // The poisson row is what training poisson alone with the same settings gives, keeping its
  // parameters of the best validation exact F1.
  RunConfig run;
  run.model = config.model;
  run.model.input_dim = 16;
  run.train = config.train;
  run.train.loss = LossKind::poisson;
  Trainer trainer(*backend, run.model, run.train, data);
  TrainObserver select_by_f1;
  select_by_f1.validation_score =
      validation_exact_f1_score(*backend, trainer, run, default_decode(LossKind::poisson));
  trainer.train(select_by_f1);
  TrainedModel model = finished_model(*backend, trainer, run);
  EXPECT_EQ(model.evaluate(validation).to_json(), rows[1].metrics.to_json());
  EXPECT_DOUBLE_EQ(trainer.validation_loss(), rows[1].validation_loss);
  // And its samples are the first validation rows, decoded.
  std::vector<std::int64_t> first{0, 1, 2};
  const HostCsr expected = model.to_counts(model.reconstruct(select_rows(validation, first)));
  EXPECT_EQ(expected.col_indices, rows[1].sample_counts.col_indices);
  EXPECT_EQ(expected.values, rows[1].sample_counts.values);
}

// A loss that diverges is named with its reason and the comparison goes on: on heavy-tailed
// counts read raw, poisson's rates run away while mse trains.
TEST(CompareLosses, ALossThatDivergesIsNamedAndTheOthersGoOn) {
  const HostCsr data = test::heavy_tailed_counts();
  const auto backend = make_backend(BackendChoice::cpu);
  CompareConfig config;
  config.model.hidden = {64};
  config.model.latent = 8;
  config.train.epochs = 3;
  config.train.batch_size = 64;
  config.train.input_transform = InputTransform::none;
  config.losses = {LossKind::poisson, LossKind::mse};
  const std::vector<ComparisonRow> rows = compare_losses(*backend, data, config);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].failure.rfind("training diverged: ", 0), 0u) << rows[0].failure;
  EXPECT_EQ(rows[0].metrics.rows, 0);
  EXPECT_TRUE(rows[1].failure.empty()) << rows[1].failure;
  EXPECT_EQ(rows[1].metrics.rows, 300);
  EXPECT_EQ(rows[1].epochs.size(), 3u);
}

TEST(CompareLosses, ChecksBeforeTraining) {
  const HostCsr data = small_counts(40, 16);
  const auto backend = make_backend(BackendChoice::cpu);
  CompareConfig config = tiny_config();
  config.losses = {};
  EXPECT_TRUE(
      contains(error_message([&] { compare_losses(*backend, data, config); }), "no losses"));
  config.losses = {LossKind::mse, LossKind::huber, LossKind::mse};
  EXPECT_EQ(error_message([&] { compare_losses(*backend, data, config); }),
            "compare: the loss mse is listed twice");
  config.losses = {LossKind::poisson, LossKind::mse};
  config.decode = DecodeMode::mode;
  EXPECT_TRUE(contains(error_message([&] { compare_losses(*backend, data, config); }),
                       "--decode mode needs a count likelihood"));
  config.decode = DecodeMode::round;  // every loss can round
  config.train.epochs = 1;
  const std::vector<ComparisonRow> rows = compare_losses(*backend, data, config);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].decode, DecodeMode::round);
  EXPECT_EQ(rows[0].metrics.decode, DecodeMode::round);
}

report::HtmlReport report_of(const HostCsr& data, const CompareConfig& config,
                             const std::vector<ComparisonRow>& rows) {
  report::HtmlReport html;
  html.title = "losses <on> \"tiny\" & 'data'";
  html.facts = {{"data", "120 rows x 16 columns"}};
  html.runs = rows;
  const HostCsr validation = comparison_validation_rows(data, config);
  html.sample_originals = select_rows(validation, {0, 1, 2});
  return html;
}

// Every chart's axis labels are round: evenly spaced by 1, 2 or 5 times a power of ten.
void expect_round_ticks(const std::string& html) {
  const std::string label_start = "text-anchor=\"end\">";
  std::size_t chart = html.find("<svg class=\"chart\"");
  while (chart != std::string::npos) {
    const std::size_t end = html.find("</svg>", chart);
    std::vector<double> labels;
    for (std::size_t at = html.find(label_start, chart); at < end;
         at = html.find(label_start, at + 1))
      labels.push_back(std::stod(html.substr(at + label_start.size())));
    ASSERT_GE(labels.size(), 2u) << html.substr(chart, 200);
    const double step = labels[0] - labels[1];
    const double power = std::pow(10.0, std::floor(std::log10(std::fabs(step)) + 1e-9));
    const double mantissa = std::fabs(step) / power;
    EXPECT_TRUE(std::fabs(mantissa - 1) < 1e-6 || std::fabs(mantissa - 2) < 1e-6 ||
                std::fabs(mantissa - 5) < 1e-6)
        << "step " << step;
    for (std::size_t i = 1; i < labels.size(); ++i)
      EXPECT_NEAR(labels[i - 1] - labels[i], step, 1e-9 * std::fabs(step) + 1e-12);
    for (const double label : labels)
      EXPECT_NEAR(label / std::fabs(step), std::round(label / std::fabs(step)), 1e-6);
    chart = html.find("<svg class=\"chart\"", end);
  }
}

TEST(HtmlReport, ChartsTableNumbersEscapingAndTheImageGrid) {
  const HostCsr data = small_counts(120, 16);
  const auto backend = make_backend(BackendChoice::cpu);
  const CompareConfig config = tiny_config();
  const std::vector<ComparisonRow> rows = compare_losses(*backend, data, config);
  const std::string html = report::render_html_report(report_of(data, config, rows));

  EXPECT_EQ(html.rfind("<!DOCTYPE html>\n", 0), 0u);
  EXPECT_TRUE(contains(html, "</html>"));
  // A training-curve chart per loss, exactness per column, the row histogram, the latents'
  // firing frequencies (a point per latent of each run), a latent scatter per loss and the grid.
  EXPECT_EQ(occurrences(html, "<svg"), 2 * rows.size() + 4);
  EXPECT_EQ(occurrences(html, "</svg>"), 2 * rows.size() + 4);
  EXPECT_TRUE(contains(html, "aria-label=\"latent firing frequencies\""));
  for (const ComparisonRow& row : rows) {
    EXPECT_EQ(row.detail.latent_firing.size(), static_cast<std::size_t>(config.model.latent));
    // The scatter draws every validation row's code (fewer than kLatentSampleRows here).
    EXPECT_EQ(row.detail.latent_sample_totals.size(), static_cast<std::size_t>(row.metrics.rows));
    EXPECT_EQ(row.detail.latent_sample.size(),
              static_cast<std::size_t>(row.metrics.rows * config.model.latent));
    EXPECT_TRUE(contains(html, "aria-label=\"latent codes of " + std::string(loss_name(row.loss))));
    // The confusion table holds every validation entry once; its diagonal past the zeros holds
    // the exact non-zeros of counts 1 to 3.
    ASSERT_EQ(row.detail.count_confusion.size(),
              static_cast<std::size_t>(kCountClasses * kCountClasses));
    std::int64_t entries = 0;
    for (const std::int64_t cell : row.detail.count_confusion) entries += cell;
    EXPECT_EQ(entries, row.metrics.rows * data.cols);
    EXPECT_TRUE(row.threshold_scores.empty()) << "no hurdle run here";
  }
  EXPECT_EQ(occurrences(html, "<table class=\"confusion\">"), rows.size());
  EXPECT_FALSE(contains(html, "Hurdle threshold"));
  expect_round_ticks(html);
  EXPECT_TRUE(contains(html, "aria-label=\"originals and reconstructions\""));
  EXPECT_FALSE(contains(html, "http")) << "no external references";
  EXPECT_FALSE(contains(html, "<script"));
  EXPECT_FALSE(contains(html, "<img"));
  // Text is escaped.
  EXPECT_TRUE(contains(html, "<h1>losses &lt;on&gt; &quot;tiny&quot; &amp; &#39;data&#39;</h1>"));
  EXPECT_FALSE(contains(html, "<on>"));
  // A table row per loss, with the metrics' numbers.
  for (const ComparisonRow& row : rows) {
    char cells[256];
    std::snprintf(cells, sizeof cells,
                  "<td>%s</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td>",
                  decode_mode_name(row.decode), 100 * row.metrics.exact_f1,
                  100 * row.metrics.exact_precision, 100 * row.metrics.nonzero_exact_fraction,
                  100 * row.metrics.row_exact_fraction);
    const std::string name =
        std::string(loss_name(row.loss)) + (row.scale == ScaleMode::max ? " (scale max)" : "");
    EXPECT_TRUE(contains(html, "<tr><th scope=\"row\">" + name + "</th>" + cells)) << name;
    char mse[64];
    std::snprintf(mse, sizeof mse, "<td>%.4g</td>", row.metrics.mse);
    EXPECT_TRUE(contains(html, mse)) << name;
  }
  // In the second metrics table too, and a row per count class in each run's confusion table.
  EXPECT_EQ(occurrences(html, "<tr><th scope=\"row\">"), rows.size() * (2 + kCountClasses));

  // 512 columns are no image: no grid.
  report::HtmlReport wide = report_of(data, config, rows);
  wide.sample_originals.cols = 512;
  EXPECT_EQ(occurrences(report::render_html_report(wide), "<svg"), 2 * rows.size() + 3);
  EXPECT_EQ(report::image_side(784), 28);
  EXPECT_EQ(report::image_side(16), 4);
  EXPECT_EQ(report::image_side(512), 0);
  EXPECT_EQ(report::image_side(1), 0);
}

TEST(HtmlReport, AHurdleRunShowsItsThresholdCurve) {
  const HostCsr data = small_counts(120, 16);
  const auto backend = make_backend(BackendChoice::cpu);
  CompareConfig config = tiny_config();
  config.losses = {LossKind::hurdle};
  const std::vector<ComparisonRow> rows = compare_losses(*backend, data, config);
  ASSERT_EQ(rows.size(), 1u);
  const ComparisonRow& run = rows[0];
  ASSERT_GE(run.threshold_scores.size(), 2u);
  // The chosen threshold is one of the grid's and no other scores higher.
  double best = -1;
  bool chosen_on_grid = false;
  for (const ThresholdScore& score : run.threshold_scores) {
    best = std::max(best, score.exact_f1);
    chosen_on_grid |= score.threshold == run.hurdle_threshold;
    EXPECT_GE(score.exact_precision, 0.0);
    EXPECT_LE(score.exact_recall, 1.0);
  }
  EXPECT_TRUE(chosen_on_grid) << run.hurdle_threshold;
  for (const ThresholdScore& score : run.threshold_scores) {
    if (score.threshold == run.hurdle_threshold) {
      EXPECT_EQ(score.exact_f1, best);
    }
  }
  const std::string html = report::render_html_report(report_of(data, config, rows));
  EXPECT_TRUE(contains(html, "<h2>Hurdle threshold</h2>"));
  EXPECT_TRUE(contains(html, "aria-label=\"hurdle threshold of hurdle\""));
  expect_round_ticks(html);
}

TEST(HtmlReport, WritesAtomically) {
  const HostCsr data = small_counts(60, 16);
  const auto backend = make_backend(BackendChoice::cpu);
  CompareConfig config = tiny_config();
  config.losses = {LossKind::mse};
  config.train.epochs = 1;
  const std::vector<ComparisonRow> rows = compare_losses(*backend, data, config);
  const report::HtmlReport html = report_of(data, config, rows);
  const fs::path dir = fs::temp_directory_path() / ("sparseae-report-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path path = dir / "r.html";
  report::write_html_report(path.string(), html);
  std::ifstream in(path, std::ios::binary);
  const std::string written{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(written, report::render_html_report(html));
  // Into a directory that does not exist: an error, and nothing left behind.
  EXPECT_THROW(report::write_html_report((dir / "missing" / "r.html").string(), html), Error);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sparseae
