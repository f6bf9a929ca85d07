// sae encode, decode and eval: use a trained model (a checkpoint) on counts or codes.
#include <cstdint>
#include <iostream>
#include <optional>
#include <utility>

#include "cli/commands.hpp"
#include "cli/data_source.hpp"
#include "cli/options.hpp"
#include "cli/report.hpp"
#include "core/number_text.hpp"
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

// The checkpoint --model names and the refinement this run gives its codes: --refine-steps and
// --refine-rate, the checkpoint's by default. Read before the backend opens, so that their
// usage errors come first.
struct ModelFile {
  std::string path;
  Checkpoint checkpoint;  // as stored
  LatentRefinement refinement;
  // Its validation rows and where they come from, once read (validation_rows).
  std::optional<std::pair<std::string, HostCsr>> validation;
};

ModelFile read_model_file(const Options& o) {
  ModelFile file;
  file.path = o.required("model");
  file.checkpoint = load_checkpoint(file.path);
  file.refinement = refinement_option(o, file.checkpoint.config.latent_refinement);
  check_latent_refinement(file.checkpoint.config.model, file.refinement);
  return file;
}

// The checkpoint's validation rows: those sae train held out of the data it trained on.
// advise: a missing file's error tells the user to give the rows with --data.
const std::pair<std::string, HostCsr>& validation_rows(ModelFile& file, bool advise = true) {
  if (!file.validation) {
    const Counts counts = load_counts_from_checkpoint(file.checkpoint.config, file.path, advise);
    const TrainConfig& train = file.checkpoint.config.train;
    const auto split = split_rows(counts.matrix.rows, train.val_fraction, train.seed);
    file.validation.emplace("validation rows of " + counts.source,
                            select_rows(counts.matrix, split.second));
  }
  return *file.validation;
}

bool same_refinement(const LatentRefinement& a, const LatentRefinement& b) {
  return a.steps == b.steps && (a.steps == 0 || a.rate == b.rate);
}

// sae train chose a support head's threshold on the validation rows' codes as the checkpoint
// refines them; a threshold chosen for other codes biases the F1 of these (0.2235 against 0.2344
// re-chosen, in a test of 40 steps on a model trained without). So where this run refines
// otherwise, the threshold is chosen again, on the same rows as sae train chose it.
void rechoose_support_threshold(const Options& o, ModelFile& file, TrainedModel& model) {
  const RunConfig& stored = file.checkpoint.config;
  if (!has_support_head(stored.train.loss) ||
      same_refinement(file.refinement, stored.latent_refinement))
    return;
  const bool quiet = o.flag_set("quiet");
  const LatentRefinement& was = stored.latent_refinement;
  const std::string chosen_for =
      "the checkpoint's support threshold " + detail::number_text(stored.hurdle_threshold) +
      ", chosen for " +
      (was.steps == 0 ? std::string("the encoder's codes")
                      : "codes refined by " + std::to_string(was.steps) + " steps at rate " +
                            detail::number_text(was.rate));
  // sae eval without --data measures these rows: without them it cannot go on, and says so.
  const std::pair<std::string, HostCsr>* validation = nullptr;
  if (!o.given("data")) {
    validation = &validation_rows(file);
  } else {
    try {
      validation = &validation_rows(file, false);
    } catch (const Error& error) {
      if (!quiet)
        std::cerr << o.command() << ": keeping " << chosen_for << ": " << error.what() << "\n";
      return;
    }
  }
  if (validation->second.rows == 0) {
    if (!quiet)
      std::cerr << o.command() << ": keeping " << chosen_for
                << ": the checkpoint holds no validation rows to choose another on\n";
    return;
  }
  const double threshold = choose_hurdle_threshold(model, validation->second);
  model.set_hurdle_threshold(threshold);
  if (!quiet)
    std::cerr << o.command() << ": support threshold " << detail::number_text(threshold)
              << " for these codes, chosen on the " << validation->first << " (" << chosen_for
              << ")\n";
}

// The model of file, refining its codes as file says. decodes_counts: its decoded counts are
// used (eval, decode), so a support head's threshold must suit the codes.
TrainedModel open_model(const Options& o, ModelFile& file, std::int64_t batch, Backend& backend,
                        bool decodes_counts) {
  RunConfig config = file.checkpoint.config;
  config.latent_refinement = file.refinement;
  TrainedModel model(backend, config, file.checkpoint.state.parameters, batch);
  if (decodes_counts) rechoose_support_threshold(o, file, model);
  return model;
}

// The counts at path, which must have the columns the model reads.
Counts model_counts(const Options& o, const ModelFile& file, const std::string& path) {
  Counts counts = load_counts(path, 0, data_orientation(o));
  require_model_columns(counts, file.checkpoint.config.model.input_dim, file.path);
  return counts;
}

// The codes at path, which must have the model's latent width.
HostDense model_codes(const ModelFile& file, const std::string& path) {
  HostDense codes = read_npy(path, NpyValues::finite);
  const std::int64_t latent = file.checkpoint.config.model.latent;
  require(codes.cols == latent, path + ": " + std::to_string(codes.cols) +
                                    " columns, the model in " + file.path + " has " +
                                    std::to_string(latent) + " latent columns");
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
  const std::int64_t batch = o.integer("batch");
  const std::string data_path = o.required("data");
  const std::string out = o.required("out");
  const MatrixFormat format = *output_option_format(o, "sae encode", "out", kCodeFormats);
  ModelFile file = read_model_file(o);
  const auto backend = open_backend(o);
  TrainedModel model = open_model(o, file, batch, *backend, false);
  const Counts counts = model_counts(o, file, data_path);
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
  // Codes are refined from the counts they reproduce: given codes have none.
  if (o.given("latents") && (o.given("refine-steps") || o.given("refine-rate")))
    throw UsageError(
        "sae decode: --refine-steps and --refine-rate refine the codes of --data; codes given by "
        "--latents are decoded as they are (refine them in sae encode)");
  const std::int64_t batch = o.integer("batch");
  const std::string out = o.required("out");
  const MatrixFormat format = *output_option_format(o, "sae decode", "out", kReconstructionFormats);
  ModelFile file = read_model_file(o);
  const auto backend = open_backend(o);
  TrainedModel model = open_model(o, file, batch, *backend, o.given("data"));
  const DecodeMode decode =
      decode_option(o, file.checkpoint.config.train.loss).value_or(model.default_decode());
  if (o.given("latents")) {
    write_reconstruction(out, format, model,
                         model.decode_outputs(model_codes(file, o.text("latents"))), decode);
  } else {
    write_reconstruction(out, format, model,
                         model.outputs(model_counts(o, file, o.text("data")).matrix), decode);
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
  const std::int64_t batch = o.integer("batch");
  ModelFile file = read_model_file(o);
  const auto backend = open_backend(o);
  TrainedModel model = open_model(o, file, batch, *backend, true);
  const DecodeMode decode =
      decode_option(o, file.checkpoint.config.train.loss).value_or(model.default_decode());
  if (o.given("data")) {
    const Counts counts = model_counts(o, file, o.text("data"));
    print_metrics(o.text("data"), model.evaluate(counts.matrix, decode), o.flag_set("json"));
    return 0;
  }
  const auto& validation = validation_rows(file);
  print_metrics(validation.first, model.evaluate(validation.second, decode), o.flag_set("json"));
  return 0;
}

}  // namespace sparseae::cli
