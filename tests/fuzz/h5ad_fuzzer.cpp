// libFuzzer harness of the .h5ad reader (AnnData's X: a csr/csc group or a dense dataset, read
// through HDF5's C library): what it accepts is a consistent CSR of positive finite counts, or
// rows x cols non-negative finite values. Not run by scripts/sanitizers.sh: HDF5 itself is not
// safe against crafted files (README: .h5ad input is trusted). On 2026-12-04, a few hundred
// inputs from this corpus, Debian's HDF5 1.10.8 looped forever inside H5Aread of a string
// attribute (H5HG_read, its global heap). Built with -DSPARSEAE_BUILD_FUZZERS=ON; run it by hand,
// with -timeout, to look for the reader's own faults.
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
  const std::string path = sparseae::fuzz::write_input(data, size, ".h5ad");
  sparseae::LoadedMatrix loaded;
  try {
    loaded = sparseae::read_h5ad(path);
  } catch (const sparseae::Error&) {
    return 0;
  }
  sparseae::fuzz::require_counts(loaded);
  return 0;
}
