#include "core/json.hpp"

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "sparseae/error.hpp"

namespace sparseae {

Json Json::number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return number_text(text);
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
  Parser(const std::string& text, const std::string& what) : text_(text), what_(what) {}

  Json parse_document() {
    Json value = parse_value();
    skip_space();
    if (position_ != text_.size()) fail("unexpected text after the value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& reason) const {
    throw Error(what_ + ": " + reason + " at offset " + std::to_string(position_));
  }

  void skip_space() {
    while (position_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[position_])))
      ++position_;
  }

  bool consume(char c) {
    skip_space();
    if (position_ < text_.size() && text_[position_] == c) {
      ++position_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }

  std::string parse_string_body() {
    expect('"');
    std::string out;
    while (position_ < text_.size() && text_[position_] != '"') {
      char c = text_[position_++];
      if (c == '\\') {
        if (position_ >= text_.size()) break;
        const char e = text_[position_++];
        if (e == 'u') {
          if (position_ + 4 > text_.size()) fail("truncated escape");
          c = static_cast<char>(std::strtol(text_.substr(position_, 4).c_str(), nullptr, 16));
          position_ += 4;
        } else {
          c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
        }
      }
      out += c;
    }
    if (position_ >= text_.size()) fail("unterminated string");
    ++position_;
    return out;
  }

  Json parse_value() {
    // Each level of nesting takes a frame of the stack: a file nested deeper than any
    // configuration needs is refused before it can exhaust it.
    constexpr int kMaxDepth = 32;
    if (depth_ == kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    skip_space();
    if (position_ >= text_.size()) fail("unexpected end");
    const char c = text_[position_];
    if (c == '{') {
      ++position_;
      Json object = Json::object();
      if (consume('}')) return object;
      ++depth_;
      do {
        skip_space();
        std::string key = parse_string_body();
        expect(':');
        object.set(key, parse_value());
      } while (consume(','));
      --depth_;
      expect('}');
      return object;
    }
    if (c == '[') {
      ++position_;
      std::vector<Json> items;
      if (consume(']')) return Json::array();
      ++depth_;
      do items.push_back(parse_value());
      while (consume(','));
      --depth_;
      expect(']');
      return Json::array(std::move(items));
    }
    if (c == '"') return Json::string(parse_string_body());
    if (text_.compare(position_, 4, "true") == 0) {
      position_ += 4;
      return Json::boolean(true);
    }
    if (text_.compare(position_, 5, "false") == 0) {
      position_ += 5;
      return Json::boolean(false);
    }
    if (text_.compare(position_, 4, "null") == 0) {
      position_ += 4;
      return Json();
    }
    const std::size_t start = position_;
    while (position_ < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[position_])) ||
            std::string("+-.eE").find(text_[position_]) != std::string::npos))
      ++position_;
    if (start == position_) fail("unexpected character");
    char* end = nullptr;
    const std::string number = text_.substr(start, position_ - start);
    std::strtod(number.c_str(), &end);
    if (*end != '\0') fail("malformed number '" + number + "'");
    return Json::number_text(number);
  }

  const std::string& text_;
  std::string what_;
  std::size_t position_ = 0;
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
