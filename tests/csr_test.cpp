#include <gtest/gtest.h>

#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"

namespace sparseae {
namespace {

HostCsr two_by_three() {
  HostCsr m;
  m.rows = 2;
  m.cols = 3;
  m.row_offsets = {0, 2, 3};
  m.col_indices = {0, 2, 1};
  m.values = {1.0f, 2.0f, 3.0f};
  return m;
}

void expect_invalid(const HostCsr& m, const std::string& message) {
  try {
    m.validate();
    FAIL() << "validate accepted a matrix with: " << message;
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << error.what();
  }
}

TEST(HostCsr, AcceptsAWellFormedMatrix) { EXPECT_NO_THROW(two_by_three().validate()); }

TEST(HostCsr, AcceptsAnEmptyMatrix) {
  HostCsr m;
  m.rows = 4;
  m.cols = 7;
  m.row_offsets.assign(5, 0);
  EXPECT_NO_THROW(m.validate());
}

TEST(HostCsr, NamesEachInconsistency) {
  HostCsr m = two_by_three();
  m.col_indices[1] = 3;
  expect_invalid(m, "entry 1 has column index 3 outside [0, 3)");

  m = two_by_three();
  m.row_offsets = {0, 3, 2};
  expect_invalid(m, "last row offset 2 differs from the 3 non-zeros");

  m = two_by_three();
  m.row_offsets = {0, 3, 2, 3};
  m.rows = 3;
  expect_invalid(m, "row offsets decrease at row 1");

  m = two_by_three();
  m.values.pop_back();
  expect_invalid(m, "3 column indices but 2 values");

  m = two_by_three();
  m.row_offsets = {0, 2};
  expect_invalid(m, "has 2 row offsets, expected rows+1");
}

}  // namespace
}  // namespace sparseae
