#include "core/json.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/text_cursor.hpp"
#include "sparseae/error.hpp"

namespace sparseae {

namespace {

// value as printf writes it by format, one conversion of a double with its precision; null if
// value is not finite.
Json formatted_number(const char* format, int precision, double value) {
  if (!std::isfinite(value)) return Json();
  std::string text(static_cast<std::size_t>(std::snprintf(nullptr, 0, format, precision, value)),
                   '\0');
  std::snprintf(text.data(), text.size() + 1, format, precision, value);
  return Json::number_text(std::move(text));
}

}  // namespace

Json Json::number(double value) { return number_significant(value, 17); }

Json Json::number_significant(double value, int digits) {
  return formatted_number("%.*g", digits, value);
}

Json Json::number_fixed(double value, int decimals) {
  return formatted_number("%.*f", decimals, value);
}

Json Json::integer(std::int64_t value) { return number_text(std::to_string(value)); }

Json Json::unsigned_integer(std::uint64_t value) { return number_text(std::to_string(value)); }

Json Json::number_text(std::string text) {
  Json j;
  j.type_ = Type::number;
  j.text_ = std::move(text);
  return j;
}

Json Json::string(std::string value) {
  Json j;
  j.type_ = Type::string;
  j.text_ = std::move(value);
  return j;
}

Json Json::boolean(bool value) {
  Json j;
  j.type_ = Type::boolean;
  j.boolean_ = value;
  return j;
}

Json Json::array(std::vector<Json> items) {
  Json j;
  j.type_ = Type::array;
  j.items_ = std::move(items);
  return j;
}

Json Json::object() {
  Json j;
  j.type_ = Type::object;
  return j;
}

Json& Json::set(const std::string& key, Json value) {
  for (auto& member : members_)
    if (member.first == key) {
      member.second = std::move(value);
      return *this;
    }
  members_.emplace_back(key, std::move(value));
  return *this;
}

bool Json::contains(const std::string& key) const {
  for (const auto& member : members_)
    if (member.first == key) return true;
  return false;
}

const Json& Json::at(const std::string& key) const {
  for (const auto& member : members_)
    if (member.first == key) return member.second;
  throw Error("no member '" + key + "'");
}

double Json::as_double() const {
  require(type_ == Type::number, "a value is not a number");
  return std::strtod(text_.c_str(), nullptr);
}

std::int64_t Json::as_int() const {
  require(type_ == Type::number, "a value is not a number");
  return std::strtoll(text_.c_str(), nullptr, 10);
}

std::uint64_t Json::as_uint() const {
  require(type_ == Type::number, "a value is not a number");
  return std::strtoull(text_.c_str(), nullptr, 10);
}

const std::string& Json::as_string() const {
  require(type_ == Type::string, "a value is not a string");
  return text_;
}

bool Json::as_bool() const {
  require(type_ == Type::boolean, "a value is not a boolean");
  return boolean_;
}

namespace {

void dump_string(const std::string& s, std::string& out) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  out += '"';
}

class Parser {
 public:
  Parser(const std::string& text, const std::string& what) : cursor_(text, what) {}

  Json parse_document() {
    Json value = parse_value();
    cursor_.skip_whitespace();
    if (!cursor_.at_end()) cursor_.fail("unexpected text after the value");
    return value;
  }

 private:
  Json parse_value() {
    // Each level of nesting takes a frame of the stack: a file nested deeper than any
    // configuration needs is refused before it can exhaust it.
    constexpr int kMaxDepth = 32;
    if (depth_ == kMaxDepth)
      cursor_.fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    cursor_.skip_whitespace();
    if (cursor_.at_end()) cursor_.fail("unexpected end");
    if (cursor_.consume('{')) {
      Json object = Json::object();
      if (cursor_.consume('}')) return object;
      ++depth_;
      do {
        std::string key = cursor_.quoted_string("\"");
        cursor_.expect(':');
        object.set(key, parse_value());
      } while (cursor_.consume(','));
      --depth_;
      cursor_.expect('}');
      return object;
    }
    if (cursor_.consume('[')) {
      std::vector<Json> items;
      if (cursor_.consume(']')) return Json::array();
      ++depth_;
      do items.push_back(parse_value());
      while (cursor_.consume(','));
      --depth_;
      cursor_.expect(']');
      return Json::array(std::move(items));
    }
    if (cursor_.peek() == '"') return Json::string(cursor_.quoted_string("\""));
    if (cursor_.consume_word("true")) return Json::boolean(true);
    if (cursor_.consume_word("false")) return Json::boolean(false);
    if (cursor_.consume_word("null")) return Json();
    const std::string number(cursor_.number_token());
    if (number.empty()) cursor_.fail("unexpected character");
    char* end = nullptr;
    std::strtod(number.c_str(), &end);
    if (*end != '\0') cursor_.fail("malformed number '" + number + "'");
    return Json::number_text(number);
  }

  TextCursor cursor_;
  int depth_ = 0;
};

}  // namespace

Json Json::parse(const std::string& text, const std::string& what) {
  return Parser(text, what).parse_document();
}

std::string Json::dump() const {
  std::string out;
  switch (type_) {
    case Type::null:
      return "null";
    case Type::boolean:
      return boolean_ ? "true" : "false";
    case Type::number:
      return text_;
    case Type::string:
      dump_string(text_, out);
      return out;
    case Type::array:
      out += '[';
      for (std::size_t i = 0; i < items_.size(); ++i) out += (i ? ", " : "") + items_[i].dump();
      return out + ']';
    case Type::object:
    default:
      out += '{';
      for (std::size_t i = 0; i < members_.size(); ++i) {
        if (i) out += ", ";
        dump_string(members_[i].first, out);
        out += ": " + members_[i].second.dump();
      }
      return out + '}';
  }
}

}  // namespace sparseae
