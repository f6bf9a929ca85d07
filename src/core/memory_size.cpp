#include "core/memory_size.hpp"

#include <cstdio>

namespace sparseae::detail {

std::string memory_size(double bytes) {
  const char* unit = "B";
  for (const char* larger : {"KiB", "MiB", "GiB", "TiB"}) {
    if (bytes < 1024.0) break;
    bytes /= 1024.0;
    unit = larger;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", bytes, unit);
  return text;
}

}  // namespace sparseae::detail
