#pragma once
// The checksum that ends a checkpoint, shared with the tests and the fuzzer that build
// checkpoints byte by byte to reach the checks behind it.
#include <cstddef>
#include <cstdint>

namespace sparseae {

// FNV-1a over every byte of the checkpoint before the checksum.
std::uint64_t checkpoint_checksum(const unsigned char* data, std::size_t size);

}  // namespace sparseae
