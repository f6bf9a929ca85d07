#pragma once
// Where a command's counts come from: a file (.mtx, .mtx.gz, .npz, .h5ad, .npy, .csv) or the
// embedded generator, named so that a checkpoint can say which; and which format the matrices a
// command writes take.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::cli {

struct Counts {
  HostCsr matrix;      // always filled: what encode, decode and metrics read
  bool dense = false;  // came from a dense file (.npy, .csv): training takes the dense path
  HostDense dense_matrix;
  std::string source;  // the path as given, or "embedded:rows=N,seed=S"
  // What a checkpoint's data_source records: the absolute path, so that it names the same file
  // from any working directory (after "transposed:" when read so), or the embedded name. See
  // source_relative_to_checkpoint for the path it records beside it.
  std::string recorded_source;
  bool transposed = false;  // the file's columns were read as rows (--transpose)
};

// --data, --rows and --transpose, which load_counts(o) reads: declared on o, for every command
// that reads counts from a file or the embedded generator.
void add_data_options(Options& o);
// --transpose alone, for commands that declare their own --data; data_orientation reads it.
void add_transpose_option(Options& o);
Orientation data_orientation(const Options& o);

// The counts that add_data_options' options name.
Counts load_counts(const Options& o);
// path "" means the embedded dataset of embedded_rows rows; orientation applies to a file.
Counts load_counts(const std::string& path, std::int64_t embedded_rows,
                   Orientation orientation = Orientation::as_stored);
// What a checkpoint written to checkpoint_path records as its configuration's
// data_source_relative_to_checkpoint: counts' file relative to the checkpoint's directory (after
// "transposed:" when read so); empty for the embedded dataset or without a checkpoint.
std::string source_relative_to_checkpoint(const Counts& counts, const std::string& checkpoint_path);
// Loads the data that run, the configuration of the checkpoint at checkpoint_path, was trained
// on: the file beside the checkpoint when it recorded one and it exists, else data_source. Throws
// when neither exists: "m.ckpt: the data it was trained on is at neither A nor B: give the file
// with --data", or, when it names no file, "m.ckpt records no data file (it was made by the
// library): give the rows with --data"; without advise, the same without the advice after
// the last colon (for a caller where --data means other rows).
Counts load_counts_from_checkpoint(const RunConfig& run, const std::string& checkpoint_path,
                                   bool advise = true);

// One rank's share of the counts for a data-parallel run of `ranks` ranks: the rows
// [total * rank / ranks, total * (rank + 1) / ranks) in matrix (so no rank holds the whole
// matrix), and where they lie in shard. A .mtx file (gzipped or not) sorted by row streams past
// the rows before the range; other files, and a .mtx not sorted by row, are refused with what to
// do instead. The embedded dataset is generated whole by each rank and cut.
Counts load_counts_shard(const std::string& path, std::int64_t embedded_rows,
                         Orientation orientation, int rank, int ranks, RowShard& shard);
Counts load_counts_shard(const Options& o, int rank, int ranks, RowShard& shard);
// load_counts_from_checkpoint, each rank reading its share (load_counts_shard).
Counts load_counts_shard_from_checkpoint(const RunConfig& run, const std::string& checkpoint_path,
                                         int rank, int ranks, RowShard& shard);
// Throws unless the counts have the columns that the model of the checkpoint at checkpoint_path
// reads: "<source>: 64 columns, the model in <checkpoint_path> expects 512".
void require_model_columns(const Counts& counts, std::int64_t model_columns,
                           const std::string& checkpoint_path);
// Throws unless the counts hold the 2 rows that training or a PCA fit needs:
// "<source>: 1 row; fitting a model needs at least 2".
void require_trainable_rows(const Counts& counts);
// "data: <source>: N rows x D columns, nnz non-zeros (x per row)".
std::string describe(const Counts& counts);

// The formats of a model's codes (--latents, encode's --out) and of reconstructions
// (--reconstruction, decode's --out: .mtx and .csv the decoded counts, .npy the values).
inline const std::vector<MatrixFormat> kCodeFormats = {MatrixFormat::npy, MatrixFormat::npz,
                                                       MatrixFormat::csv, MatrixFormat::h5ad};
inline const std::vector<MatrixFormat> kReconstructionFormats = {
    MatrixFormat::matrix_market, MatrixFormat::npy, MatrixFormat::npz, MatrixFormat::csv,
    MatrixFormat::h5ad};
// The formats counts are written in (sae gen --out, sae decompress --out).
inline const std::vector<MatrixFormat> kCountFormats = {MatrixFormat::matrix_market,
                                                        MatrixFormat::npy, MatrixFormat::npz,
                                                        MatrixFormat::csv, MatrixFormat::h5ad};

// The format of the file that option (a path, e.g. "out") names, nullopt when it is not given;
// throws, as output_format does, unless it is one of writable: "x.npz: sae gen --out writes .mtx,
// .npy or .csv, not '.npz'". Commands ask before any work.
std::optional<MatrixFormat> output_option_format(const Options& o, const std::string& command,
                                                 const std::string& option,
                                                 const std::vector<MatrixFormat>& writable);

// -o/--out PATH with default_path, the model file a command writes unless told otherwise (its
// former name --checkpoint still read, with a line saying so), and --force, which lets that
// default overwrite an existing file.
void add_model_file_options(Options& o, const std::string& default_path, const std::string& help);
// Throws before any work when -o was not given, its default file exists and --force was not
// given: "sae train: sae-model.ckpt exists: pass -o PATH (-o '' for none), or --force to
// overwrite it". A given -o overwrites: the user named it.
void refuse_unasked_overwrite(const Options& o, const std::string& command);

// --quiet: no progress or notices on stderr.
void add_quiet_option(Options& o);

// Opens the backend named by --backend. Auto's notice (no CUDA device, cpu used) goes to stderr
// only when --backend auto was given and --quiet was not: by default cpu is the expected outcome
// on a machine without a GPU, not news.
std::unique_ptr<Backend> open_backend(const Options& o);

}  // namespace sparseae::cli
