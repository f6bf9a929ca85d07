// sae pca: fit the PCA baseline on the training rows and report it as sae eval reports a model.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>

#include "cli/commands.hpp"
#include "cli/data_source.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "core/json.hpp"
#include "metrics/metrics_json.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/io.hpp"
#include "sparseae/pca.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::cli {

namespace {

Options pca_options() {
  Options o("sae pca",
            "Fits PCA on the training rows of a count matrix (default: the embedded dataset) and\n"
            "prints how exactly it reproduces the validation rows, as sae eval does for a model.\n"
            "The model file it writes is a checkpoint that sae encode, decode and eval accept.");
  add_data_options(o);
  o.value("k", "N", "32", "principal components (the code width)")
      .value("solver", "auto|covariance|randomized", "auto",
             "covariance: eigen-decomposition of the D x D covariance; randomized: a randomized "
             "range finder; auto: covariance up to " +
                 std::to_string(kRandomizedPcaMaxCovarianceColumns) + " columns")
      .value("backend", "auto|cpu|cuda", "auto", "where to fit")
      .value("val-frac", "F", "0.1",
             "fraction of rows held out and measured (sae train's split for the same --seed); "
             "0 fits and measures every row")
      .value("seed", "N", "1", "seed of the split and of the randomized solver")
      .value("block", "N", "4096", "rows multiplied per backend call")
      .value("latents", "PATH", "",
             "write every row's code (.npy or .npz float32, .csv, or .h5ad obsm)")
      .value("reconstruction", "PATH", "",
             "write every row's reconstruction (.mtx, .npz, .h5ad or .csv counts, rounded and "
             "clipped at "
             "zero; "
             ".npy values)")
      .flag("json", "print the report as JSON");
  add_model_file_options(o, "sae-pca.ckpt", "model file");
  add_quiet_option(o);
  return o;
}

void save_pca(const std::string& path, const RunConfig& run, const std::vector<float>& parameters) {
  save_checkpoint(path, pca_checkpoint(run, parameters));
}

}  // namespace

int run_pca(const Args& args) {
  Options o = pca_options();
  if (!o.parse(args)) return 0;
  // Every option is checked before the data is read.
  const auto latents_format = output_option_format(o, "sae pca", "latents", kCodeFormats);
  const auto reconstruction_format =
      output_option_format(o, "sae pca", "reconstruction", kReconstructionFormats);
  PcaConfig config;
  config.components = o.integer("k");
  config.solver = parse_pca_solver(o.text("solver"));
  config.block_rows = o.integer("block");
  config.seed = static_cast<std::uint64_t>(o.integer("seed"));
  const double val_fraction = o.real("val-frac");
  require(config.components >= 1, "sae pca: --k must be positive");
  require(config.block_rows >= 1, "sae pca: --block must be positive");
  require(val_fraction >= 0 && val_fraction < 1, "sae pca: --val-frac must lie in [0, 1)");
  refuse_unasked_overwrite(o, "sae pca");
  const auto backend = open_backend(o);
  const Counts counts = load_counts(o);
  const bool quiet = o.flag_set("quiet");
  if (!quiet) std::cerr << describe(counts) << "\n";
  require_trainable_rows(counts);
  require(config.components <= counts.matrix.cols,
          "sae pca: --k " + std::to_string(config.components) + " exceeds the data's " +
              std::to_string(counts.matrix.cols) + " columns");

  auto [training, validation] = split_rows(counts.matrix.rows, val_fraction, config.seed);
  const bool measure_all = validation.empty();
  if (measure_all) {
    validation.resize(static_cast<std::size_t>(counts.matrix.rows));
    std::iota(validation.begin(), validation.end(), std::int64_t{0});
  }
  const auto start = std::chrono::steady_clock::now();
  const PcaModel pca = counts.dense
                           ? fit_pca(*backend, select_rows(counts.dense_matrix, training), config)
                           : fit_pca(*backend, select_rows(counts.matrix, training), config);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::vector<double> ratios = pca.explained_variance_ratio();
  const double explained = std::accumulate(ratios.begin(), ratios.end(), 0.0);
  if (!quiet)
    std::fprintf(stderr,
                 "pca: %lld components (%s solver, backend %s) fitted on %lld rows in %.3f s, "
                 "explaining %.2f %% of their variance\n",
                 static_cast<long long>(pca.component_count()), pca_solver_name(pca.solver),
                 backend_name(backend->kind()), static_cast<long long>(pca.rows), seconds,
                 100.0 * explained);

  const std::string checkpoint = o.text("out");
  RunConfig run = pca_run_config(pca, counts.recorded_source, val_fraction, config.seed);
  run.data_source_relative_to_checkpoint = source_relative_to_checkpoint(counts, checkpoint);
  const std::vector<float> parameters = pca_parameters(pca);
  if (!checkpoint.empty()) save_pca(checkpoint, run, parameters);
  TrainedModel model(*backend, run, parameters);
  const ReconstructionMetrics metrics =
      model.evaluate(select_rows(counts.matrix, validation), DecodeMode::round);
  const std::string title = (measure_all ? "every row of " : "validation rows of ") + counts.source;
  if (o.flag_set("json")) {
    Json report = Json::object();
    report.set("components", Json::integer(pca.component_count()))
        .set("solver", Json::string(pca_solver_name(pca.solver)))
        .set("backend", Json::string(backend_name(backend->kind())))
        .set("fitted_rows", Json::integer(pca.rows))
        .set("seconds", Json::number_significant(seconds, 6))
        .set("explained_variance_ratio", Json::number_significant(explained, 9))
        .set("validation", metrics_json(metrics));
    std::printf("%s\n", report.dump().c_str());
  } else {
    print_metrics(title, metrics, false);
  }

  if (latents_format)
    write_values(o.text("latents"), *latents_format,
                 counts.dense ? model.encode(counts.dense_matrix) : model.encode(counts.matrix));
  if (reconstruction_format)
    write_reconstruction(
        o.text("reconstruction"), *reconstruction_format, model,
        counts.dense ? model.outputs(counts.dense_matrix) : model.outputs(counts.matrix),
        DecodeMode::round);
  return 0;
}

}  // namespace sparseae::cli
