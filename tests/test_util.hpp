#pragma once
// Small helpers the test files share.
#include <gtest/gtest.h>

#include <string>

#include "sparseae/error.hpp"

namespace sparseae::test {

// Whether this build runs under AddressSanitizer (gcc says so by a macro, clang by a feature).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
constexpr bool kAddressSanitizer = __has_feature(address_sanitizer);
#else
constexpr bool kAddressSanitizer = false;
#endif

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs op, which must throw Error; returns its message ("" and a test failure when it does not).
template <typename Op>
std::string error_message(Op&& op) {
  try {
    op();
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no sparseae::Error thrown";
  return "";
}

}  // namespace sparseae::test
