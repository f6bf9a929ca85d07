// NumPy .npy files: the reader (2-D, C or Fortran order, float and integer dtypes) and the
// float32 writer.
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/text_cursor.hpp"
#include "io/atomic_file.hpp"
#include "io/reading.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"

namespace sparseae {

using namespace io_detail;

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicBytes = 6;

enum class DtypeKind { real, signed_integer, unsigned_integer };

struct DtypeInfo {
  const char* descr;
  DtypeKind kind;
  std::size_t bytes;
};

// What numpy writes on a little-endian machine: '|' for one-byte types, '<' for the others.
constexpr DtypeInfo kDtypes[] = {{"<f4", DtypeKind::real, 4},
                                 {"<f8", DtypeKind::real, 8},
                                 {"|i1", DtypeKind::signed_integer, 1},
                                 {"<i2", DtypeKind::signed_integer, 2},
                                 {"<i4", DtypeKind::signed_integer, 4},
                                 {"<i8", DtypeKind::signed_integer, 8},
                                 {"|u1", DtypeKind::unsigned_integer, 1},
                                 {"<u2", DtypeKind::unsigned_integer, 2},
                                 {"<u4", DtypeKind::unsigned_integer, 4},
                                 {"<u8", DtypeKind::unsigned_integer, 8}};

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
};

// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False,
// 'shape': (3, 4), }, read here by a parser that knows just the values numpy writes in it.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path)
      : cursor_(text, path + ": malformed header", TextCursor::ErrorOffset::omitted) {}

  NpyHeader parse() {
    NpyHeader header;
    bool has_descr = false, has_order = false, has_shape = false;
    cursor_.expect('{');
    while (!cursor_.consume('}')) {
      const std::string key = cursor_.quoted_string(kQuotes);
      cursor_.expect(':');
      if (key == "descr") {
        header.descr = cursor_.quoted_string(kQuotes);
        has_descr = true;
      } else if (key == "fortran_order") {
        header.fortran_order = boolean_literal();
        has_order = true;
      } else if (key == "shape") {
        header.shape = integer_tuple();
        has_shape = true;
      } else {
        cursor_.fail("unexpected key '" + key + "'");
      }
      if (!cursor_.consume(',')) {
        cursor_.expect('}');
        break;
      }
    }
    if (!has_descr || !has_order || !has_shape)
      cursor_.fail("it lacks one of 'descr', 'fortran_order', 'shape'");
    return header;
  }

 private:
  static constexpr std::string_view kQuotes = "'\"";

  bool boolean_literal() {
    if (cursor_.consume_word("True")) return true;
    if (cursor_.consume_word("False")) return false;
    cursor_.fail("'fortran_order' is not True or False");
  }
  std::vector<std::int64_t> integer_tuple() {
    std::vector<std::int64_t> values;
    cursor_.expect('(');
    while (!cursor_.consume(')')) {
      const std::string_view token = cursor_.number_token();
      std::int64_t value = 0;
      const auto result = std::from_chars(token.data(), token.data() + token.size(), value);
      if (result.ec != std::errc() || result.ptr != token.data() + token.size() || value < 0)
        cursor_.fail("'shape' is not a tuple of sizes");
      values.push_back(value);
      if (!cursor_.consume(',')) {
        cursor_.expect(')');
        break;
      }
    }
    return values;
  }

  TextCursor cursor_;
};

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i)
    text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

void store_little_endian(std::uint32_t value, unsigned char* bytes) {
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
}

template <typename To, typename From>
To bit_cast(From from) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &from, sizeof to);
  return to;
}

// The signed integer whose two's complement is bits, bytes wide (the bytes above it zero).
std::int64_t sign_extended(std::uint64_t bits, std::size_t bytes) {
  const std::uint64_t sign = std::uint64_t{1} << (8 * bytes - 1);
  return bit_cast<std::int64_t>((bits ^ sign) - sign);
}

// The shortest decimal that reads back as value.
template <typename Number>
std::string decimal(Number value) {
  char text[32];
  return std::string(text, std::to_chars(text, text + sizeof text, value).ptr);
}

