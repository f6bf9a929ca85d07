// sae compress and decompress: lossless mode (sparseae/lossless.hpp) on files, and the size
// table that shows what the model buys against raw CSR, gzip, zstd, xz, the order-0 code and PCA.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/data_source.hpp"
#include "cli/options.hpp"
#include "cli/text_format.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/error.hpp"
#include "sparseae/lossless.hpp"
#include "sparseae/pca.hpp"

namespace sparseae::cli {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_matrix_market(const std::string& path) {
  return ends_with(path, ".mtx") || ends_with(path, ".mtx.gz");
}

// Bytes of the .mtx text at path (gunzipped first when it is gzipped) compressed by tool with
// level; -1 when the tool is not installed or fails.
std::int64_t external_compressed_bytes(const std::string& path, const std::string& tool,
                                       const std::string& level) {
  const std::string check = "command -v " + tool + " >/dev/null 2>&1";
  if (std::system(check.c_str()) != 0) return -1;
  const std::string text =
      ends_with(path, ".gz") ? "gzip -dc " + shell_quoted(path) : "cat " + shell_quoted(path);
  const std::string command =
      "set -o pipefail; " + text + " | " + tool + " " + level + " -c | wc -c";
  std::FILE* pipe = ::popen(("bash -c " + shell_quoted(command)).c_str(), "r");
  if (pipe == nullptr) return -1;
  long long bytes = -1;
  const int read = std::fscanf(pipe, "%lld", &bytes);
  const int status = ::pclose(pipe);
  return read == 1 && status == 0 ? bytes : -1;
}

void print_row(const std::string& name, const std::string& value, const std::string& note) {
  std::printf("  %-34s %12s  %s\n", name.c_str(), value.c_str(), note.c_str());
}

struct StatsInput {
  const std::string& data_path;
  const std::string& out_path;
  const LosslessOptions& options;  // those of the file written
  const LosslessSizes& written;    // its sizes
  const Checkpoint* checkpoint;    // the model, when one was given
};

void print_stats(const StatsInput& in, Backend& backend, const HostCsr& counts) {
  const std::int64_t rows = counts.rows;
  std::printf("lossless sizes of %s (%lld rows x %lld columns, %lld non-zeros), bytes per row:\n",
              in.data_path.c_str(), static_cast<long long>(rows),
              static_cast<long long>(counts.cols), static_cast<long long>(counts.nnz()));
  print_row(
      "raw CSR (int32 index + value)",
      per_row(8.0 * static_cast<double>(counts.nnz()) + 4.0 * static_cast<double>(rows), rows),
      "4 + 8 nnz/row");
  for (const auto& [tool, level] : {std::pair<std::string, std::string>{"gzip", "-9"},
                                    std::pair<std::string, std::string>{"zstd", "-19"},
                                    std::pair<std::string, std::string>{"xz", "-9"}}) {
    const std::int64_t bytes =
        is_matrix_market(in.data_path) ? external_compressed_bytes(in.data_path, tool, level) : -1;
    print_row(
        tool + " " + level + " of the .mtx",
        bytes < 0 ? "-" : per_row(static_cast<double>(bytes), rows),
        bytes < 0 ? (is_matrix_market(in.data_path) ? tool + " not installed" : "not a .mtx") : "");
  }
  const bool wrote_order0 = in.options.codec == LosslessCodec::order0;
  const bool wrote_training_order0 = in.options.codec == LosslessCodec::order0_training;
  LosslessOptions order0_options = in.options;
  order0_options.codec = LosslessCodec::order0;
  CsrRowSource order0_source(counts);
  const LosslessSizes order0 =
      wrote_order0 ? in.written : compress_lossless(order0_source, "", order0_options);
  print_row("order-0 per column" + (wrote_order0 ? " (" + in.out_path + ")" : std::string()),
            per_row(static_cast<double>(order0.total()), rows), size_breakdown(order0));
  LosslessOptions model_options = in.options;
  model_options.codec = LosslessCodec::model;
  const std::int64_t components = in.checkpoint ? in.checkpoint->config.model.latent : 32;
  if (rows >= 2) {
    PcaConfig pca_config;
    pca_config.components = components;
    const PcaModel pca = fit_pca(backend, counts, pca_config);
    const RunConfig pca_run = pca_run_config(pca, in.data_path, 0.0, 1);
    CsrRowSource source(counts);
    // PCA has no prior: its codes take 8 bits where the model's are integers under one.
    LosslessOptions pca_options = model_options;
    if (pca_options.latent_bits == kPriorLatentBits) pca_options.latent_bits = 8;
    const LosslessSizes pca_sizes =
        compress_lossless(backend, pca_run, pca_parameters(pca), source, "", pca_options);
    print_row("PCA (k = " + std::to_string(components) + ", " +
                  std::to_string(pca_options.latent_bits) + "-bit) codes + residual",
              per_row(static_cast<double>(pca_sizes.total()), rows), size_breakdown(pca_sizes));
  }
  if (in.checkpoint == nullptr) return;
  if (!in.checkpoint->config.training_count_histogram.empty()) {
    LosslessOptions training_options = in.options;
    training_options.codec = LosslessCodec::order0_training;
    CsrRowSource training_source(counts);
    const LosslessSizes training_order0 =
        wrote_training_order0
            ? in.written
            : compress_lossless(backend, in.checkpoint->config, in.checkpoint->state.parameters,
                                training_source, "", training_options);
    print_row("order-0 of the training rows" +
                  (wrote_training_order0 ? " (" + in.out_path + ")" : std::string()),
              per_row(static_cast<double>(training_order0.total()), rows),
              size_breakdown(training_order0));
  }
  const bool wrote_model = in.options.codec == LosslessCodec::model;
  CsrRowSource model_source(counts);
  const LosslessSizes model = wrote_model ? in.written
                                          : compress_lossless(backend, in.checkpoint->config,
                                                              in.checkpoint->state.parameters,
                                                              model_source, "", model_options);
  print_row("model codes + residual" + (wrote_model ? " (" + in.out_path + ")" : std::string()),
            per_row(static_cast<double>(model.total()), rows), size_breakdown(model));
  print_row("model coding of every block",
            per_row(static_cast<double>(model.model_coding_bytes + model.framing_bytes), rows),
            "without the per-block choice of order-0");
  const bool has_nll = !std::isnan(model.nll_bits);
  print_row("model NLL (ideal residual code)", has_nll ? per_row(model.nll_bits / 8.0, rows) : "-",
            has_nll ? per_row(model.nll_bits, rows) + " bits/row"
                    : "the model's loss is not a count likelihood");
  if (!in.checkpoint->config.model.latent_prior &&
      model.model_coding_bytes + model.framing_bytes >= order0.total())
    std::printf(
        "hint: this model's codes cost more than they save over order-0; a model trained with\n"
        "      --rate-lambda 1 and a count likelihood (--loss hurdle_nb) stores integer codes\n"
        "      that cost few bits (README, \"Rate-aware models\")\n");
}

// decompress_lossless's callbacks that gather every block of rows into counts, for the formats
// written whole.
std::function<void(const LosslessFileInfo&)> start_gathering(HostCsr& counts) {
  return [&counts](const LosslessFileInfo& info) {
    counts = HostCsr{};
    // Grown block by block rather than reserved from the header's sizes: the blocks are
    // checked as they come, the header alone is not evidence enough to allocate for.
    counts.cols = info.cols;
  };
}
std::function<void(std::int64_t, const HostCsr&)> gather_block(HostCsr& counts) {
  return [&counts](std::int64_t, const HostCsr& block) {
    const RowOffset base = counts.nnz();
    for (std::int64_t r = 0; r < block.rows; ++r)
      counts.row_offsets.push_back(base + block.row_offsets[static_cast<std::size_t>(r) + 1]);
    counts.col_indices.insert(counts.col_indices.end(), block.col_indices.begin(),
                              block.col_indices.end());
    counts.values.insert(counts.values.end(), block.values.begin(), block.values.end());
    counts.rows += block.rows;
  };
}

}  // namespace

