#pragma once
// FNV-1a, 64 bits, fed incrementally: the checksums and identities of lossless mode's files.
// Any single changed byte changes the hash (each step is a bijection of the state).
#include <cstddef>
#include <cstdint>

namespace sparseae::lossless {

class Fnv1a {
 public:
  void add(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) hash_ = (hash_ ^ bytes[i]) * 0x100000001b3ull;
  }
  template <typename T>
  void add_value(const T& value) {
    add(&value, sizeof value);
  }
  std::uint64_t value() const { return hash_; }

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ull;
};

}  // namespace sparseae::lossless