struct CloseFile {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using File = std::unique_ptr<std::FILE, CloseFile>;

void read_exactly(std::FILE* file, void* data, std::size_t bytes, const std::string& path,
                  const char* what) {
  if (std::fread(data, 1, bytes, file) != bytes) {
    if (std::ferror(file)) fail(path, std::string("cannot read: ") + std::strerror(errno));
    fail(path, std::string("truncated ") + what);
  }
}

// The value of an integer dtype's bits. Beyond int64 (uint64 from 2^63) is beyond any count or
// index: clamped, and refused by the caller's range check.
std::int64_t integer_value(const DtypeInfo& dtype, std::uint64_t bits) {
  return dtype.kind == DtypeKind::unsigned_integer
             ? static_cast<std::int64_t>(
                   std::min<std::uint64_t>(bits, static_cast<std::uint64_t>(INT64_MAX)))
             : sign_extended(bits, dtype.bytes);
}

// One element of dtype at bytes as float32, checked as accept says; fail_element(reason) throws.
template <typename Fail>
float element_value(const DtypeInfo& dtype, const unsigned char* bytes, NpyValues accept,
                    const Fail& fail_element) {
  const std::uint64_t bits = load_little_endian(bytes, dtype.bytes);
  if (dtype.kind == DtypeKind::real) {
    const double real = dtype.bytes == 4 ? bit_cast<float>(static_cast<std::uint32_t>(bits))
                                         : bit_cast<double>(bits);
    if (accept == NpyValues::finite) {
      if (!(std::fabs(real) < kFloatOverflow)) fail_element("not a finite float32 value");
    } else if (!is_real_count(real)) {
      fail_element(real_count_problem(real, decimal(real)));
    }
    return static_cast<float>(real);
  }
  const std::int64_t integer = integer_value(dtype, bits);
  if (accept == NpyValues::counts && !is_integer_count(integer))
    fail_element(integer_count_problem(
        integer, dtype.kind == DtypeKind::unsigned_integer ? decimal(bits) : decimal(integer)));
  return static_cast<float>(integer);
}

// Elements [first, first + n) of a 2-D array stored in C or Fortran order, their bytes at bytes,
// into dense (rows x cols, C order), each checked as accept says; errors name "what: element
// [row, col]".
void store_elements(const DtypeInfo& dtype, bool fortran_order, const unsigned char* bytes,
                    std::int64_t first, std::int64_t n, NpyValues accept, HostDense& dense,
                    const std::string& what) {
  for (std::int64_t i = 0; i < n; ++i) {
    // Fortran order stores the array column by column: element i is (i % rows, i / rows).
    const std::int64_t index = first + i;
    const std::int64_t row = fortran_order ? index % dense.rows : index / dense.cols;
    const std::int64_t col = fortran_order ? index / dense.rows : index % dense.cols;
    dense.values[static_cast<std::size_t>(row * dense.cols + col)] =
        element_value(dtype, bytes + i * dtype.bytes, accept, [&](const std::string& reason) {
          fail(what,
               "element [" + std::to_string(row) + ", " + std::to_string(col) + "]: " + reason);
        });
  }
}

const DtypeInfo* find_dtype(const std::string& descr) {
  for (const DtypeInfo& known : kDtypes)
    if (descr == known.descr) return &known;
  return nullptr;
}

// Where a .npy's header text starts and how long it is, from the first bytes of the file (size
// of them, at least its magic and version; 12 hold the longest prefix). Throws for a file that is
// not a .npy, a version this reader does not know, or a prefix cut short.
struct HeaderSpan {
  std::size_t start = 0;
  std::size_t length = 0;
};
HeaderSpan header_span(const unsigned char* bytes, std::size_t size, const std::string& path) {
  if (size == 0) fail(path, "empty file (expected a .npy header)");
  if (size < kMagicBytes + 2) fail(path, "truncated header");
  if (std::memcmp(bytes, kMagic, kMagicBytes) != 0) fail(path, "not a .npy file (bad magic)");
  const int major = bytes[kMagicBytes], minor = bytes[kMagicBytes + 1];
  if (major < 1 || major > 3 || minor != 0)
    fail(path, "unsupported format version " + std::to_string(major) + "." + std::to_string(minor) +
                   " (expected 1.0, 2.0 or 3.0)");
  // Version 1.0 stores the header length in 2 bytes, later versions in 4.
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  if (size < kMagicBytes + 2 + length_bytes) fail(path, "truncated header");
  return {kMagicBytes + 2 + length_bytes,
          static_cast<std::size_t>(load_little_endian(bytes + kMagicBytes + 2, length_bytes))};
}

NpyHeader read_header(std::FILE* file, const std::string& path, std::int64_t& data_offset) {
  const std::int64_t file_bytes = file_size_bytes(path);
  unsigned char prefix[12];
  const auto prefix_bytes = static_cast<std::size_t>(std::min<std::int64_t>(file_bytes, 12));
  read_exactly(file, prefix, prefix_bytes, path, "header");
  const HeaderSpan span = header_span(prefix, prefix_bytes, path);
  data_offset = static_cast<std::int64_t>(span.start + span.length);
  if (data_offset > file_bytes) fail(path, "truncated header");
  std::string text(span.length, '\0');
  if (std::fseek(file, static_cast<long>(span.start), SEEK_SET) != 0)
    fail(path, std::string("cannot read: ") + std::strerror(errno));
  read_exactly(file, text.data(), span.length, path, "header");
  return HeaderParser(text, path).parse();
}

}  // namespace

