// libFuzzer harness of the MatrixMarket reader, plain and gzipped (zlib reads either whatever
// the file's name): what it accepts is a valid CSR matrix of counts.
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
  const std::string path = sparseae::fuzz::write_input(data, size, ".mtx");
  sparseae::HostCsr matrix;
  try {
    matrix = sparseae::read_matrix_market(path);
  } catch (const sparseae::Error&) {
    return 0;
  }
  matrix.validate();  // throws, and so aborts, when the reader built an inconsistent matrix
  for (const float value : matrix.values)
    sparseae::fuzz::require_invariant(std::isfinite(value) && value > 0.0f,
                                      "a stored value is a positive finite count");
  return 0;
}
