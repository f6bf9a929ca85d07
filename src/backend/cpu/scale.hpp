#pragma once
// c = beta * c before a product: gemm (cpu_backend.cpp) and spmm (csr_spmm.cpp) share it, as the
// cuda backend's products share kernels/scale.cu.
#include <cstdint>

#include "sparseae/matrix.hpp"

namespace sparseae::detail {

// c = beta * c, where beta == 0 writes zeros without reading c.
inline void scale_in_place(DenseView c, float beta) {
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < c.rows; ++r) {
    float* row = &c(r, 0);
    for (std::int64_t j = 0; j < c.cols; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
  }
}

}  // namespace sparseae::detail
