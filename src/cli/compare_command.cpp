// sae compare: train several losses on the same data and split, and print one table.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/data_source.hpp"
#include "cli/html_output.hpp"
#include "cli/options.hpp"
#include "cli/progress.hpp"
#include "cli/report.hpp"
#include "metrics/metrics_json.hpp"
#include "sparseae/compare.hpp"
#include "sparseae/error.hpp"
#include "sparseae/network.hpp"
#include "sparseae/pca.hpp"

namespace sparseae::cli {

namespace {

Options compare_options() {
  Options o(
      "sae compare",
      "Trains several losses on the same data, split, model widths, optimizer and seed,\n"
      "and prints one table of the exact-reconstruction metrics on the validation rows, a\n"
      "row per loss. bce is trained with --scale max (its targets must lie in [0, 1]), every\n"
      "other loss on the raw counts. The output activation is identity for every loss.");
  add_data_options(o);
  add_training_options(o, "epochs per loss");
  o.value("losses", "L,L,...", "mse,poisson,weighted_mse,huber",
          "losses to compare (any of sae train's --loss; bce trains with scale max)")
      .value("report", "PATH", "",
             "also write a self-contained HTML report (metrics, training curves, exactness per "
             "column, wrong entries per row, and images for square column counts)")
      .flag("json", "print the table as JSON");
  add_quiet_option(o);
  add_pca_option(o);
  add_count_model_options(o);
  o.value("decode", "round|mode|mean", "",
          "how outputs become counts, for every loss (each must accept it; default: each loss's "
          "own, mean for poisson and round otherwise)");
  return o;
}

std::vector<LossKind> parse_losses(const std::string& list) {
  std::vector<LossKind> losses;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    const std::string name = list.substr(start, comma - start);
    require(!name.empty(),
            "sae compare: --losses: '" + list + "' is not a comma-separated list of losses");
    losses.push_back(parse_loss(name));
    start = comma + 1;
  }
  return losses;
}

CompareConfig config_from(const Options& o) {
  CompareConfig c;
  c.model.hidden = o.integer_list("hidden");
  c.model.latent = o.integer("latent");
  c.train.epochs = static_cast<int>(o.integer("epochs"));
  c.train.batch_size = o.integer("batch");
  c.train.optimizer.learning_rate = static_cast<float>(o.real("lr"));
  c.train.optimizer.max_grad_norm = static_cast<float>(o.real("clip-norm"));
  c.train.seed = static_cast<std::uint64_t>(o.integer("seed"));
  c.model.seed = c.train.seed;
  c.train.val_fraction = o.real("val-frac");
  apply_count_model_options(o, c.train);
  c.losses = parse_losses(o.text("losses"));
  if (o.given("decode")) c.decode = parse_decode_mode(o.text("decode"));
  require(c.model.latent > 0, "sae compare: --latent must be positive");
  require(c.train.epochs >= 0, "sae compare: --epochs must not be negative");
  require(c.train.batch_size > 0, "sae compare: --batch must be positive");
  require(c.train.val_fraction > 0 && c.train.val_fraction < 1,
          "sae compare: --val-frac must lie in (0, 1): the losses are compared on validation rows");
  c.sample_rows = o.given("report") ? kReportSampleRows : 0;
  validate_compare_config(c);
  return c;
}

std::string cell(const char* format, double value) {
  if (!std::isfinite(value)) return "-";
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

void print_table(const std::vector<ComparisonRow>& rows, std::int64_t validation_rows) {
  std::printf("validation rows (%lld), one row per loss:\n",
              static_cast<long long>(validation_rows));
  std::printf("%-18s %-6s %8s %8s %8s %8s %7s %7s %7s %9s %10s %9s %10s %10s %8s %10s\n", "loss",
              "decode", "exact F1", "exact P", "nz exact", "rows", "supp P", "supp R", "supp F1",
              "nz mae", "mse", "expl var", "deviance", "nll b/row", "seconds", "samples/s");
  for (const ComparisonRow& r : rows) {
    const ReconstructionMetrics& m = r.metrics;
    const std::string name =
        r.pca ? "pca"
              : std::string(loss_name(r.loss)) + (r.scale == ScaleMode::max ? " (scale max)" : "");
    if (!r.failure.empty()) {
      std::printf("%-18s %-6s failed: %s\n", name.c_str(), decode_mode_name(r.decode),
                  r.failure.c_str());
      continue;
    }
    std::printf("%-18s %-6s %7s%% %7s%% %7s%% %7s%% %6s%% %6s%% %6s%% %9s %10s %9s %10s %10s %8s %10s\n",
                name.c_str(), decode_mode_name(r.decode), cell("%.2f", 100 * m.exact_f1).c_str(),
                cell("%.2f", 100 * m.exact_precision).c_str(),
                cell("%.2f", 100 * m.nonzero_exact_fraction).c_str(),
                cell("%.2f", 100 * m.row_exact_fraction).c_str(),
                cell("%.2f", 100 * m.support_precision).c_str(),
                cell("%.2f", 100 * m.support_recall).c_str(),
                cell("%.2f", 100 * m.support_f1).c_str(), cell("%.4g", m.nonzero_mae).c_str(),
                cell("%.4g", m.mse).c_str(), cell("%.4g", m.explained_variance).c_str(),
                cell("%.4g", m.poisson_deviance).c_str(), cell("%.4g", m.nll_bits_per_row).c_str(),
                cell("%.2f", r.seconds).c_str(), cell("%.0f", r.samples_per_second).c_str());
  }
}

// The PCA row, when there is one, follows the losses as "pca".
void print_json(const std::string& backend, const std::vector<ComparisonRow>& rows,
                std::int64_t pca_components) {
  std::vector<Json> losses;
  const ComparisonRow* pca = nullptr;
  for (const ComparisonRow& r : rows) {
    if (r.pca) {
      pca = &r;
      continue;
    }
    Json loss = Json::object();
    loss.set("loss", Json::string(loss_name(r.loss)))
        .set("scale", Json::string(scale_mode_name(r.scale)));
    if (!r.failure.empty()) {
      losses.push_back(std::move(loss.set("failure", Json::string(r.failure))));
      continue;
    }
    loss
        .set("epochs", Json::integer(static_cast<std::int64_t>(r.epochs.size())))
        .set("seconds", Json::number_significant(r.seconds, 6))
        .set("median_samples_per_second", Json::number_significant(r.samples_per_second, 6))
        .set("train_loss",
             Json::number_significant(r.epochs.empty() ? 0.0 : r.epochs.back().train_loss, 9))
        .set("validation_loss", Json::number_significant(r.validation_loss, 9))
        .set("validation", metrics_json(r.metrics));
    if (has_support_head(r.loss))
      loss.set("hurdle_threshold", hurdle_threshold_json(r.hurdle_threshold));
    losses.push_back(std::move(loss));
  }
  Json json = Json::object();
  json.set("backend", Json::string(backend)).set("losses", Json::array(std::move(losses)));
  if (pca != nullptr) json.set("pca", pca_json(*pca, pca_components));
  std::printf("%s\n", json.dump().c_str());
}

}  // namespace

int run_compare(const Args& args) {
  Options o = compare_options();
  if (!o.parse(args)) return 0;
  // Every option is checked before the data is read.
  CompareConfig config = config_from(o);
  const auto backend = open_backend(o);
  const Counts counts = load_counts(o);
  const bool quiet = o.flag_set("quiet");
  if (!quiet) std::cerr << describe(counts) << "\n";
  require_trainable_rows(counts);
  config.model.input_dim = counts.matrix.cols;
  if (!quiet)
    std::cerr << "model: " << ModelLayout(config.model).describe() << "\nbackend "
              << backend_name(backend->kind()) << ": " << backend->description() << "\n";

  std::unique_ptr<Progress> progress;
  CompareObserver observer;
  observer.on_loss_start = [&](LossKind loss, std::size_t index, std::size_t count) {
    if (!quiet)
      std::cerr << "[" << index + 1 << "/" << count << "] loss " << loss_name(loss) << "\n";
    progress = std::make_unique<Progress>(!quiet && isatty(STDERR_FILENO), config.train.epochs);
  };
  observer.train.on_step = [&](int epoch, std::int64_t step, std::int64_t steps, double rate,
                               double loss) { progress->step(epoch, step, steps, rate, loss); };
  observer.train.on_epoch = [&](const EpochReport& report) {
    if (!quiet) progress->epoch(report);
  };
  std::vector<ComparisonRow> rows = compare_losses(*backend, counts.matrix, config, observer);
  // The validation rows: those of a loss that trained (a failed one measured none).
  std::int64_t validation_rows = 0;
  for (const ComparisonRow& r : rows) validation_rows = std::max(validation_rows, r.metrics.rows);
  // PCA with the latent width on the same validation rows, unless turned off or impossible.
  if (!o.flag_set("no-pca") && validation_rows > 0 && config.model.latent <= counts.matrix.cols) {
    if (!quiet) std::cerr << "pca: " << config.model.latent << " components\n";
    rows.push_back(pca_baseline(*backend, counts.matrix, config.model.latent,
                                config.train.val_fraction, config.train.seed, config.sample_rows));
  }

  if (o.flag_set("json"))
    print_json(backend_name(backend->kind()), rows, config.model.latent);
  else
    print_table(rows, validation_rows);
  require(std::any_of(rows.begin(), rows.end(),
                      [](const ComparisonRow& r) { return r.failure.empty(); }) ||
              rows.empty(),
          "sae compare: no loss trained (the table names each one's failure)");

  if (o.given("report")) {
    const std::vector<std::pair<std::string, std::string>> facts = {
        {"model", ModelLayout(config.model).describe()},
        {"backend", backend->description()},
        {"training", std::to_string(config.train.epochs) + " epochs, batch " +
                         std::to_string(config.train.batch_size) + ", lr " +
                         cell("%g", config.train.optimizer.learning_rate) + ", seed " +
                         std::to_string(config.train.seed)},
        {"validation rows", std::to_string(validation_rows)}};
    // The report charts what each loss reproduced: a failed loss, named in the table printed
    // above, has nothing to chart.
    std::vector<ComparisonRow> trained;
    for (ComparisonRow& r : rows)
      if (r.failure.empty()) trained.push_back(std::move(r));
    write_run_report(
        o.text("report"), "sae compare", args, counts, facts, trained,
        first_rows(comparison_validation_rows(counts.matrix, config), config.sample_rows), {},
        quiet);
  }
  return 0;
}

}  // namespace sparseae::cli