HostDense read_npy(const std::string& path, NpyValues accept) {
  return read_npy_rows(path, 0, -1, accept);
}

std::int64_t read_npy_rows_count(const std::string& path) {
  File file(std::fopen(path.c_str(), "rb"));
  if (!file) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::int64_t data_offset = 0;
  const NpyHeader header = read_header(file.get(), path, data_offset);
  if (header.shape.size() != 2)
    fail(path, "expected a 2-D array, found shape " + shape_text(header.shape));
  return header.shape[0];
}

HostDense read_npy_rows(const std::string& path, std::int64_t first_row, std::int64_t row_count,
                        NpyValues accept) {
  File file(std::fopen(path.c_str(), "rb"));
  if (!file) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::int64_t data_offset = 0;
  const NpyHeader header = read_header(file.get(), path, data_offset);

  const DtypeInfo* dtype = find_dtype(header.descr);
  if (dtype == nullptr)
    fail(path, "unsupported dtype '" + header.descr +
                   "' (expected little-endian float32, float64 or an integer type)");
  if (header.shape.size() != 2)
    fail(path, "expected a 2-D array, found shape " + shape_text(header.shape));
  const std::int64_t rows = header.shape[0], cols = header.shape[1];
  if (rows > io_limits::max_rows || cols > io_limits::max_cols ||
      (cols > 0 && rows > io_limits::max_dense_values / cols))
    fail(path, "shape " + shape_text(header.shape) + " exceeds the limit of " +
                   std::to_string(io_limits::max_dense_values) + " values");
  const std::int64_t data_bytes = rows * cols * static_cast<std::int64_t>(dtype->bytes);
  const std::int64_t file_data_bytes = file_size_bytes(path) - data_offset;
  if (file_data_bytes != data_bytes)
    fail(path, "holds " + std::to_string(file_data_bytes) + " data bytes, shape " +
                   shape_text(header.shape) + " of '" + header.descr + "' needs " +
                   std::to_string(data_bytes));
  // A range of rows (row_count >= 0) is read from where it starts: C order keeps a row together.
  const bool whole = row_count < 0;
  if (!whole) {
    if (header.fortran_order)
      fail(path,
           "stored in Fortran order (column by column), so a range of its rows is not "
           "together in the file: save it in C order (np.save(path, np.ascontiguousarray(X)))");
    if (first_row < 0 || first_row + row_count > rows)
      fail(path, "rows " + std::to_string(first_row) + " to " +
                     std::to_string(first_row + row_count) + " asked of " + std::to_string(rows));
    data_offset += first_row * cols * static_cast<std::int64_t>(dtype->bytes);
    if (std::fseek(file.get(), static_cast<long>(data_offset), SEEK_SET) != 0)
      fail(path, std::string("cannot read: ") + std::strerror(errno));
  }
  const std::int64_t held_rows = whole ? rows : row_count;
  const std::int64_t count = held_rows * cols;
  const std::string shortfall = memory_shortfall(count * static_cast<std::int64_t>(sizeof(float)));
  if (!shortfall.empty())
    fail(path, "shape " + shape_text(header.shape) + " as float32 values " + shortfall);

  HostDense dense;
  dense.rows = held_rows;
  dense.cols = cols;
  dense.values.resize(static_cast<std::size_t>(count));
  constexpr std::int64_t kChunkValues = 1 << 16;
  std::vector<unsigned char> chunk(static_cast<std::size_t>(kChunkValues) * dtype->bytes);
  for (std::int64_t first = 0; first < count; first += kChunkValues) {
    const std::int64_t n = std::min(kChunkValues, count - first);
    read_exactly(file.get(), chunk.data(), static_cast<std::size_t>(n) * dtype->bytes, path,
                 "data");
    store_elements(*dtype, header.fortran_order, chunk.data(), first, n, accept, dense, path);
  }
  return dense;
}

