#include "core/text_cursor.hpp"

#include <cctype>
#include <cstdlib>
#include <utility>

#include "sparseae/error.hpp"

namespace sparseae {

TextCursor::TextCursor(std::string_view text, std::string what, ErrorOffset offset)
    : text_(text), what_(std::move(what)), error_offset_(offset) {}

void TextCursor::fail(const std::string& reason) const {
  throw Error(
      what_ + ": " + reason +
      (error_offset_ == ErrorOffset::named ? " at offset " + std::to_string(position_) : ""));
}

void TextCursor::skip_whitespace() {
  while (!at_end() && std::isspace(static_cast<unsigned char>(peek()))) ++position_;
}

bool TextCursor::consume(char c) {
  skip_whitespace();
  if (at_end() || peek() != c) return false;
  ++position_;
  return true;
}

void TextCursor::expect(char c) {
  if (!consume(c)) fail(std::string("expected '") + c + "'");
}

bool TextCursor::consume_word(std::string_view word) {
  skip_whitespace();
  if (text_.substr(position_, word.size()) != word) return false;
  position_ += word.size();
  return true;
}

std::string TextCursor::quoted_string(std::string_view quotes) {
  skip_whitespace();
  if (at_end() || quotes.find(peek()) == std::string_view::npos) fail("expected a quoted string");
  const char quote = text_[position_++];
  std::string out;
  while (!at_end() && peek() != quote) {
    char c = text_[position_++];
    if (c == '\\') {
      if (at_end()) break;
      const char escaped = text_[position_++];
      if (escaped == 'u') {
        if (position_ + 4 > text_.size()) fail("truncated escape");
        c = static_cast<char>(
            std::strtol(std::string(text_.substr(position_, 4)).c_str(), nullptr, 16));
        position_ += 4;
      } else {
        c = escaped == 'n' ? '\n' : escaped == 't' ? '\t' : escaped;
      }
    }
    out += c;
  }
  if (at_end()) fail("unterminated string");
  ++position_;
  return out;
}

std::string_view TextCursor::number_token() {
  skip_whitespace();
  const std::size_t start = position_;
  while (!at_end() && (std::isdigit(static_cast<unsigned char>(peek())) ||
                       std::string_view("+-.eE").find(peek()) != std::string_view::npos))
    ++position_;
  return text_.substr(start, position_ - start);
}

}  // namespace sparseae
