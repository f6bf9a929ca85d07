// sae encode, decode and eval: use a trained model (a checkpoint) on counts or codes.
#include <cstdint>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/data_source.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/io.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::cli {

namespace {

Options model_options(const std::string& command, const std::string& summary) {
  Options o(command, summary);
  o.value("model", "PATH", "", "checkpoint written by sae train (required)")
      .suggests("checkpoint", "model")
      .value("backend", "auto|cpu|cuda", "auto", "where to run")
      .value("batch", "N", "4096", "rows per batch");
  add_refinement_options(o, true);
  add_quiet_option(o);
  return o;
}

// --decode's default in sae decode and eval.
constexpr const char* kStoredDecode =
    "the decode the checkpoint stores, the one sae train reported with; without one, mean for "
    "count likelihoods, round otherwise";

// The model at path, refining its codes as --refine-steps and --refine-rate ask (the checkpoint's
// refinement by default).
TrainedModel open_model(const Options& o, const std::string& path, std::int64_t batch,
                        Backend& backend, Checkpoint& checkpoint) {
  checkpoint = load_checkpoint(path);
  checkpoint.config.latent_refinement = refinement_option(o, checkpoint.config.latent_refinement);
  return TrainedModel(backend, checkpoint.config, checkpoint.state.parameters, batch);
}

// The counts at path, which must have the columns the model reads.
Counts model_counts(const Options& o, const Checkpoint& checkpoint, const std::string& path) {
  Counts counts = load_counts(path, 0, data_orientation(o));
  require_model_columns(counts, checkpoint.config.model.input_dim, o.text("model"));
  return counts;
}

// The codes at path, which must have the model's latent width.
HostDense model_codes(const Options& o, const Checkpoint& checkpoint, const std::string& path) {
  HostDense codes = read_npy(path, NpyValues::finite);
  require(codes.cols == checkpoint.config.model.latent,
          path + ": " + std::to_string(codes.cols) + " columns, the model in " + o.text("model") +
              " has " + std::to_string(checkpoint.config.model.latent) + " latent columns");
  return codes;
}

}  // namespace

int run_encode(const Args& args) {
  Options o = model_options("sae encode", "Writes the latent code of every row of --data.");
  o.value("data", "PATH", "",
          "counts: .mtx, .mtx.gz, .npz (scipy.sparse), .h5ad (AnnData X), .npy or .csv (required)")
      .value("out", "PATH", "",
             "latent codes: .npy or .npz (float32), .csv, or .h5ad (obsm['X_sparseae']) "
             "(required)");
  add_transpose_option(o);
  if (!o.parse(args)) return 0;
  // Every usage error comes before the backend opens.
  const std::string model_path = o.required("model");
  const std::int64_t batch = o.integer("batch");
  const std::string data_path = o.required("data");
  const std::string out = o.required("out");
  const MatrixFormat format = *output_option_format(o, "sae encode", "out", kCodeFormats);
  const auto backend = open_backend(o);
  Checkpoint checkpoint;
  TrainedModel model = open_model(o, model_path, batch, *backend, checkpoint);
  const Counts counts = model_counts(o, checkpoint, data_path);
  write_values(out, format, model.encode(counts.matrix));
  return 0;
}

int run_decode(const Args& args) {
  Options o = model_options(
      "sae decode",
      "Reconstructs counts from codes (--latents) or from counts (--data, a round trip).");
  o.value("latents", "PATH", "", "latent codes (.npy), as written by sae encode")
      .value("data", "PATH", "", "counts to encode and reconstruct")
      .value("out", "PATH", "",
             ".mtx, .npz (scipy.sparse), .h5ad (AnnData X) or .csv decoded counts, or .npy "
             "values (required)");
  add_decode_option(o, " in .mtx and .csv", kStoredDecode);
  add_transpose_option(o);
  if (!o.parse(args)) return 0;
  if (o.given("latents") == o.given("data"))
    throw UsageError("sae decode: give exactly one of --latents, --data");
  const std::string model_path = o.required("model");
  const std::int64_t batch = o.integer("batch");
  const std::string out = o.required("out");
  const MatrixFormat format = *output_option_format(o, "sae decode", "out", kReconstructionFormats);
  const auto backend = open_backend(o);
  Checkpoint checkpoint;
  TrainedModel model = open_model(o, model_path, batch, *backend, checkpoint);
  const DecodeMode decode =
      decode_option(o, checkpoint.config.train.loss).value_or(model.default_decode());
  if (o.given("latents")) {
    write_reconstruction(out, format, model,
                         model.decode_outputs(model_codes(o, checkpoint, o.text("latents"))),
                         decode);
  } else {
    write_reconstruction(out, format, model,
                         model.outputs(model_counts(o, checkpoint, o.text("data")).matrix), decode);
  }
  return 0;
}

int run_eval(const Args& args) {
  Options o = model_options(
      "sae eval",
      "Prints how exactly the model reproduces counts: every row of --data, or without it the\n"
      "validation rows of the data the model was trained on.");
  o.value("data", "PATH", "", "counts to evaluate on").flag("json", "print JSON");
  add_decode_option(o, "", kStoredDecode);
  add_transpose_option(o);
  if (!o.parse(args)) return 0;
  const std::string model_path = o.required("model");
  const std::int64_t batch = o.integer("batch");
  const auto backend = open_backend(o);
  Checkpoint checkpoint;
  TrainedModel model = open_model(o, model_path, batch, *backend, checkpoint);
  const DecodeMode decode =
      decode_option(o, checkpoint.config.train.loss).value_or(model.default_decode());
  if (o.given("data")) {
    const Counts counts = model_counts(o, checkpoint, o.text("data"));
    print_metrics(o.text("data"), model.evaluate(counts.matrix, decode), o.flag_set("json"));
    return 0;
  }
  const Counts counts = load_counts_from_checkpoint(checkpoint.config, model_path);
  const TrainConfig& train = checkpoint.config.train;
  const auto split = split_rows(counts.matrix.rows, train.val_fraction, train.seed);
  print_metrics("validation rows of " + counts.source,
                model.evaluate(select_rows(counts.matrix, split.second), decode),
                o.flag_set("json"));
  return 0;
}

}  // namespace sparseae::cli