namespace io_detail {

NpyArray parse_npy(const std::vector<unsigned char>& bytes, const std::string& what) {
  const HeaderSpan span = header_span(bytes.data(), bytes.size(), what);
  if (span.start + span.length > bytes.size()) fail(what, "truncated header");
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + span.start,
                              span.length);
  const NpyHeader header = HeaderParser(text, what).parse();
  NpyArray array;
  array.descr = header.descr;
  array.fortran_order = header.fortran_order;
  array.shape = header.shape;
  array.data = bytes.data() + span.start + span.length;
  const auto data_bytes = static_cast<std::int64_t>(bytes.size() - span.start - span.length);
  const bool text_dtype =
      !header.descr.empty() && (header.descr[1] == 'S' || header.descr[1] == 'U');
  std::int64_t count = 1;
  for (const std::int64_t extent : header.shape) {
    if (extent > 0 && count > io_limits::max_dense_values / extent)
      fail(what, "shape " + shape_text(header.shape) + " exceeds the limit of " +
                     std::to_string(io_limits::max_dense_values) + " values");
    count *= extent;
  }
  array.count = count;
  array.data_bytes = data_bytes;
  if (text_dtype) return array;  // npy_text checks its own length
  const DtypeInfo* dtype = find_dtype(header.descr);
  if (dtype == nullptr)
    fail(what, "unsupported dtype '" + header.descr +
                   "' (expected little-endian float32, float64 or an integer type)");
  if (data_bytes != count * static_cast<std::int64_t>(dtype->bytes))
    fail(what, "holds " + std::to_string(data_bytes) + " data bytes, shape " +
                   shape_text(header.shape) + " of '" + header.descr + "' needs " +
                   std::to_string(count * static_cast<std::int64_t>(dtype->bytes)));
  return array;
}

std::vector<std::int64_t> npy_integers(const NpyArray& array, const std::string& what) {
  const DtypeInfo* dtype = find_dtype(array.descr);
  if (dtype == nullptr || dtype->kind == DtypeKind::real || array.shape.size() > 1)
    fail(what, "expected a 1-D integer array, found '" + array.descr + "' of shape " +
                   shape_text(array.shape));
  std::vector<std::int64_t> values(static_cast<std::size_t>(array.count));
  for (std::int64_t i = 0; i < array.count; ++i) {
    values[static_cast<std::size_t>(i)] =
        integer_value(*dtype, load_little_endian(array.data + i * dtype->bytes, dtype->bytes));
  }
  return values;
}

