// libFuzzer harness of the .npy reader, as counts and as latent codes: what it accepts holds
// rows x cols finite values, non-negative for counts.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "fuzz_input.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"

namespace {

void read_as(const std::string& path, sparseae::NpyValues accept) {
  sparseae::HostDense dense;
  try {
    dense = sparseae::read_npy(path, accept);
  } catch (const sparseae::Error&) {
    return;
  }
  sparseae::fuzz::require_invariant(
      static_cast<std::int64_t>(dense.values.size()) == dense.rows * dense.cols,
      "rows x cols values");
  for (const float value : dense.values)
    sparseae::fuzz::require_invariant(
        std::isfinite(value) && (accept == sparseae::NpyValues::finite || value >= 0.0f),
        "every value finite, and a count where counts were asked for");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sparseae::fuzz::cap_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = sparseae::fuzz::write_input(data, size, ".npy");
  read_as(path, sparseae::NpyValues::counts);
  read_as(path, sparseae::NpyValues::finite);
  return 0;
}
