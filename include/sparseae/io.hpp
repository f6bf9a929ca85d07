#pragma once
// Reading and writing count matrices: MatrixMarket coordinate files (.mtx, .mtx.gz) hold sparse
// matrices, NumPy .npy and CSV files dense ones, .npz and AnnData .h5ad either. Readers check every
// value is a count (finite and non-negative) and throw Error with one line naming the file, the
// position and the reason. Writers write to a temporary file and rename it, so a failed write
// leaves nothing behind.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "sparseae/matrix.hpp"

namespace sparseae {

struct HostDense {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<float> values;  // row-major, rows * cols entries

  ConstDenseView view() const { return {values.data(), rows, cols}; }
};

// What read_matrix found: a sparse file fills csr, a dense one fills dense.
struct LoadedMatrix {
  bool sparse = false;
  HostCsr csr;
  HostDense dense;

  std::int64_t rows() const { return sparse ? csr.rows : dense.rows; }
  std::int64_t cols() const { return sparse ? csr.cols : dense.cols; }
};

// The largest shapes the readers accept, checked against what a file declares before anything
// is allocated; so is the memory reading it would take, against the memory this process may use
// (physical memory, or less under ulimit -v or -d).
namespace io_limits {
constexpr std::int64_t max_rows = 2147483647;
constexpr std::int64_t max_cols = 2147483647;  // column indices are 32-bit
constexpr std::int64_t max_nonzeros = std::int64_t{1} << 32;
constexpr std::int64_t max_dense_values = std::int64_t{1} << 32;  // 16 GiB of float32
// Integer-typed inputs (MatrixMarket 'integer', integer .npy dtypes) are refused above this, the
// largest integer float32 holds exactly: silently rounding a count would break exact decoding.
constexpr std::int64_t max_exact_count = std::int64_t{1} << 24;
}  // namespace io_limits

// Keeps the non-zeros of dense, in row order.
HostCsr to_csr(const HostDense& dense);

// Throws Error "what: row R, column C: why" at the first value of matrix that is not a count
// (NaN, infinite, negative), after HostCsr::validate's checks of its structure: for rows built in
// memory by a program (the Python package), which no reader has checked as it read them.
void require_counts(const HostCsr& matrix, const std::string& what);
// Entries that share a (row, column) add up.
HostDense to_dense(const HostCsr& csr);

// How a file's axes become the result's: as stored, or transposed, the file's columns read as
// rows (a file of features x rows, as 10x Genomics writes genes x cells).
enum class Orientation { as_stored, transposed };

// MatrixMarket 'coordinate integer general' or 'coordinate real general', optionally gzipped
// (read transparently). Entries may come in any order: the result has each row's columns sorted,
// duplicate (row, column) entries summed in file order (a sum that is not a count, as a single
// value would not be, is an error), and entries that are zero dropped.
HostCsr read_matrix_market(const std::string& path,
                           Orientation orientation = Orientation::as_stored);

namespace io_detail {
class LineReader;
}

// Thrown by MatrixMarketRowReader for an entry whose row precedes one already read.
class MatrixMarketOrderError : public Error {
 public:
  using Error::Error;
};

// Reads a MatrixMarket file (as read_matrix_market, gzipped or not) a block of rows at a time,
// holding only that block, so that files larger than memory stream through. The entries must
// come sorted by row (the columns within a row in any order; duplicates are summed); an entry
// out of row order throws MatrixMarketOrderError naming its line.
class MatrixMarketRowReader {
 public:
  explicit MatrixMarketRowReader(const std::string& path);
  ~MatrixMarketRowReader();
  MatrixMarketRowReader(const MatrixMarketRowReader&) = delete;
  MatrixMarketRowReader& operator=(const MatrixMarketRowReader&) = delete;

  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  // Fills block with the next min(max_rows, rows left) rows: 0 rows once all are read.
  void next(std::int64_t max_rows, HostCsr& block);

 private:
  void read_ahead();

