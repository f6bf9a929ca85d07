// libFuzzer harness of the CSV reader, with the header detected, as sae reads it: what it accepts
// holds rows x cols non-negative finite values.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "fuzz_input.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sparseae::fuzz::cap_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = sparseae::fuzz::write_input(data, size, ".csv");
  sparseae::HostDense dense;
  try {
    dense = sparseae::read_csv(path);
  } catch (const sparseae::Error&) {
    return 0;
  }
  sparseae::fuzz::require_invariant(
      static_cast<std::int64_t>(dense.values.size()) == dense.rows * dense.cols,
      "rows x cols values");
  for (const float value : dense.values)
    sparseae::fuzz::require_invariant(std::isfinite(value) && value >= 0.0f,
                                      "every value a finite count");
  return 0;
}
