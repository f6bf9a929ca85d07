#include "io/reading.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/memory_size.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"

namespace sparseae::io_detail {

void fail(const std::string& path, const std::string& reason) { throw Error(path + ": " + reason); }

void fail_at_line(const std::string& path, std::int64_t line, const std::string& reason) {
  throw Error(path + ":" + std::to_string(line) + ": " + reason);
}

std::int64_t file_size_bytes(const std::string& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) fail(path, "cannot open: " + error.message());
  return static_cast<std::int64_t>(size);
}

LineReader::LineReader(const std::string& path) : path_(path), chunk_(1 << 16) {
  errno = 0;
  file_ = gzopen(path.c_str(), "rb");
  if (file_ == nullptr)
    fail(path,
         std::string("cannot open: ") + (errno != 0 ? std::strerror(errno) : "out of memory"));
  gzbuffer(file_, 1 << 18);
  compressed_ = gzdirect(file_) == 0;
}

LineReader::~LineReader() { gzclose(file_); }

bool LineReader::next(std::string& line) {
  line.clear();
  // A line longer than the chunk arrives in pieces; only the last one ends in '\n'.
  for (;;) {
    const char* piece = gzgets(file_, chunk_.data(), static_cast<int>(chunk_.size()));
    if (piece != nullptr) {
      const std::size_t length = std::strlen(piece);
      line.append(piece, length);
      if (length > 0 && piece[length - 1] == '\n') break;
    }
    // At the end of the data, gzip data cut short still yields the part of a line it holds:
    // look for the error before taking that part for a line.
    int status = Z_OK;
    const char* message = gzerror(file_, &status);
    if (status == Z_ERRNO) fail(path_, std::string("cannot read: ") + std::strerror(errno));
    if (status != Z_OK) {
      std::string reason = message;  // zlib starts it with "<path>: "
      if (reason.rfind(path_ + ": ", 0) == 0) reason.erase(0, path_.size() + 2);
      fail(path_, "truncated or corrupt gzip data (" + reason + ")");
    }
    if (piece == nullptr) {
      if (line.empty()) return false;
      break;
    }
  }
  ++line_number_;
  if (!line.empty() && line.back() == '\n') line.pop_back();
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

std::int64_t LineReader::offset() const { return static_cast<std::int64_t>(gztell(file_)); }

void split_whitespace(std::string_view text, std::vector<std::string_view>& fields) {
  fields.clear();
  std::size_t position = 0;
  for (;;) {
    position = text.find_first_not_of(" \t", position);
    if (position == std::string_view::npos) return;
    const std::size_t end = std::min(text.find_first_of(" \t", position), text.size());
    fields.push_back(text.substr(position, end - position));
    position = end;
  }
}

void split_commas(std::string_view text, std::vector<std::string_view>& fields) {
  fields.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    std::string_view field = text.substr(start, comma - start);
    const std::size_t first = field.find_first_not_of(" \t");
    field = first == std::string_view::npos
                ? std::string_view()
                : field.substr(first, field.find_last_not_of(" \t") - first + 1);
    fields.push_back(field);
    if (comma == text.size()) return;
    start = comma + 1;
  }
}

namespace {

template <typename Number>
NumberParse parse_number(std::string_view text, Number& value) {
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (result.ptr != end || result.ec == std::errc::invalid_argument) return NumberParse::malformed;
  if (result.ec == std::errc::result_out_of_range) return NumberParse::out_of_range;
  return NumberParse::ok;
}

}  // namespace

NumberParse parse_integer(std::string_view text, std::int64_t& value) {
  return parse_number(text, value);
}

NumberParse parse_real(std::string_view text, double& value) { return parse_number(text, value); }

std::string real_count_problem(double value, std::string_view as_written) {
  const std::string text(as_written);
  if (!std::isfinite(value)) return "value " + text + " is not finite";
  if (value < 0.0) return "negative count " + text;
  return "value " + text + " is outside the float32 range";
}

bool is_integer_count(std::int64_t value) {
  return value >= 0 && value <= io_limits::max_exact_count;
}

std::string integer_count_problem(std::int64_t value, std::string_view as_written) {
  const std::string text(as_written);
  if (value < 0) return "negative count " + text;
  return "count " + text + " exceeds " + std::to_string(io_limits::max_exact_count) +
         ", the largest that float32 holds exactly";
}

void require_dense_shape(const std::string& path, const HostDense& matrix) {
  if (matrix.rows < 0 || matrix.cols < 0 ||
      static_cast<std::int64_t>(matrix.values.size()) != matrix.rows * matrix.cols)
    throw Error(path + ": dense matrix " + std::to_string(matrix.rows) + "x" +
                std::to_string(matrix.cols) + " has " + std::to_string(matrix.values.size()) +
                " values");
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

namespace {

std::atomic<std::int64_t> memory_cap{kNoMemoryCap};

std::int64_t usable_memory_bytes() {
  std::int64_t usable =
      std::min(memory_cap.load(), static_cast<std::int64_t>(::sysconf(_SC_PHYS_PAGES)) *
                                      static_cast<std::int64_t>(::sysconf(_SC_PAGE_SIZE)));
  for (const int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    rlimit limit{};
    if (::getrlimit(resource, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
      usable = std::min(usable, static_cast<std::int64_t>(limit.rlim_cur));
  }
  return usable;
}

}  // namespace

void set_memory_cap(std::int64_t bytes) { memory_cap = bytes; }

std::string memory_shortfall(std::int64_t bytes) {
  const std::int64_t usable = usable_memory_bytes();
  if (bytes <= usable) return "";
  return "need " + detail::memory_size(static_cast<double>(bytes)) + ", more than the " +
         detail::memory_size(static_cast<double>(usable)) + " of memory this process may use";
}

}  // namespace sparseae::io_detail
