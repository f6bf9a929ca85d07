// The cpu backend's random_permutation (kernels/permutation.cu on cuda): a sort by the
// permutation key of src/math/op_math.hpp, then by index.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "backend/cpu/cpu_backend.hpp"
#include "math/op_math.hpp"
#include "sparseae/error.hpp"

namespace sparseae::detail {

void CpuBackend::random_permutation(std::uint64_t seed, std::int64_t n, std::int64_t* out) {
  require(n >= 0, "random_permutation: negative length");
  run([=] {
    std::vector<std::uint64_t> keys(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i)
      keys[i] = math::permutation_key(seed, static_cast<std::uint64_t>(i));
    std::iota(out, out + n, std::int64_t{0});
    std::sort(out, out + n, [&](std::int64_t x, std::int64_t y) {
      return keys[x] != keys[y] ? keys[x] < keys[y] : x < y;
    });
  });
}

}  // namespace sparseae::detail
