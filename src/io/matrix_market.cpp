// MatrixMarket coordinate files: the reader (plain or gzipped) and the writer.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/atomic_file.hpp"
#include "io/reading.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"

namespace sparseae {

using namespace io_detail;

namespace {

// The shortest entry line, "1 1 1\n"; bounds how many entries a plain file can hold.
constexpr std::int64_t kMinEntryBytes = 6;
// Deflate never compresses better than this, which bounds what a gzipped file can hold.
constexpr std::int64_t kMaxDeflateRatio = 1032;

// Row indices are held in 32 bits while the entries are collected.
static_assert(io_limits::max_rows <= INT32_MAX);

std::string lowercase(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

bool is_blank_or_comment(const std::string& line) {
  const std::size_t first = line.find_first_not_of(" \t");
  return first == std::string::npos || line[first] == '%';
}

// Reads the banner and returns whether the field is 'integer' (otherwise it is 'real').
bool read_banner(LineReader& reader, const std::string& path) {
  std::string line;
  if (!reader.next(line)) fail(path, "empty file (expected a MatrixMarket header)");
  if (lowercase(line).rfind("%%matrixmarket", 0) != 0)
    fail_at_line(path, 1,
                 "not a MatrixMarket file (the first line must start with %%MatrixMarket)");
  std::vector<std::string_view> words;
  split_whitespace(line, words);
  if (words.size() != 5)
    fail_at_line(path, 1,
                 "the banner must read '%%MatrixMarket matrix coordinate integer|real general'");
  const std::string object = lowercase(words[1]), format = lowercase(words[2]),
                    field = lowercase(words[3]), symmetry = lowercase(words[4]);
  if (object != "matrix")
    fail_at_line(path, 1, "object " + quoted(words[1]) + " is not supported (expected matrix)");
  if (format != "coordinate")
    fail_at_line(path, 1, "format " + quoted(words[2]) + " is not supported (expected coordinate)");
  if (field != "integer" && field != "real")
    fail_at_line(path, 1,
                 "field " + quoted(words[3]) + " is not supported (expected integer or real)");
  if (symmetry != "general")
    fail_at_line(path, 1, "symmetry " + quoted(words[4]) + " is not supported (expected general)");
  return field == "integer";
}

struct DeclaredSize {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t entries = 0;
};

// What reading a file of this size holds at its peak (in assemble): the entries as read (row,
// column, value), the same sorted by row, and the result (row offsets, column indices, values).
std::int64_t peak_bytes(const DeclaredSize& size) {
  constexpr auto kEntryBytes =
      static_cast<std::int64_t>(sizeof(std::int32_t) + sizeof(ColIndex) + sizeof(float));
  constexpr auto kSortedBytes = static_cast<std::int64_t>(sizeof(std::pair<ColIndex, float>));
  constexpr auto kResultBytes = static_cast<std::int64_t>(sizeof(ColIndex) + sizeof(float));
  return (size.rows + 1) * static_cast<std::int64_t>(sizeof(RowOffset)) +
         size.entries * (kEntryBytes + kSortedBytes + kResultBytes);
}

// check_memory: whether the whole file will be held (read_matrix_market), so that what it
// declares must fit in memory; the row-block reader holds a block at a time.
DeclaredSize read_size_line(LineReader& reader, const std::string& path, bool check_memory = true) {
  std::string line;
  do {
    if (!reader.next(line)) fail(path, "no size line after the banner");
  } while (is_blank_or_comment(line));
  const std::int64_t at = reader.line_number();
  std::vector<std::string_view> words;
  split_whitespace(line, words);
  DeclaredSize size;
  if (words.size() != 3 || parse_integer(words[0], size.rows) != NumberParse::ok ||
      parse_integer(words[1], size.cols) != NumberParse::ok ||
      parse_integer(words[2], size.entries) != NumberParse::ok || size.rows < 0 || size.cols < 0 ||
      size.entries < 0)
    fail_at_line(path, at,
                 "the size line must be 'rows columns entries' (non-negative integers), found " +
                     quoted(line));
  if (size.rows > io_limits::max_rows)
    fail_at_line(path, at,
                 std::to_string(size.rows) + " rows exceed the limit of " +
                     std::to_string(io_limits::max_rows));
  if (size.cols > io_limits::max_cols)
    fail_at_line(path, at,
                 std::to_string(size.cols) + " columns exceed the limit of " +
                     std::to_string(io_limits::max_cols));
  if (size.entries > io_limits::max_nonzeros)
    fail_at_line(path, at,
                 std::to_string(size.entries) + " entries exceed the limit of " +
                     std::to_string(io_limits::max_nonzeros));
  const std::int64_t file_bytes = file_size_bytes(path);
  const std::int64_t text_bytes =
      reader.compressed() ? file_bytes * kMaxDeflateRatio : file_bytes - reader.offset();
  // The last entry may lack its line end, hence the + 1.
  const std::int64_t max_entries = (text_bytes + 1) / kMinEntryBytes;
  if (size.entries > max_entries)
    fail_at_line(path, at,
                 "declares " + std::to_string(size.entries) + " entries, more than its " +
                     std::to_string(file_bytes) + (reader.compressed() ? " compressed" : "") +
                     " bytes can hold");
  const std::string shortfall = check_memory ? memory_shortfall(peak_bytes(size)) : "";
  if (!shortfall.empty())
    fail_at_line(path, at,
                 std::to_string(size.rows) + " rows and " + std::to_string(size.entries) +
                     " entries " + shortfall);
  return size;
}

std::int64_t parse_index(std::string_view text, std::int64_t size, const char* what,
                         const std::string& path, std::int64_t line) {
  std::int64_t index = 0;
  const NumberParse parsed = parse_integer(text, index);
  if (parsed == NumberParse::malformed)
    fail_at_line(path, line, std::string(what) + " index " + quoted(text) + " is not an integer");
  if (parsed == NumberParse::out_of_range || index < 1 || index > size)
    fail_at_line(path, line,
                 std::string(what) + " index " + std::string(text) + " outside [1, " +
                     std::to_string(size) + "]");
  return index - 1;
}

float parse_integer_value(std::string_view text, const std::string& path, std::int64_t line) {
  std::int64_t count = 0;
  double real = 0.0;
  switch (parse_integer(text, count)) {
    case NumberParse::ok:
      break;
    case NumberParse::out_of_range:  // beyond 64 bits: too large, or too negative
      count = text.front() == '-' ? -1 : INT64_MAX;
      break;
    case NumberParse::malformed:
      if (parse_real(text, real) != NumberParse::malformed)
        fail_at_line(
            path, line,
            "value " + std::string(text) + " is not an integer (the header declares integer)");
      fail_at_line(path, line, "value " + quoted(text) + " is not a number");
  }
  if (!is_integer_count(count)) fail_at_line(path, line, integer_count_problem(count, text));
  return static_cast<float>(count);
}

float parse_real_value(std::string_view text, const std::string& path, std::int64_t line) {
  double value = 0.0;
  switch (parse_real(text, value)) {
    case NumberParse::ok:
      break;
    case NumberParse::out_of_range:
      fail_at_line(path, line, "value " + std::string(text) + " is outside the float32 range");
    case NumberParse::malformed:
      fail_at_line(path, line, "value " + quoted(text) + " is not a number");
  }
  if (!is_real_count(value)) fail_at_line(path, line, real_count_problem(value, text));
  return static_cast<float>(value);
}

// Whether a sum of entries (each a count already) is a count, as a single value must be.
bool is_count_sum(double sum, bool integer) {
  return integer ? sum <= static_cast<double>(io_limits::max_exact_count) : is_real_count(sum);
}

// Why a sum of duplicate entries that is_count_sum refused is not a count.
std::string duplicate_sum_problem(double sum, bool integer) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", sum);
  return std::string("duplicate entries sum to ") + text +
         (integer ? ", more than " + std::to_string(io_limits::max_exact_count) +
                        ", the largest count float32 holds exactly"
                  : std::string(", outside the float32 range"));
}

}  // namespace

namespace io_detail {

HostCsr assemble_entries(const std::string& path, bool integer, std::int64_t rows,
                         std::int64_t cols, Orientation orientation,
                         const std::vector<std::int32_t>& entry_rows,
                         const std::vector<ColIndex>& entry_cols,
                         const std::vector<float>& entry_values) {
  const DeclaredSize size{rows, cols, static_cast<std::int64_t>(entry_values.size())};
  HostCsr csr;
  csr.rows = size.rows;
  csr.cols = size.cols;
  // Counting sort by row within the result's own row offsets: after the counts and their prefix
  // sum, offsets[r] is where row r starts; placing advances it to where row r ends.
  std::vector<RowOffset>& offsets = csr.row_offsets;
  offsets.assign(static_cast<std::size_t>(size.rows) + 1, 0);
  for (const std::int32_t row : entry_rows) ++offsets[static_cast<std::size_t>(row) + 1];
  for (std::size_t r = 0; r + 1 < offsets.size(); ++r) offsets[r + 1] += offsets[r];
  std::vector<std::pair<ColIndex, float>> by_row(entry_rows.size());
  for (std::size_t k = 0; k < entry_rows.size(); ++k)
    by_row[static_cast<std::size_t>(offsets[static_cast<std::size_t>(entry_rows[k])]++)] = {
        entry_cols[k], entry_values[k]};

  csr.col_indices.reserve(by_row.size());
  csr.values.reserve(by_row.size());
  RowOffset row_begin = 0;
  for (std::int64_t r = 0; r < size.rows; ++r) {
    const RowOffset row_end = offsets[static_cast<std::size_t>(r)];
    offsets[static_cast<std::size_t>(r)] = csr.nnz();
    const auto first = by_row.begin() + row_begin;
    const auto last = by_row.begin() + row_end;
    std::stable_sort(first, last, [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto entry = first; entry != last;) {
      const ColIndex col = entry->first;
      double sum = 0.0;
      for (; entry != last && entry->first == col; ++entry) sum += entry->second;
      if (!is_count_sum(sum, integer)) {
        const bool transposed = orientation == Orientation::transposed;
        const std::int64_t file_row = transposed ? col : r, file_col = transposed ? r : col;
        fail(path, "row " + std::to_string(file_row + 1) + ", column " +
                       std::to_string(file_col + 1) + ": " + duplicate_sum_problem(sum, integer));
      }
      if (sum != 0.0) {
        csr.col_indices.push_back(col);
        csr.values.push_back(static_cast<float>(sum));
      }
    }
    row_begin = row_end;
  }
  offsets.back() = csr.nnz();
  csr.col_indices.shrink_to_fit();
  csr.values.shrink_to_fit();
  return csr;
}

}  // namespace io_detail

HostCsr read_matrix_market(const std::string& path, Orientation orientation) {
  LineReader reader(path);
  const bool integer = read_banner(reader, path);
  const DeclaredSize size = read_size_line(reader, path);
  const bool transposed = orientation == Orientation::transposed;

  std::vector<std::int32_t> entry_rows;
  std::vector<ColIndex> entry_cols;
  std::vector<float> entry_values;
  // A gzipped file's declared count is bounded only loosely by its size, so its vectors grow
  // with what the file really holds rather than trusting the declaration up front.
  if (!reader.compressed()) {
    entry_rows.reserve(static_cast<std::size_t>(size.entries));
    entry_cols.reserve(static_cast<std::size_t>(size.entries));
    entry_values.reserve(static_cast<std::size_t>(size.entries));
  }

  std::string line;
  std::vector<std::string_view> fields;
  std::int64_t entries = 0;
  while (reader.next(line)) {
    if (is_blank_or_comment(line)) continue;
    const std::int64_t at = reader.line_number();
    if (entries == size.entries)
      fail_at_line(path, at, "more entries than the " + std::to_string(size.entries) + " declared");
    split_whitespace(line, fields);
    if (fields.size() != 3)
      fail_at_line(
          path, at,
          "entry has " + std::to_string(fields.size()) + " fields, expected 3 (row column value)");
    const std::int64_t row = parse_index(fields[0], size.rows, "row", path, at);
    const std::int64_t col = parse_index(fields[1], size.cols, "column", path, at);
    entry_rows.push_back(static_cast<std::int32_t>(transposed ? col : row));
    entry_cols.push_back(static_cast<ColIndex>(transposed ? row : col));
    entry_values.push_back(integer ? parse_integer_value(fields[2], path, at)
                                   : parse_real_value(fields[2], path, at));
    ++entries;
  }
  if (entries != size.entries)
    fail(path, "declares " + std::to_string(size.entries) + " entries but has " +
                   std::to_string(entries));
  const DeclaredSize result_size =
      transposed ? DeclaredSize{size.cols, size.rows, size.entries} : size;
  return assemble_entries(path, integer, result_size.rows, result_size.cols, orientation,
                          entry_rows, entry_cols, entry_values);
}

MatrixMarketRowReader::MatrixMarketRowReader(const std::string& path)
    : path_(path), reader_(std::make_unique<LineReader>(path)) {
  integer_ = read_banner(*reader_, path);
  const DeclaredSize size = read_size_line(*reader_, path, false);
  rows_ = size.rows;
  cols_ = size.cols;
  entries_ = size.entries;
  read_ahead();
}

MatrixMarketRowReader::~MatrixMarketRowReader() = default;

void MatrixMarketRowReader::read_ahead() {
  std::string line;
  while (reader_->next(line)) {
    if (is_blank_or_comment(line)) continue;
    const std::int64_t at = reader_->line_number();
    if (entries_read_ == entries_)
      fail_at_line(path_, at, "more entries than the " + std::to_string(entries_) + " declared");
    split_whitespace(line, fields_);
    if (fields_.size() != 3)
      fail_at_line(
          path_, at,
          "entry has " + std::to_string(fields_.size()) + " fields, expected 3 (row column value)");
    const std::int64_t row = parse_index(fields_[0], rows_, "row", path_, at);
    if (row < pending_row_)
      throw MatrixMarketOrderError(path_ + ":" + std::to_string(at) + ": row " +
                                   std::to_string(row + 1) + " after row " +
                                   std::to_string(pending_row_ + 1) +
                                   ": the entries are not sorted by row");
    pending_row_ = row;
    pending_col_ = static_cast<ColIndex>(parse_index(fields_[1], cols_, "column", path_, at));
    pending_value_ = integer_ ? parse_integer_value(fields_[2], path_, at)
                              : parse_real_value(fields_[2], path_, at);
    ++entries_read_;
    has_pending_ = true;
    return;
  }
  has_pending_ = false;
  if (entries_read_ != entries_)
    fail(path_, "declares " + std::to_string(entries_) + " entries but has " +
                    std::to_string(entries_read_));
}

void MatrixMarketRowReader::next(std::int64_t max_rows, HostCsr& block) {
  require(max_rows > 0, path_ + ": rows per block must be positive");
  const std::int64_t first = next_row_;
  const std::int64_t end = std::min(rows_, first + max_rows);
  block.rows = end - first;
  block.cols = cols_;
  block.row_offsets.assign(1, 0);
  block.col_indices.clear();
  block.values.clear();
  std::vector<std::pair<ColIndex, float>> row;
  for (std::int64_t r = first; r < end; ++r) {
    row.clear();
    while (has_pending_ && pending_row_ == r) {
      row.emplace_back(pending_col_, pending_value_);
      read_ahead();
    }
    // Columns sorted and duplicates summed as read_matrix_market does.
    std::stable_sort(row.begin(), row.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto entry = row.begin(); entry != row.end();) {
      const ColIndex col = entry->first;
      double sum = 0.0;
      for (; entry != row.end() && entry->first == col; ++entry) sum += entry->second;
      if (!is_count_sum(sum, integer_))
        fail(path_, "row " + std::to_string(r + 1) + ", column " + std::to_string(col + 1) +
                        ": " + duplicate_sum_problem(sum, integer_));
      if (sum != 0.0) {
        block.col_indices.push_back(col);
        block.values.push_back(static_cast<float>(sum));
      }
    }
    block.row_offsets.push_back(static_cast<RowOffset>(block.values.size()));
  }
  next_row_ = end;
}

void write_matrix_market(const std::string& path, const HostCsr& matrix, bool integer) {
  try {
    matrix.validate();
  } catch (const Error& error) {
    throw Error(path + ": " + error.what());
  }
  AtomicFile file(path);
  std::string text = std::string("%%MatrixMarket matrix coordinate ") +
                     (integer ? "integer" : "real") + " general\n" + std::to_string(matrix.rows) +
                     " " + std::to_string(matrix.cols) + " " + std::to_string(matrix.nnz()) + "\n";
  constexpr std::size_t kFlushBytes = 1 << 20;
  char number[64];  // a float in fixed notation takes at most 40 characters
  for (std::int64_t r = 0; r < matrix.rows; ++r) {
    for (RowOffset k = matrix.row_offsets[r]; k < matrix.row_offsets[r + 1]; ++k) {
      const float value = matrix.values[k];
      if (!std::isfinite(value) || (integer && std::trunc(value) != value)) {
        const auto end = std::to_chars(number, number + sizeof number, value);
        throw Error(path + ": entry " + std::to_string(k + 1) + " (row " + std::to_string(r + 1) +
                    ", column " + std::to_string(matrix.col_indices[k] + 1) + "): value " +
                    std::string(number, end.ptr) +
                    (std::isfinite(value) ? " is not a whole number" : " is not finite"));
      }
      const auto end =
          integer
              ? std::to_chars(number, number + sizeof number, value, std::chars_format::fixed, 0)
              : std::to_chars(number, number + sizeof number, value, std::chars_format::general, 9);
      text += std::to_string(r + 1);
      text += ' ';
      text += std::to_string(matrix.col_indices[k] + 1);
      text += ' ';
      text.append(number, end.ptr);
      text += '\n';
      if (text.size() >= kFlushBytes) {
        file.write(text);
        text.clear();
      }
    }
  }
  file.write(text);
  file.commit();
}

}  // namespace sparseae
