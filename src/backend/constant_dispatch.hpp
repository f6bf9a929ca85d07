#pragma once
// The cpu backend's way to give the per-element math a constant: its switch over the kind (an
// activation, an optimizer, a loss) then folds away and the loops around it vectorize.
#include <string>
#include <type_traits>

#include "sparseae/error.hpp"

namespace sparseae::detail {

// Calls body(std::integral_constant<Enum, V>{}) for the V among Values that equals value; throws
// Error naming what when none does.
template <auto... Values, typename Enum, typename Body>
void with_constant(Enum value, const char* what, Body body) {
  const bool found =
      ((value == Values && (body(std::integral_constant<Enum, Values>{}), true)) || ...);
  if (!found)
    throw Error(std::string("unknown ") + what + " " + std::to_string(static_cast<int>(value)));
}

}  // namespace sparseae::detail