int run_compress(const Args& raw_args) {
  Options o("sae compress",
            "Stores counts losslessly. --codec model (the default): per row the model's latent\n"
            "code and the residual between the row and the model's prediction from that code,\n"
            "entropy-coded with the model's predicted distribution; each block falls back on\n"
            "the order-0 code where that is smaller. --codec order0: each column's counts with\n"
            "one distribution fitted on the rows, no model. --codec order0-training: the same\n"
            "with the distributions of the model's training rows, so the file holds no tables.\n"
            "sae decompress gives back the exact counts.");
  o.value("model", "PATH", "",
          "checkpoint written by sae train (required by --codec model and order0-training; with "
          "order0 only --stats uses it)")
      .suggests("checkpoint", "model")
      .value("data", "PATH", "",
             "counts: .mtx or .mtx.gz (streamed a block at a time when sorted by row), .npz, "
             ".h5ad, .npy, .csv (required)")
      .value("out", "PATH", "", "the compressed file (required)")
      .value("codec", "model|order0|order0-training", "model",
             "model codes + residual with an order-0 fallback per block, order-0 alone, or "
             "order-0 fitted on the model's training rows")
      .value("latent-bits", "auto|prior|32|16|8", "auto",
             "latent codes as integers under the model's learned prior (prior: a model trained "
             "with --rate-lambda), float32, float16, or 8 bits linear per column and block; auto: "
             "prior where the model has one, else 32")
      .value("block-rows", "N", "4096", "rows per block of the file")
      .value("backend", "auto|cpu|cuda", "auto", "where to run the encoder and the decoder")
      .value("batch", "N", "4096", "rows per batch")
      .flag("stats",
            "print the size table: raw CSR, gzip -9, zstd -19 and xz -9 of the .mtx, the\n"
            "order-0 code, PCA codes + residual, the model's codes + residual and its NLL (loads\n"
            "the data into memory)");
  add_transpose_option(o);
  add_quiet_option(o);
  if (!o.parse(raw_args)) return 0;
  // Transposed, the file holds the matrix as the model reads it (rows: the file's columns), and
  // decompress gives that back; a transposed .mtx is read whole, not streamed.
  const Orientation orientation = data_orientation(o);
  LosslessOptions options;
  options.codec = parse_lossless_codec(o.text("codec"));
  const bool use_model = options.codec != LosslessCodec::order0;
  const std::string model_path = use_model ? o.required("model") : o.text("model");
  const std::string data_path = o.required("data");
  const std::string out_path = o.required("out");
  const std::string latent_bits = o.text("latent-bits");
  require(latent_bits == "auto" || latent_bits == "prior" || latent_bits == "32" ||
              latent_bits == "16" || latent_bits == "8",
          "sae compress: --latent-bits must be auto, prior, 32, 16 or 8, not " + latent_bits);
  options.block_rows = o.integer("block-rows");
  options.batch_rows = o.integer("batch");
  require(options.batch_rows > 0, "sae compress: --batch must be positive");
  // The order0 codecs run no model (order0-training reads its histogram); --stats runs PCA.
  const auto backend = use_model || o.flag_set("stats") ? open_backend(o) : nullptr;
  std::unique_ptr<Checkpoint> checkpoint;
  if (!model_path.empty()) checkpoint = std::make_unique<Checkpoint>(load_checkpoint(model_path));
  require(options.codec != LosslessCodec::order0_training ||
              !checkpoint->config.training_count_histogram.empty(),
          "sae compress: --codec order0-training: " + model_path +
              " holds no count histogram of its training rows (a PCA model, one trained on values "
              "that are not counts, or one written before it was stored): use --codec order0");
  const bool has_prior = checkpoint && checkpoint->config.model.latent_prior;
  require(latent_bits != "prior" || !use_model || has_prior,
          "sae compress: --latent-bits prior needs a model trained with --rate-lambda; " +
              model_path + " has no latent prior (use auto, 32, 16 or 8)");
  if (latent_bits == "auto" || latent_bits == "prior")
    options.latent_bits = checkpoint ? default_latent_bits(checkpoint->config.model) : 32;
  else
    options.latent_bits = std::stoi(latent_bits);
  const auto compress = [&](RowBlockSource& source) {
    if (!use_model) return compress_lossless(source, out_path, options);
    return compress_lossless(*backend, checkpoint->config, checkpoint->state.parameters, source,
                             out_path, options);
  };
  const auto in_memory = [&](const Counts& counts) {
    if (use_model) require_model_columns(counts, checkpoint->config.model.input_dim, model_path);
    CsrRowSource source(counts.matrix);
    return compress(source);
  };
  LosslessSizes sizes;
  if (o.flag_set("stats")) {
    const Counts counts = load_counts(data_path, 0, orientation);
    if (checkpoint) require_model_columns(counts, checkpoint->config.model.input_dim, model_path);
    sizes = in_memory(counts);
    print_stats({data_path, out_path, options, sizes, checkpoint.get()}, *backend, counts.matrix);
    return 0;
  }
  if (is_matrix_market(data_path) && orientation == Orientation::as_stored) {
    try {
      MatrixMarketRowSource source(data_path);
      if (use_model)
        require(source.cols() == checkpoint->config.model.input_dim,
                data_path + ": " + std::to_string(source.cols()) + " columns, the model in " +
                    model_path + " expects " + std::to_string(checkpoint->config.model.input_dim));
      sizes = compress(source);
    } catch (const MatrixMarketOrderError& error) {
      if (!o.flag_set("quiet"))
        std::cerr << "sae: " << error.what() << "; reading the whole file instead\n";
      sizes = in_memory(load_counts(data_path, 0));
    }
  } else {
    sizes = in_memory(load_counts(data_path, 0, orientation));
  }
  std::printf("%s: %lld rows, %lld bytes, %s bytes per row (%s)\n", out_path.c_str(),
              static_cast<long long>(sizes.rows), static_cast<long long>(sizes.total()),
              per_row(static_cast<double>(sizes.total()), sizes.rows).c_str(),
              size_breakdown(sizes).c_str());
  return 0;
}

