#pragma once
// Small helpers the test files share.
#include <gtest/gtest.h>

#include <string>

#include "sparseae/error.hpp"

namespace sparseae::test {

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
