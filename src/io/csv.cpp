// Dense CSV files: comma-separated numbers, one row per line, an optional header line; the
// reader and the writer.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/atomic_file.hpp"
#include "io/reading.hpp"
#include "sparseae/io.hpp"

namespace sparseae {

using namespace io_detail;

namespace {

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t") == std::string::npos;
}

bool all_numbers(const std::vector<std::string_view>& fields) {
  double ignored = 0.0;
  return std::all_of(fields.begin(), fields.end(), [&](std::string_view field) {
    return parse_real(field, ignored) != NumberParse::malformed;
  });
}

float parse_field(std::string_view field, std::size_t number, const std::string& path,
                  std::int64_t line) {
  const auto fail_field = [&](const std::string& reason) {
    fail_at_line(path, line, "field " + std::to_string(number) + reason);
  };
  if (field.empty()) fail_field(" is empty");
  double value = 0.0;
  switch (parse_real(field, value)) {
    case NumberParse::ok:
      break;
    case NumberParse::out_of_range:
      fail_field(": value " + std::string(field) + " is outside the float32 range");
      break;
    case NumberParse::malformed:
      fail_field(" " + quoted(field) + " is not a number");
      break;
  }
  if (!is_real_count(value)) fail_field(": " + real_count_problem(value, field));
  return static_cast<float>(value);
}

}  // namespace

HostDense read_csv(const std::string& path, CsvHeader header) {
  LineReader reader(path);
  HostDense dense;
  std::string line;
  std::vector<std::string_view> fields;
  bool first_line = true;
  while (reader.next(line)) {
    if (is_blank(line)) continue;
    split_commas(line, fields);
    const std::int64_t at = reader.line_number();
    if (first_line) {
      first_line = false;
      dense.cols = static_cast<std::int64_t>(fields.size());
      if (header == CsvHeader::present || (header == CsvHeader::detect && !all_numbers(fields)))
        continue;
    }
    if (static_cast<std::int64_t>(fields.size()) != dense.cols)
      fail_at_line(path, at,
                   "row has " + std::to_string(fields.size()) + " fields, expected " +
                       std::to_string(dense.cols));
    for (std::size_t i = 0; i < fields.size(); ++i)
      dense.values.push_back(parse_field(fields[i], i + 1, path, at));
    ++dense.rows;
  }
  if (first_line) fail(path, "empty file (expected comma-separated rows)");
  return dense;
}

void write_csv(const std::string& path, const HostDense& matrix) {
  require_dense_shape(path, matrix);
  AtomicFile file(path);
  std::string text;
  constexpr std::size_t kFlushBytes = 1 << 20;
  char number[64];  // the shortest float32 decimal takes at most 15 characters
  const ConstDenseView view = matrix.view();
  for (std::int64_t r = 0; r < matrix.rows; ++r) {
    for (std::int64_t c = 0; c < matrix.cols; ++c) {
      if (c > 0) text += ',';
      text.append(number, std::to_chars(number, number + sizeof number, view(r, c)).ptr);
    }
    text += '\n';
    if (text.size() >= kFlushBytes) {
      file.write(text);
      text.clear();
    }
  }
  file.write(text);
  file.commit();
}

}  // namespace sparseae
