// The cpu executor of lossless mode's deterministic decoder. This translation unit is compiled
// with -ffp-contract=off (src/CMakeLists.txt): the math of src/math/deterministic_decode.hpp must
// round every product and sum on its own, as the cuda kernel does, and a compiler allowed to
// contract a*b+c into an FMA (gcc's default wherever the target has one) would break that.
#include "backend/cpu/cpu_backend.hpp"
#include "backend/op_checks.hpp"
#include "math/deterministic_decode.hpp"

namespace sparseae::detail {

void CpuBackend::deterministic_layer(const DeterministicLayer& layer, ConstDenseView in,
                                     const float* row_offsets, DenseView out) {
  check_view("deterministic_layer", "in", in);
  check_view("deterministic_layer", "out", out);
  run([=] {
    // Threads pay off only beyond a few hundred thousand products (a probe row is far below).
    constexpr std::int64_t kParallelProducts = std::int64_t{1} << 18;
#pragma omp parallel for schedule(static) if (out.rows * out.cols * in.cols >= kParallelProducts)
    for (std::int64_t r = 0; r < out.rows; ++r) {
      const float offset = row_offsets != nullptr ? row_offsets[r] : 0.0f;
      std::int64_t j = 0;
      while (j < out.cols) {
        if (math::deterministic::lanes_fit(layer, j)) {
          math::deterministic::layer_output_lanes(layer, &in(r, 0), offset, j, &out(r, j));
          j += math::deterministic::kOutputLanes;
        } else {
          out(r, j) = math::deterministic::layer_output(layer, &in(r, 0), offset, j);
          ++j;
        }
      }
    }
  });
}

}  // namespace sparseae::detail