  std::string path_;
  std::unique_ptr<io_detail::LineReader> reader_;
  bool integer_ = true;
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::int64_t entries_ = 0;
  std::int64_t entries_read_ = 0;
  std::int64_t next_row_ = 0;
  // The entry read ahead: the first one of a row not yet returned.
  bool has_pending_ = false;
  std::int64_t pending_row_ = 0;
  ColIndex pending_col_ = 0;
  float pending_value_ = 0.0f;
  std::vector<std::string_view> fields_;
};

// What read_npy accepts: counts (non-negative, exact in float32), or any finite value (latent
// codes).
enum class NpyValues { counts, finite };

// A 2-D array in C or Fortran order (np.save(X.T) writes Fortran order; either reads as the
// array numpy holds), format version 1.0, 2.0 or 3.0, little-endian float32/64 or any integer
// dtype of 8 to 64 bits, signed or unsigned (counts: each value non-negative).
HostDense read_npy(const std::string& path, NpyValues accept = NpyValues::counts);
// Rows [first_row, first_row + row_count) of a C-order .npy, read from where they start (one rank
// of a data-parallel run reads its rows only); an element's position in errors counts from
// first_row.
HostDense read_npy_rows(const std::string& path, std::int64_t first_row, std::int64_t row_count,
                        NpyValues accept = NpyValues::counts);
// The rows of a 2-D .npy, from its header alone.
std::int64_t read_npy_rows_count(const std::string& path);

// A NumPy .npz archive (stored or deflated members, zip64 included): a scipy.sparse matrix that
// scipy.sparse.save_npz wrote (csr, csc or coo; any numeric dtype of counts, int32 or int64
// indices) as CSR, its rows sorted, duplicate entries summed and explicit zeros dropped (the
// sparse result, of the matrix transposed when orientation says so); or an archive of a single
// 2-D array (np.savez(path, X)) as read_npy reads it (the dense result, as stored).
LoadedMatrix read_npz(const std::string& path, Orientation orientation = Orientation::as_stored);

// An AnnData .h5ad file (HDF5): its X, a group that anndata encodes as csr_matrix or csc_matrix
// (attribute shape; datasets data of any numeric dtype of counts, indices and indptr of any
// integer dtype) as CSR, as read_npz reads a scipy.sparse matrix (the sparse result), or a 2-D
// dataset as read_npy reads an array (the dense result, as stored). Errors name the file and the
// object ("x.h5ad: X/data: element 3: negative count -1 ..."). HDF5 does not defend itself
// against crafted files: read only .h5ad files that you made or trust.
LoadedMatrix read_h5ad(const std::string& path, Orientation orientation = Orientation::as_stored);

enum class CsvHeader {
  detect,   // the first line is a header when any of its fields is not a number
  present,  // the first line is a header whatever it holds
  absent,   // the first line is data
};

// Comma-separated numbers, one row per line; blank lines are skipped. A file with no line at all
// is an error; one with a header alone is 0 rows.
HostDense read_csv(const std::string& path, CsvHeader header = CsvHeader::detect);

// Reads by extension: .mtx and .mtx.gz (sparse), .npz (read_npz: sparse, or dense for one
// array), .h5ad (read_h5ad: sparse, or dense for a dense X), .npy and .csv (dense, header
// detected).
LoadedMatrix read_matrix(const std::string& path, Orientation orientation = Orientation::as_stored);

// The formats a writer chooses by the extension of the path it writes.
enum class MatrixFormat { matrix_market, npy, npz, csv, h5ad };

// ".mtx", ".npy", ".npz", ".csv" or ".h5ad".
const char* format_extension(MatrixFormat format);

// The format that path's extension names (in any case), when it is one of writable; otherwise
// throws Error naming the path, its extension and what writer writes, e.g. "x.npz: sae gen
// writes .mtx, .npy or .csv, not '.npz'". Called before any work, a wrong name costs nothing
// and writes nothing.
MatrixFormat output_format(const std::string& path, const std::vector<MatrixFormat>& writable,
                           const std::string& writer);

// Float32, C order, format version 1.0.
void write_npy(const std::string& path, const HostDense& matrix);

// A zip archive of stored .npy members that numpy and scipy read: counts as scipy.sparse.save_npz
// writes a csr matrix (float32 data, int32 indices and indptr, or int64 where nnz needs them;
// scipy.sparse.load_npz), a dense matrix as np.savez(path, X) does (float32 "arr_0";
// np.load(path)["arr_0"]).
void write_npz(const std::string& path, const HostCsr& counts);
void write_npz(const std::string& path, const HostDense& matrix);

// An AnnData .h5ad that anndata and scanpy read (anndata.read_h5ad): counts as X, a csr_matrix
// (float32 data, int32 indices, int32 indptr or int64 where nnz needs it), beside the skeleton an
// AnnData needs: obs and var dataframes indexed "0", "1", ..., and empty obsm, varm, layers, uns,
// obsp and varp.
void write_h5ad(const std::string& path, const HostCsr& counts);
// Codes (latents) as an AnnData of their rows and no variables: obsm[kH5adCodesKey] float32
// (rows x codes), X absent, as anndata itself writes an AnnData made without X.
inline constexpr char kH5adCodesKey[] = "X_sparseae";
void write_h5ad_codes(const std::string& path, const HostDense& codes);

// One line of comma-separated values per row, no header; each value the shortest decimal that
// reads back as the same float32.
void write_csv(const std::string& path, const HostDense& matrix);

// Counts (whole numbers) in format: .mtx 'coordinate integer', .npz scipy.sparse csr, .h5ad
// AnnData X csr_matrix, .npy and .csv dense.
void write_counts(const std::string& path, MatrixFormat format, const HostCsr& counts);
// Any values in format .npy, .npz or .csv (a dense matrix of reals has no sensible .mtx form);
// .h5ad takes values as codes (write_h5ad_codes), the one kind of values this engine writes there.
void write_values(const std::string& path, MatrixFormat format, const HostDense& values);

// 'coordinate integer general' when integer, each value written as an integer (rounding is the
// caller's job: a value that is not a whole number is an error); otherwise 'coordinate real
// general' with 9 significant digits, enough to read back the same float.
void write_matrix_market(const std::string& path, const HostCsr& matrix, bool integer);

}  // namespace sparseae
