#pragma once
// How the library writes an amount of memory in its messages.
#include <cstdint>
#include <string>

namespace sparseae::detail {

// bytes in the largest binary unit that keeps the number at 1 or more, with one decimal:
// "512.0 B", "64.0 KiB", "2.0 MiB", "16.0 GiB", "1.5 TiB".
std::string memory_size(double bytes);

}  // namespace sparseae::detail
