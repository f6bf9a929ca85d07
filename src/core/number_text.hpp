#pragma once
// How the library writes a number a user gave or reads back in its messages and help.
#include <cstdio>
#include <string>

namespace sparseae::detail {

// value as a user would write it, in at most six significant digits: 0.03, 0.25, 10, 1e+30
// (printf's %g), not std::to_string's 0.030000.
inline std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

}  // namespace sparseae::detail
