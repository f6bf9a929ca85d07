#pragma once
// The one exception type the library throws. Messages are a single line that says what failed,
// where, and why, so the CLI can print them as they are.
#include <stdexcept>
#include <string>

namespace sparseae {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error(message) when condition is false; for argument validation in host code.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

}  // namespace sparseae
