#pragma once
// A reading position in a short text, for the small parsers of the file formats (the JSON of a
// checkpoint's configuration, the Python dict of a .npy header): whitespace, expected characters
// and words, quoted strings, number tokens, and errors that name the text and the reason.
#include <cstddef>
#include <string>
#include <string_view>

namespace sparseae {

class TextCursor {
 public:
  // Whether an error names the offset it was found at: the JSON parser's do; a .npy header's
  // name the file and the reason alone.
  enum class ErrorOffset { named, omitted };

  // text must outlive the cursor. Errors read "<what>: <reason> at offset N", or
  // "<what>: <reason>" when offset is omitted.
  TextCursor(std::string_view text, std::string what, ErrorOffset offset = ErrorOffset::named);

  std::size_t offset() const { return position_; }
  bool at_end() const { return position_ == text_.size(); }
  // The character at the cursor; at_end() must be false.
  char peek() const { return text_[position_]; }
  void skip_whitespace();

  // The readers below skip whitespace first.
  // Consumes c if it comes next.
  bool consume(char c);
  // Consumes c, or fails with "expected 'c'".
  void expect(char c);
  // Consumes word if it comes next.
  bool consume_word(std::string_view word);
  // A string between two of the same quote, one of quotes, or fails with "expected a quoted
  // string" or "unterminated string". A backslash escapes the next character: \n, \t, \uXXXX
  // (a byte), and any other character stands for itself.
  std::string quoted_string(std::string_view quotes);
  // The characters that can make a number (digits, signs, points, exponents), unchecked; empty
  // when none come next.
  std::string_view number_token();

  [[noreturn]] void fail(const std::string& reason) const;

 private:
  std::string_view text_;
  std::string what_;
  ErrorOffset error_offset_;
  std::size_t position_ = 0;
};

}  // namespace sparseae
