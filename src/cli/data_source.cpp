#include "cli/data_source.hpp"

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/io.hpp"

namespace sparseae::cli {

void add_data_options(Options& o) {
  o.value("data", "PATH", "",
          "counts: .mtx, .mtx.gz, .npz (scipy.sparse), .h5ad (AnnData X), .npy or .csv (default: "
          "embedded dataset)")
      .value("rows", "N", "100000", "rows of the embedded dataset");
  add_transpose_option(o);
}

void add_transpose_option(Options& o) {
  o.flag("transpose",
         "read --data's columns as rows: for files of features x rows, such as 10x Genomics' "
         "genes x cells .mtx");
}

Orientation data_orientation(const Options& o) {
  return o.flag_set("transpose") ? Orientation::transposed : Orientation::as_stored;
}

Counts load_counts(const Options& o) {
  return load_counts(o.text("data"), o.integer("rows"), data_orientation(o));
}

namespace {

constexpr const char* kEmbeddedPrefix = "embedded:rows=";
// Begins a recorded source read with --transpose, so that eval and --resume read it the same way.
constexpr const char* kTransposedPrefix = "transposed:";

bool is_embedded(const std::string& source) { return source.rfind(kEmbeddedPrefix, 0) == 0; }

Counts embedded(std::int64_t rows) {
  TopicDataConfig config;
  config.rows = rows;
  const std::string name =
      kEmbeddedPrefix + std::to_string(rows) + ",seed=" + std::to_string(config.seed);
  return {generate_topic_counts(config), false, {}, name, name, false};
}

// The rows of a recorded embedded source.
std::int64_t embedded_source_rows(const std::string& source) {
  long long rows = 0;
  unsigned long long seed = 0;
  require(std::sscanf(source.c_str(), "embedded:rows=%lld,seed=%llu", &rows, &seed) == 2 &&
              seed == TopicDataConfig{}.seed,
          "cannot rebuild the data source '" + source + "': pass --data");
  return rows;
}

// How load_counts_from_checkpoint reads what it found: load_counts, or one rank's share.
using CountsLoader =
    std::function<Counts(const std::string& path, std::int64_t embedded_rows, Orientation)>;

std::string absolute_path(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}

std::string orientation_prefix(bool transposed) { return transposed ? kTransposedPrefix : ""; }

// A recorded file source taken apart: the file, and how it was read.
struct RecordedFile {
  std::string path;
  Orientation orientation = Orientation::as_stored;
};

RecordedFile recorded_file(const std::string& source) {
  const std::string prefix = kTransposedPrefix;
  if (source.rfind(prefix, 0) == 0) return {source.substr(prefix.size()), Orientation::transposed};
  return {source, Orientation::as_stored};
}

}  // namespace

Counts load_counts(const std::string& path, std::int64_t embedded_rows, Orientation orientation) {
  const bool transposed = orientation == Orientation::transposed;
  if (path.empty()) {
    require(!transposed, "--transpose reads --data: give it, or drop --transpose");
    return embedded(embedded_rows);
  }
  LoadedMatrix loaded = read_matrix(path, orientation);
  const std::string recorded = orientation_prefix(transposed) + absolute_path(path);
  if (loaded.sparse) return {std::move(loaded.csr), false, {}, path, recorded, transposed};
  HostCsr sparse = to_csr(loaded.dense);
  return {std::move(sparse), true, std::move(loaded.dense), path, recorded, transposed};
}

std::string source_relative_to_checkpoint(const Counts& counts,
                                          const std::string& checkpoint_path) {
  if (is_embedded(counts.recorded_source) || checkpoint_path.empty()) return "";
  const std::filesystem::path directory =
      std::filesystem::path(absolute_path(checkpoint_path)).parent_path();
  const std::filesystem::path relative =
      std::filesystem::path(recorded_file(counts.recorded_source).path)
          .lexically_relative(directory);
  // No relative path leads from one root to another: the absolute path alone names the file.
  if (relative.empty()) return "";
  return orientation_prefix(counts.transposed) + relative.generic_string();
}

namespace {

// advise: the errors end by telling the user to give the rows with --data.
Counts load_counts_recorded(const RunConfig& run, const std::string& checkpoint_path,
                            const CountsLoader& load_counts, bool advise = true) {
  if (is_embedded(run.data_source))
    return load_counts("", embedded_source_rows(run.data_source), Orientation::as_stored);
  const RecordedFile recorded = recorded_file(run.data_source);
  const bool recorded_beside = !run.data_source_relative_to_checkpoint.empty();
  // Beside the checkpoint first, so that a moved or copied directory reads its own data.
  std::vector<RecordedFile> candidates;
  if (recorded_beside) {
    RecordedFile beside = recorded_file(run.data_source_relative_to_checkpoint);
    beside.path =
        (std::filesystem::path(absolute_path(checkpoint_path)).parent_path() / beside.path)
            .lexically_normal()
            .string();
    candidates.push_back(beside);
  }
  if (candidates.empty() || candidates.front().path != recorded.path)
    candidates.push_back(recorded);
  for (const RecordedFile& candidate : candidates)
    if (!candidate.path.empty() && std::filesystem::exists(candidate.path))
      return load_counts(candidate.path, 0, candidate.orientation);
  // sae records absolute paths: an empty or relative source is a program's own label for rows
  // it held in memory, which names no file.
  require(recorded_beside || std::filesystem::path(recorded.path).is_absolute(),
          checkpoint_path + " records no data file (it was made by the library)" +
              (advise ? ": give the rows with --data" : ""));
  const std::string places = candidates.size() > 1
                                 ? "at neither " + candidates[0].path + " nor " + candidates[1].path
                                 : "not at " + candidates[0].path;
  throw Error(checkpoint_path + ": the data it was trained on is " + places +
              (advise ? ": give the file with --data" : ""));
}

bool ends_with(const std::string& path, const std::string& suffix) {
  return path.size() >= suffix.size() &&
         path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_matrix_market(const std::string& path) {
  return ends_with(path, ".mtx") || ends_with(path, ".mtx.gz");
}

// Rows [first, first + count) of m.
HostCsr row_range(const HostCsr& m, std::int64_t first, std::int64_t count) {
  HostCsr out;
  out.rows = count;
  out.cols = m.cols;
  const RowOffset begin = m.row_offsets[first];
  const RowOffset end = m.row_offsets[first + count];
  out.row_offsets.reserve(static_cast<std::size_t>(count + 1));
  for (std::int64_t r = first; r <= first + count; ++r)
    out.row_offsets.push_back(m.row_offsets[r] - begin);
  out.col_indices.assign(m.col_indices.begin() + begin, m.col_indices.begin() + end);
  out.values.assign(m.values.begin() + begin, m.values.begin() + end);
  return out;
}

}  // namespace

Counts load_counts_from_checkpoint(const RunConfig& run, const std::string& checkpoint_path,
                                   bool advise) {
  return load_counts_recorded(
      run, checkpoint_path,
      [](const std::string& path, std::int64_t rows, Orientation orientation) {
        return load_counts(path, rows, orientation);
      },
      advise);
}

Counts load_counts_shard(const std::string& path, std::int64_t embedded_rows,
                         Orientation orientation, int rank, int ranks, RowShard& shard) {
  const auto range = [&](std::int64_t total) {
    shard.total_rows = total;
    shard.first_row = total * rank / ranks;
    return total * (rank + 1) / ranks - shard.first_row;
  };
  if (path.empty()) {
    Counts counts = load_counts(path, embedded_rows, orientation);
    const std::int64_t count = range(counts.matrix.rows);
    counts.matrix = row_range(counts.matrix, shard.first_row, count);
    return counts;
  }
  require(orientation == Orientation::as_stored,
          "--transpose reads every row of the file: across ranks, write the transposed matrix "
          "to a file first (sae gen or scipy) and train on that");
  if (ends_with(path, ".npy")) {
    const std::int64_t count = range(read_npy_rows_count(path));
    HostDense rows = read_npy_rows(path, shard.first_row, count);
    HostCsr sparse = to_csr(rows);
    return {std::move(sparse), true, std::move(rows), path, absolute_path(path), false};
  }
  require(is_matrix_market(path),
          path +
              ": across ranks, sae train reads each rank's rows from a .npy (C order) or a "
              ".mtx file (gzipped or not) sorted by row; convert this file to one of them");
  MatrixMarketRowReader reader(path);
  const std::int64_t count = range(reader.rows());
  Counts counts;
  try {
    HostCsr skipped;
    // Blocks of at most this many rows stream past the rows before this rank's.
    constexpr std::int64_t kSkipBlockRows = 65536;
    for (std::int64_t passed = 0; passed < shard.first_row; passed += skipped.rows)
      reader.next(std::min(kSkipBlockRows, shard.first_row - passed), skipped);
    reader.next(count, counts.matrix);
  } catch (const MatrixMarketOrderError& error) {
    throw Error(std::string(error.what()) +
                ": across ranks, each rank reads a range of rows, which needs the entries sorted "
                "by row (write the file again from a CSR matrix, e.g. scipy.io.mmwrite(path, "
                "X.tocsr()), or with sae gen)");
  }
  require_counts(counts.matrix, path);
  counts.source = path;
  counts.recorded_source = absolute_path(path);
  return counts;
}

Counts load_counts_shard(const Options& o, int rank, int ranks, RowShard& shard) {
  return load_counts_shard(o.text("data"), o.integer("rows"), data_orientation(o), rank, ranks,
                           shard);
}

Counts load_counts_shard_from_checkpoint(const RunConfig& run, const std::string& checkpoint_path,
                                         int rank, int ranks, RowShard& shard) {
  return load_counts_recorded(
      run, checkpoint_path,
      [&](const std::string& path, std::int64_t rows, Orientation orientation) {
        return load_counts_shard(path, rows, orientation, rank, ranks, shard);
      });
}

void require_model_columns(const Counts& counts, std::int64_t model_columns,
                           const std::string& checkpoint_path) {
  require(counts.matrix.cols == model_columns,
          counts.source + ": " + std::to_string(counts.matrix.cols) + " columns, the model in " +
              checkpoint_path + " expects " + std::to_string(model_columns));
}

void require_trainable_rows(const Counts& counts) {
  const std::int64_t rows = counts.matrix.rows;
  require(rows >= 2, counts.source + ": " + std::to_string(rows) + (rows == 1 ? " row" : " rows") +
                         "; fitting a model needs at least 2");
}

std::string describe(const Counts& counts) {
  const HostCsr& m = counts.matrix;
  char text[256];
  std::snprintf(text, sizeof text, "%lld rows x %lld columns, %lld non-zeros (%.1f per row)",
                static_cast<long long>(m.rows), static_cast<long long>(m.cols),
                static_cast<long long>(m.nnz()),
                m.rows > 0 ? static_cast<double>(m.nnz()) / static_cast<double>(m.rows) : 0.0);
  return "data: " + counts.source + (counts.transposed ? " (transposed)" : "") + ": " + text +
         (counts.dense ? ", dense path" : "");
}

std::optional<MatrixFormat> output_option_format(const Options& o, const std::string& command,
                                                 const std::string& option,
                                                 const std::vector<MatrixFormat>& writable) {
  if (!o.given(option)) return std::nullopt;
  return output_format(o.text(option), writable, command + " --" + option);
}

void add_model_file_options(Options& o, const std::string& default_path, const std::string& help) {
  // -o/--out, the output of every command; --checkpoint, its name before, for a release.
  o.value("out", "PATH", default_path, help + " ('' writes none)")
      .flag("force", "without -o, overwrite " + default_path + " when it exists")
      .renamed("checkpoint", "out")
      .suggests("model", "out");
}

void refuse_unasked_overwrite(const Options& o, const std::string& command) {
  const std::string path = o.text("out");
  if (o.given("out") || o.flag_set("force") || !std::filesystem::exists(path)) return;
  throw Error(command + ": " + path + " exists in the working directory: pass -o PATH " +
              "(-o '' for none), or --force to overwrite it");
}

void add_quiet_option(Options& o) { o.flag("quiet", "no progress output or notices on stderr"); }

std::unique_ptr<Backend> open_backend(const Options& o) {
  std::string notice;
  auto backend = make_backend(parse_backend_choice(o.text("backend")), &notice);
  if (!notice.empty() && o.given("backend") && !o.flag_set("quiet"))
    std::cerr << "sae: " << notice << "\n";
  return backend;
}

}  // namespace sparseae::cli
