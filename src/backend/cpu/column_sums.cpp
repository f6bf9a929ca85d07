// The cpu backend's column sums (kernels/column_sums.cu on cuda): sums in double, scaled, with no
// per-element math of src/math/ to share.
#include <omp.h>

#include <algorithm>

#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"

namespace sparseae::detail {

namespace {

// Runs body(begin, end) on disjoint column ranges [begin, end) of width cols, one per thread.
template <typename Body>
void for_column_blocks(std::int64_t cols, Body body) {
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads();
    const std::int64_t t = omp_get_thread_num();
    const std::int64_t begin = cols * t / threads;
    const std::int64_t end = cols * (t + 1) / threads;
    if (begin < end) body(begin, end);
  }
}

// column_sums adds kSumChunk columns at a time in double, in stack arrays (it allocates nothing).
constexpr std::int64_t kSumChunk = 256;

}  // namespace

void CpuBackend::column_sums(ConstDenseView x, float scale, float* out) {
  check_view("column_sums", "x", x);
  run([=] {
    for_column_blocks(x.cols, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t chunk = begin; chunk < end; chunk += kSumChunk) {
        const std::int64_t width = std::min(kSumChunk, end - chunk);
        double sums[kSumChunk] = {};
        for (std::int64_t r = 0; r < x.rows; ++r) {
          const float* row = x.row(r) + chunk;
          for (std::int64_t j = 0; j < width; ++j) sums[j] += row[j];
        }
        for (std::int64_t j = 0; j < width; ++j)
          out[chunk + j] = static_cast<float>(scale * sums[j]);
      }
    });
  });
}

}  // namespace sparseae::detail
