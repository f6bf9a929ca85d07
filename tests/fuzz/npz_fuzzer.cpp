// libFuzzer harness of the .npz reader (a zip archive of .npy members: scipy.sparse or one dense
// array): what it accepts is a consistent CSR of positive finite counts, or rows x cols
// non-negative finite values.
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
  const std::string path = sparseae::fuzz::write_input(data, size, ".npz");
  sparseae::LoadedMatrix loaded;
  try {
    loaded = sparseae::read_npz(path);
  } catch (const sparseae::Error&) {
    return 0;
  }
  sparseae::fuzz::require_counts(loaded);
  return 0;
}
