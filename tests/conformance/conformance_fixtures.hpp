#pragma once
// What the conformance tests share: tests/conformance/<family>_test.cpp checks the ops of one
// family, named like kernels/<family>.cu and src/backend/cpu/<family>.cpp (or like the op where
// a library runs it), against the float64 references of tests/reference.hpp, once per backend
// (backend_fixture.hpp). Each test draws fresh inputs from a fixed seed, poisons the outputs (NaN,
// or a sentinel) so that an element an op forgot to write fails, and compares with a tolerance
// named beside it together with the reason for its size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "backend_fixture.hpp"
#include "reference.hpp"
#include "sparseae/error.hpp"

namespace sparseae::test::conformance {

using reference::absolute;
using reference::DoubleMatrix;
using reference::filled_matrix;
using reference::FloatMatrix;
using reference::kPoison;
using reference::random_csr;
using reference::random_matrix;

// ---- tolerances ----

inline constexpr double kEps = std::numeric_limits<float>::epsilon();

// Added to every tolerance: results below the smallest normal float may be flushed to zero (the
// device's denormal mode), which is no error at the scale of these tests.
inline constexpr double kSubnormalFloor = std::numeric_limits<float>::min();

// Products and sums of `inner` terms, relative to the sum of |terms| (so cancellation cannot make
// the bound meaningless): summing in float in any order (sequential, blocked, split-k, atomics)
// errs by about sqrt(inner) roundings and at worst inner/2 eps; 8 eps sqrt(inner + 1) covers the
// worst case up to inner ~ 256 and the typical one far beyond. (TF32 tensor-core math would not
// pass, by design: the contract is float32.)
inline double product_tolerance(std::int64_t inner) {
  return 8.0 * kEps * std::sqrt(static_cast<double>(inner) + 1.0);
}

// Element-wise activations. Forward, relative to the result: the float add z + bias (half an ulp,
// times a condition number at most 4 on the inputs in [-4, 4] used there) plus expf/tanhf/log1pf,
// each within 2 ulps on glibc and in CUDA without fast math. Backward, relative to
// |dy * derivative|: the derivative from an exact y costs a few roundings (expm1f: 1 ulp).
inline constexpr double kElementwiseTolerance = 16.0 * kEps;

// Gather and permutation move data without arithmetic: they must be exact.

// ---- comparison ----

// Passes when |actual(r, c) - expected(r, c)| <= relative_tolerance * scale(r, c) + kSubnormalFloor
// over a rows x cols region; otherwise reports the first element that is not, and how many.
inline ::testing::AssertionResult all_within(
    std::int64_t rows, std::int64_t cols,
    const std::function<double(std::int64_t, std::int64_t)>& actual,
    const std::function<double(std::int64_t, std::int64_t)>& expected,
    const std::function<double(std::int64_t, std::int64_t)>& scale, double relative_tolerance) {
  std::int64_t mismatches = 0;
  std::ostringstream first;
  first.precision(9);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      const double got = actual(r, c);
      const double want = expected(r, c);
      const double tolerance = relative_tolerance * scale(r, c) + kSubnormalFloor;
      const double difference = std::fabs(got - want);
      if (difference <= tolerance) continue;  // false for NaN as well
      if (mismatches++ == 0)
        first << "element (" << r << ", " << c << "): got " << got << ", expected " << want
              << ", |difference| " << difference << " > tolerance " << tolerance << " ("
              << relative_tolerance << " * scale " << scale(r, c) << " + " << kSubnormalFloor
              << ")";
    }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << mismatches << " of " << rows * cols
                                       << " elements out of tolerance; first " << first.str();
}

inline ::testing::AssertionResult matrix_close(const FloatMatrix& actual,
                                               const DoubleMatrix& expected,
                                               const DoubleMatrix& scale,
                                               double relative_tolerance) {
  if (actual.rows != expected.rows || actual.cols != expected.cols)
    return ::testing::AssertionFailure()
           << "shape " << actual.rows << "x" << actual.cols << " differs from the expected "
           << expected.rows << "x" << expected.cols;
  return all_within(
      actual.rows, actual.cols, [&](auto r, auto c) { return actual(r, c); },
      [&](auto r, auto c) { return expected(r, c); }, [&](auto r, auto c) { return scale(r, c); },
      relative_tolerance);
}

inline ::testing::AssertionResult vector_close(const std::vector<float>& actual,
                                               const std::vector<double>& expected,
                                               const std::vector<double>& scale,
                                               double relative_tolerance) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << "length " << actual.size() << " differs from the "
                                         << "expected " << expected.size();
  return all_within(
      1, static_cast<std::int64_t>(actual.size()), [&](auto, auto i) { return actual[i]; },
      [&](auto, auto i) { return expected[i]; }, [&](auto, auto i) { return scale[i]; },
      relative_tolerance);
}

// The padding columns [cols, ld) still hold the NaN written before the op.
inline ::testing::AssertionResult padding_untouched(const FloatMatrix& m) {
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = m.cols; c < m.ld; ++c)
      if (!std::isnan(m(r, c)))
        return ::testing::AssertionFailure()
               << "padding element (" << r << ", " << c << ") of a " << m.rows << "x" << m.cols
               << " view with leading dimension " << m.ld << " was overwritten with " << m(r, c);
  return ::testing::AssertionSuccess();
}

template <typename T>
::testing::AssertionResult exactly_equal(const std::vector<T>& actual,
                                         const std::vector<T>& expected, std::size_t length,
                                         const char* what) {
  if (actual.size() < length || expected.size() < length)
    return ::testing::AssertionFailure() << what << ": fewer than " << length << " elements";
  for (std::size_t i = 0; i < length; ++i)
    if (!(actual[i] == expected[i]))
      return ::testing::AssertionFailure()
             << what << "[" << i << "] is " << actual[i] << ", expected " << expected[i];
  return ::testing::AssertionSuccess();
}

template <typename Op>
::testing::AssertionResult throws_error(Op&& op, const std::string& message, bool exact) {
  try {
    op();
  } catch (const Error& error) {
    const std::string what = error.what();
    if (exact ? what == message : what.find(message) != std::string::npos)
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "Error says \"" << what << "\", expected " << (exact ? "exactly" : "it to contain")
           << " \"" << message << "\"";
  } catch (const std::exception& other) {
    return ::testing::AssertionFailure() << "threw a non-sparseae exception: " << other.what();
  }
  return ::testing::AssertionFailure() << "no Error thrown; expected \"" << message << "\"";
}

struct Shape {
  std::int64_t rows;
  std::int64_t cols;
};
// 1x1, odd sizes that leave partial blocks and warps, a batch of one row 512 wide, 512 wide.
inline constexpr Shape kElementwiseShapes[] = {{1, 1},     {7, 13},  {33, 65},
                                               {129, 257}, {1, 512}, {64, 512}};

inline const char* transpose_name(Transpose t) { return t == Transpose::yes ? "T" : "N"; }

inline constexpr Transpose kBothTransposes[] = {Transpose::no, Transpose::yes};

}  // namespace sparseae::test::conformance
