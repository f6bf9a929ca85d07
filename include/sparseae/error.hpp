#pragma once
// The one exception type the library throws (and one refinement of it, below). Messages are a single line that says what failed,
// where, and why, so the CLI can print them as they are.
#include <stdexcept>
#include <string>

namespace sparseae {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A device allocation that did not fit: an Error whose message gives the bytes asked for and the
// device's free and total memory, so that callers who can size things down (the Trainer, to name
// the largest batch that fits) tell it from other failures.
class OutOfDeviceMemory : public Error {
 public:
  using Error::Error;
};

// Throws Error(message) when condition is false; for argument validation in host code.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

}  // namespace sparseae