int run_decompress(const Args& raw_args) {
  Options o("sae decompress", "Rebuilds the exact counts from a file written by sae compress.");
  o.value("in", "PATH", "", "the compressed file (required)")
      .value("model", "PATH", "",
             "the checkpoint it was compressed with (required for a file of --codec model or "
             "order0-training)")
      .suggests("checkpoint", "model")
      .value("out", "PATH", "",
             "the counts: .mtx (coordinate integer, streamed), .npz, .h5ad, .npy or .csv (held "
             "whole) (required)")
      .value("backend", "auto|cpu|cuda", "auto", "where to run the decoder")
      .value("batch", "N", "4096", "rows per batch");
  add_quiet_option(o);
  if (!o.parse(raw_args)) return 0;
  const std::string in_path = o.required("in");
  const std::string model_path = o.text("model");
  const std::string out_path = o.required("out");
  const MatrixFormat format = *output_option_format(o, "sae decompress", "out", kCountFormats);
  require(o.integer("batch") > 0, "sae decompress: --batch must be positive");
  // .mtx streams out a block of rows at a time; the other formats are written whole, so their
  // rows are gathered in memory first.
  const bool streamed = format == MatrixFormat::matrix_market;
  if (model_path.empty()) {
    if (streamed) {
      decompress_lossless_to_matrix_market(in_path, out_path);
    } else {
      HostCsr counts;
      decompress_lossless(in_path, start_gathering(counts), gather_block(counts));
      write_counts(out_path, format, counts);
    }
    return 0;
  }
  const auto backend = open_backend(o);
  const Checkpoint checkpoint = load_checkpoint(model_path);
  if (streamed) {
    decompress_lossless_to_matrix_market(*backend, checkpoint.config, checkpoint.state.parameters,
                                         in_path, out_path, o.integer("batch"));
  } else {
    HostCsr counts;
    decompress_lossless(*backend, checkpoint.config, checkpoint.state.parameters, in_path,
                        o.integer("batch"), start_gathering(counts), gather_block(counts));
    write_counts(out_path, format, counts);
  }
  return 0;
}

}  // namespace sparseae::cli
