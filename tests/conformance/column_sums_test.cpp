// Conformance of column_sums (kernels/column_sums.cu, src/backend/cpu/column_sums.cpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <vector>

#include "conformance_fixtures.hpp"

namespace sparseae::test::conformance {
namespace {

class ColumnSumsConformance : public BackendTest {
 protected:
  // out = scale * column sums of x (with pad NaN padding columns), out poisoned beforehand; with
  // mean set, scale = 1 / rows.
  void check(std::int64_t rows, std::int64_t cols, bool mean, std::int64_t pad,
             std::uint64_t seed) {
    std::ostringstream trace;
    trace << "column " << (mean ? "means " : "sums ") << rows << "x" << cols << " pad=" << pad;
    SCOPED_TRACE(trace.str());
    std::mt19937_64 rng(seed);
    const FloatMatrix x = random_matrix(rng, rows, cols, -1.0f, 1.0f, cols + pad);
    const float scale = mean && rows > 0 ? 1.0f / static_cast<float>(rows) : 1.0f;
    const std::vector<double> expected = reference::column_sums(x, scale);
    const std::vector<double> error_scale = reference::column_sums(absolute(x), scale);

    const BackendMatrix x_on = upload(x);
    Buffer<float> out_on = upload(std::vector<float>(static_cast<std::size_t>(cols), kPoison));
    backend().column_sums(x_on.const_view(), scale, out_on.data());
    EXPECT_TRUE(vector_close(download(out_on), expected, error_scale, product_tolerance(rows)));
  }
};

TEST_P(ColumnSumsConformance, SumsAndMeansMatchReference) {
  std::uint64_t seed = 4000;
  const Shape shapes[] = {{1, 1},   {7, 13},    {33, 65},  {129, 257},
                          {1, 512}, {300, 512}, {4099, 5}, {100003, 1}};
  for (const Shape& s : shapes)
    for (bool mean : {false, true}) check(s.rows, s.cols, mean, 0, ++seed);
}

TEST_P(ColumnSumsConformance, LeadingDimensionLargerThanColumns) {
  check(33, 65, false, 7, 4100);
  check(129, 257, true, 1, 4101);
}

TEST_P(ColumnSumsConformance, ZeroRowsGiveZeros) {
  check(0, 65, false, 0, 4200);
  check(0, 65, true, 0, 4201);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(ColumnSumsConformance);

}  // namespace
}  // namespace sparseae::test::conformance
