#pragma once
// What every harness shares. The parsers read paths, so each input is written to a file of this
// process first. A parser's sparseae::Error is its answer to bad input; anything else (a crash, a
// sanitizer report, another exception, an allocation past libFuzzer's limit, a result that breaks
// its own invariants) is a finding.
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "io/reading.hpp"
#include "sparseae/io.hpp"

namespace sparseae::fuzz {

// The readers refuse what does not fit in 1 GiB: under libFuzzer's malloc limit (2 GiB by
// default), so that a declared size is refused the way it would be on a small machine.
inline void cap_memory() { io_detail::set_memory_cap(std::int64_t{1} << 30); }

// Writes the input to this process's file, in the temporary directory ($TMPDIR, which
// scripts/sanitizers.sh points at a directory it removes), and returns its path.
inline std::string write_input(const std::uint8_t* data, std::size_t size,
                               const std::string& extension) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparseae-fuzz-" + std::to_string(::getpid()) + extension))
                               .string();
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr || std::fwrite(data, 1, size, file) != size || std::fclose(file) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

// Aborts, which libFuzzer reports with the input, when a parser's result breaks an invariant.
inline void require_invariant(bool holds, const char* what) {
  if (holds) return;
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

// The invariants of a matrix a reader returned: a consistent CSR holding positive finite counts,
// or rows x cols finite non-negative dense values.
inline void require_counts(const LoadedMatrix& loaded) {
  if (loaded.sparse) {
    loaded.csr.validate();  // throws, and so aborts, when the reader built an inconsistent matrix
    for (const float value : loaded.csr.values)
      require_invariant(std::isfinite(value) && value > 0.0f,
                        "a stored value is a positive finite count");
    return;
  }
  require_invariant(static_cast<std::int64_t>(loaded.dense.values.size()) ==
                        loaded.dense.rows * loaded.dense.cols,
                    "rows x cols values");
  for (const float value : loaded.dense.values)
    require_invariant(std::isfinite(value) && value >= 0.0f, "every value a finite count");
}

}  // namespace sparseae::fuzz