std::vector<float> npy_counts(const NpyArray& array, const std::string& what, bool& integer) {
  const DtypeInfo* dtype = find_dtype(array.descr);
  if (dtype == nullptr || array.shape.size() != 1)
    fail(what, "expected a 1-D numeric array, found '" + array.descr + "' of shape " +
                   shape_text(array.shape));
  integer = dtype->kind != DtypeKind::real;
  std::vector<float> values(static_cast<std::size_t>(array.count));
  for (std::int64_t i = 0; i < array.count; ++i)
    values[static_cast<std::size_t>(i)] = element_value(
        *dtype, array.data + i * dtype->bytes, NpyValues::counts, [&](const std::string& reason) {
          fail(what, "element " + std::to_string(i) + ": " + reason);
        });
  return values;
}

std::string npy_text(const NpyArray& array, const std::string& what) {
  // '|S3' holds bytes, '<U3' UTF-32 code units (ASCII here), each padded with zeros to the width.
  const bool bytes = array.descr.size() > 2 && array.descr[1] == 'S';
  const bool unicode = array.descr.size() > 2 && array.descr[0] == '<' && array.descr[1] == 'U';
  std::int64_t width = 0;
  if ((!bytes && !unicode) || array.count != 1 ||
      parse_integer(std::string_view(array.descr).substr(2), width) != NumberParse::ok ||
      width < 0 || width > 64 || array.data_bytes < (bytes ? 1 : 4) * width)
    fail(what, "expected a short string, found '" + array.descr + "' of shape " +
                   shape_text(array.shape));
  std::string text;
  for (std::int64_t i = 0; i < width; ++i) {
    const unsigned char* unit = array.data + (bytes ? i : 4 * i);
    const auto code = static_cast<std::uint32_t>(load_little_endian(unit, bytes ? 1 : 4));
    if (code == 0) break;
    text += code < 128 ? static_cast<char>(code) : '?';
  }
  return text;
}

HostDense npy_dense(const NpyArray& array, const std::string& what) {
  const DtypeInfo* dtype = find_dtype(array.descr);
  if (dtype == nullptr || array.shape.size() != 2)
    fail(what, "expected a 2-D numeric array, found '" + array.descr + "' of shape " +
                   shape_text(array.shape));
  HostDense dense;
  dense.rows = array.shape[0];
  dense.cols = array.shape[1];
  if (dense.rows > io_limits::max_rows || dense.cols > io_limits::max_cols)
    fail(what, "shape " + shape_text(array.shape) + " exceeds the row or column limit");
  dense.values.resize(static_cast<std::size_t>(array.count));
  store_elements(*dtype, array.fortran_order, array.data, 0, array.count, NpyValues::counts, dense,
                 what);
  return dense;
}

std::string npy_prefix(const std::string& descr, const std::vector<std::int64_t>& shape) {
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  // numpy pads the header with spaces so that the data starts on a 64-byte boundary.
  const std::size_t prefix_bytes = kMagicBytes + 2 + 2;
  header.append(63 - (prefix_bytes + header.size()) % 64, ' ');
  header += '\n';
  std::string prefix = "\x93NUMPY";
  prefix += '\x01';
  prefix += '\x00';
  prefix += static_cast<char>(header.size() & 0xff);
  prefix += static_cast<char>(header.size() >> 8);
  return prefix + header;
}

}  // namespace io_detail

void write_npy(const std::string& path, const HostDense& matrix) {
  require_dense_shape(path, matrix);
  AtomicFile file(path);
  file.write(npy_prefix("<f4", {matrix.rows, matrix.cols}));
  constexpr std::size_t kChunkValues = 1 << 16;
  std::vector<unsigned char> chunk(kChunkValues * 4);
  for (std::size_t first = 0; first < matrix.values.size(); first += kChunkValues) {
    const std::size_t n = std::min(kChunkValues, matrix.values.size() - first);
    for (std::size_t i = 0; i < n; ++i)
      store_little_endian(bit_cast<std::uint32_t>(matrix.values[first + i]), &chunk[i * 4]);
    file.write(chunk.data(), n * 4);
  }
  file.commit();
}

}  // namespace sparseae
