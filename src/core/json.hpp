#pragma once
// The little JSON sparseae reads and writes (a checkpoint's configuration; the reports, metrics
// and benchmark results it prints): objects, arrays, numbers, strings and booleans. Numbers keep
// their text, so 64-bit seeds and float32 values round-trip exactly.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sparseae {

class Json {
 public:
  enum class Type { null, boolean, number, string, array, object };

  Json() = default;  // null
  // Numbers from doubles: NaN and infinities, which JSON cannot write, are null.
  // 17 significant digits, which read back as the same double.
  static Json number(double value);
  // Rounded to digits significant digits (printf's %.*g) or to decimals after the point (%.*f):
  // the numbers of a report, as precise as what it measures.
  static Json number_significant(double value, int digits);
  static Json number_fixed(double value, int decimals);
  static Json integer(std::int64_t value);
  static Json unsigned_integer(std::uint64_t value);
  // A number given by its JSON text, kept as written.
  static Json number_text(std::string text);
  static Json string(std::string value);
  static Json boolean(bool value);
  static Json array(std::vector<Json> items = {});
  static Json object();

  // Adds (or replaces) a member of an object; returns *this for chaining.
  Json& set(const std::string& key, Json value);

  // Throws Error("<what>: <reason> at offset N") for malformed text.
  static Json parse(const std::string& text, const std::string& what);
  std::string dump() const;

  Type type() const { return type_; }
  // Member access throws Error naming the missing key.
  const Json& at(const std::string& key) const;
  bool contains(const std::string& key) const;
  const std::vector<Json>& items() const { return items_; }
  double as_double() const;
  std::int64_t as_int() const;
  std::uint64_t as_uint() const;
  const std::string& as_string() const;
  bool as_bool() const;

 private:
  Type type_ = Type::null;
  std::string text_;  // number text or string value
  bool boolean_ = false;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

}  // namespace sparseae
