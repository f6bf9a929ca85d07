#pragma once
// Enum <-> name tables: each enum's names sit beside the enum's own definitions (op_names.cpp,
// train_config.cpp), parsed and printed by these two helpers.
#include <cstddef>
#include <string>

#include "sparseae/error.hpp"

namespace sparseae::detail {

template <typename Enum>
struct Named {
  Enum value;
  const char* name;
};

// "unknown <what> 'name': expected a, b or c".
template <typename Enum, std::size_t N>
Enum parse_named(const Named<Enum> (&table)[N], const char* what, const std::string& name) {
  std::string expected;
  for (std::size_t i = 0; i < N; ++i) {
    if (name == table[i].name) return table[i].value;
    expected += (i == 0 ? "" : (i + 1 == N ? " or " : ", ")) + std::string(table[i].name);
  }
  throw Error(std::string("unknown ") + what + " '" + name + "': expected " + expected);
}

template <typename Enum, std::size_t N>
const char* name_of(const Named<Enum> (&table)[N], Enum value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return "unknown";
}

}  // namespace sparseae::detail
