#pragma once
// What the readers share: one-line errors that name the file and the position, a line reader
// that reads plain and gzipped text alike, number parsing that ignores the locale, and the checks
// that make a number a count.
#include <zlib.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sparseae/io.hpp"

namespace sparseae::io_detail {

// Throws Error("path: reason").
[[noreturn]] void fail(const std::string& path, const std::string& reason);
// Throws Error("path:line: reason").
[[noreturn]] void fail_at_line(const std::string& path, std::int64_t line,
                               const std::string& reason);

// Throws Error("path: dense matrix RxC has N values") unless matrix holds rows x cols values; for
// the writers, which would otherwise write a file that reads back as another shape.
void require_dense_shape(const std::string& path, const HostDense& matrix);

// Size of the file on disk; throws Error when it cannot be read.
std::int64_t file_size_bytes(const std::string& path);

// Reads a text file line by line, gunzipping it on the way when it is gzipped.
class LineReader {
 public:
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Fills line with the next line, without its line end; false at the end of the file. Throws
  // Error when the file cannot be read or its gzip data is truncated or corrupt.
  bool next(std::string& line);
  // Line number (from 1) of the line next() returned last.
  std::int64_t line_number() const { return line_number_; }
  bool compressed() const { return compressed_; }
  // Bytes of uncompressed text returned so far.
  std::int64_t offset() const;

 private:
  std::string path_;
  gzFile file_ = nullptr;
  bool compressed_ = false;
  std::int64_t line_number_ = 0;
  std::vector<char> chunk_;
};

void split_whitespace(std::string_view text, std::vector<std::string_view>& fields);
// Fields between commas, each without surrounding spaces and tabs.
void split_commas(std::string_view text, std::vector<std::string_view>& fields);

enum class NumberParse { ok, malformed, out_of_range };
// Reads text, all of it, as a decimal integer.
NumberParse parse_integer(std::string_view text, std::int64_t& value);
// Reads text, all of it, as a decimal or scientific number ('inf' and 'nan' included).
NumberParse parse_real(std::string_view text, double& value);

// From here on a double rounds to float infinity: halfway between FLT_MAX and 2^128.
constexpr double kFloatOverflow = 33554431.0 * 0x1p103;
// A value is a count when it is non-negative and float32 holds it (NaN fails both tests).
inline bool is_real_count(double value) { return value >= 0.0 && value < kFloatOverflow; }
// Why value is not a count, for a value is_real_count refused; as_written is its spelling.
std::string real_count_problem(double value, std::string_view as_written);
// An integer is a count when it is non-negative and float32 holds it exactly.
bool is_integer_count(std::int64_t value);
std::string integer_count_problem(std::int64_t value, std::string_view as_written);

std::string quoted(std::string_view text);

// The unsigned integer stored little-endian in count (at most 8) bytes: the fields of .npy and
// zip files.
inline std::uint64_t load_little_endian(const unsigned char* bytes, std::size_t count) {
  std::uint64_t value = 0;
  for (std::size_t i = count; i-- > 0;) value = (value << 8) | bytes[i];
  return value;
}

// A .npy held in memory (a member of a .npz): its dtype, order, shape and data, which points into
// the bytes parse_npy was given (they must outlive it).
struct NpyArray {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  const unsigned char* data = nullptr;
  std::int64_t data_bytes = 0;
  std::int64_t count = 0;  // elements: the product of the shape (1 for a 0-d array)
};
// Throws Error("what: reason") for bytes that are not a whole .npy of a dtype read_npy reads or a
// short string ('|S', '<U'), or whose data does not hold its shape.
NpyArray parse_npy(const std::vector<unsigned char>& bytes, const std::string& what);
// A 0-d or 1-D integer array's values (index arrays).
std::vector<std::int64_t> npy_integers(const NpyArray& array, const std::string& what);
// A 1-D numeric array's values, each checked to be a count; integer: the dtype is an integer one.
std::vector<float> npy_counts(const NpyArray& array, const std::string& what, bool& integer);
// A one-element short string (numpy's '|S3' or '<U3', such as scipy's format name).
std::string npy_text(const NpyArray& array, const std::string& what);
// The bytes of a .npy before its data, as numpy writes them (format 1.0, C order).
std::string npy_prefix(const std::string& descr, const std::vector<std::int64_t>& shape);
// A 2-D numeric array of counts, as read_npy reads a file.
HostDense npy_dense(const NpyArray& array, const std::string& what);

// Builds CSR (rows x cols, as it will be held) from entries in stored order: rows sorted,
// columns sorted within a row, duplicates summed in stored order (in double, then checked to be a
// count like any single value: integer says the values were integers), zeros dropped. Errors
// name the entry's row and column as stored (transposed back when orientation says so).
HostCsr assemble_entries(const std::string& path, bool integer, std::int64_t rows,
                         std::int64_t cols, Orientation orientation,
                         const std::vector<std::int32_t>& entry_rows,
                         const std::vector<ColIndex>& entry_cols,
                         const std::vector<float>& entry_values);

// A scipy.sparse matrix's arrays, as scipy.sparse.save_npz and AnnData store them: format "csr"
// or "csc" (first: indices, second: indptr) or "coo" (first: row, second: col), its shape, and
// its values, already checked to be counts (integer: of an integer dtype).
struct SparseArrays {
  std::string format;
  std::vector<std::int64_t> shape;
  std::vector<float> values;
  bool integer = false;
  std::vector<std::int64_t> first;
  std::vector<std::int64_t> second;
};
// The arrays checked against each other and the shape (one line naming path and what disagrees),
// assembled as assemble_entries does (transposed when orientation says so).
HostCsr sparse_arrays_to_csr(const std::string& path, const SparseArrays& arrays,
                             Orientation orientation);

// Why bytes cannot be allocated: "" when they fit in the memory this process may use (the
// machine's physical memory, or less under an address-space or data-size limit, ulimit -v or -d,
// or under set_memory_cap), otherwise "need 16.0 GiB, more than the 4.0 GiB of memory this
// process may use". Readers ask before they allocate what a file declares, so that a declaration
// far beyond memory is an error message, not an allocation failure or the out-of-memory killer.
std::string memory_shortfall(std::int64_t bytes);
// Caps what memory_shortfall takes as usable (kNoMemoryCap: no cap). For the fuzzers, whose
// sanitizers take the address space that a ulimit would cap, and to test the refusal exactly.
constexpr std::int64_t kNoMemoryCap = INT64_MAX;
void set_memory_cap(std::int64_t bytes);

}  // namespace sparseae::io_detail
