// Conformance of gather_rows and batch_nonzeros (kernels/csr_gather.cu,
// src/backend/cpu/csr_gather.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "conformance_fixtures.hpp"
#include "sparseae/csr.hpp"

namespace sparseae::test::conformance {
namespace {

// Output arrays poisoned so that an unwritten or misplaced entry shows.
constexpr RowOffset kOffsetSentinel = -1;
constexpr ColIndex kColumnSentinel = -7;

struct GatherOutput {
  Buffer<RowOffset> row_offsets;
  Buffer<ColIndex> col_indices;
  Buffer<float> values;
  std::int64_t cols = 0;
  std::int64_t capacity = 0;

  CsrOutput output() const {
    return {cols, capacity, row_offsets.data(), col_indices.data(), values.data()};
  }
};

class GatherConformance : public BackendTest {
 protected:
  GatherOutput make_output(std::int64_t cols, std::int64_t count, std::int64_t capacity) {
    const auto n = static_cast<std::size_t>(capacity);
    return {upload(std::vector<RowOffset>(static_cast<std::size_t>(count + 1), kOffsetSentinel)),
            upload(std::vector<ColIndex>(n, kColumnSentinel)),
            upload(std::vector<float>(n, kPoison)), cols, capacity};
  }

  // Gathers row_ids of source into an output of exactly the needed capacity plus spare, and
  // checks every written array against the reference, exactly.
  void check(const HostCsr& source, const std::vector<std::int64_t>& row_ids, std::int64_t spare) {
    std::ostringstream trace;
    trace << "gather " << row_ids.size() << " rows of " << source.rows << "x" << source.cols
          << " (nnz " << source.nnz() << "), spare capacity " << spare;
    SCOPED_TRACE(trace.str());
    const HostCsr expected = reference::gather_rows(source, row_ids);
    const auto count = static_cast<std::int64_t>(row_ids.size());
    const BackendCsr source_on(backend(), source);
    const Buffer<std::int64_t> ids_on = upload(row_ids);
    GatherOutput out = make_output(source.cols, count, expected.nnz() + spare);
    const std::int64_t nnz =
        backend().gather_rows(source_on.view(), ids_on.data(), count, out.output());
    ASSERT_EQ(nnz, expected.nnz());
    const auto length = static_cast<std::size_t>(nnz);
    EXPECT_TRUE(exactly_equal(download(out.row_offsets), expected.row_offsets,
                              static_cast<std::size_t>(count + 1), "row_offsets"));
    EXPECT_TRUE(
        exactly_equal(download(out.col_indices), expected.col_indices, length, "col_indices"));
    EXPECT_TRUE(exactly_equal(download(out.values), expected.values, length, "values"));
  }
};

std::vector<std::int64_t> random_row_ids(std::mt19937_64& rng, std::int64_t count,
                                         std::int64_t rows) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(count));
  for (std::int64_t& id : ids) id = reference::uniform_int(rng, 0, rows - 1);
  return ids;
}

TEST_P(GatherConformance, MatchesReferenceExactly) {
  std::mt19937_64 rng(5000);
  const HostCsr source = random_csr(rng, 1000, 512, 0.03, 0.2);
  for (std::int64_t count : {1, 7, 256, 1000, 3000})
    check(source, random_row_ids(rng, count, source.rows), 0);
  // A whole epoch's worth: every row once, in permuted order.
  check(source, reference::random_permutation(3, source.rows), 5);
}

TEST_P(GatherConformance, RepeatedRowIdsAreAllowed) {
  std::mt19937_64 rng(5100);
  const HostCsr source = random_csr(rng, 50, 65, 0.2, 0.0);
  check(source, {3, 3, 3, 17, 3, 49, 49}, 0);
}

TEST_P(GatherConformance, EmptyRowsAndSourcesWithoutNonZeros) {
  std::mt19937_64 rng(5200);
  const HostCsr mostly_empty = random_csr(rng, 200, 33, 0.1, 0.9);
  check(mostly_empty, random_row_ids(rng, 150, mostly_empty.rows), 0);
  const HostCsr no_nonzeros = random_csr(rng, 40, 33, 0.0, 0.0);
  ASSERT_EQ(no_nonzeros.nnz(), 0);
  check(no_nonzeros, random_row_ids(rng, 25, no_nonzeros.rows), 0);
  check(no_nonzeros, random_row_ids(rng, 1, no_nonzeros.rows), 0);
}

TEST_P(GatherConformance, CountZeroWritesOnlyTheFirstOffset) {
  std::mt19937_64 rng(5300);
  const BackendCsr source(backend(), random_csr(rng, 10, 13, 0.3, 0.0));
  const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{4});
  GatherOutput out = make_output(13, 0, 4);
  EXPECT_EQ(backend().gather_rows(source.view(), ids.data(), 0, out.output()), 0);
  EXPECT_EQ(download(out.row_offsets), std::vector<RowOffset>{0});
  EXPECT_EQ(download(out.col_indices), std::vector<ColIndex>(4, kColumnSentinel));
}

// Rows of 2, 0 and 3 non-zeros: small enough to count a batch's by hand.
HostCsr three_row_source() {
  HostCsr source;
  source.rows = 3;
  source.cols = 4;
  source.row_offsets = {0, 2, 2, 5};
  source.col_indices = {0, 3, 0, 1, 2};
  source.values = {1, 2, 3, 4, 5};
  return source;
}

TEST_P(GatherConformance, ThrowsWhenTheBatchExceedsCapacity) {
  const BackendCsr source_on(backend(), three_row_source());
  const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{2, 0, 1, 2});  // 8 non-zeros
  GatherOutput out = make_output(4, 4, 7);
  EXPECT_TRUE(
      throws_error([&] { backend().gather_rows(source_on.view(), ids.data(), 4, out.output()); },
                   "gather_rows: batch has 8 non-zeros, output holds 7", true));
  GatherOutput none = make_output(4, 4, 0);
  EXPECT_TRUE(
      throws_error([&] { backend().gather_rows(source_on.view(), ids.data(), 4, none.output()); },
                   "gather_rows: batch has 8 non-zeros, output holds 0", true));
  // The boundary: exactly enough room.
  check(three_row_source(), {2, 0, 1, 2}, 0);
}

TEST_P(GatherConformance, ThrowsForRowIdOutOfRange) {
  std::mt19937_64 rng(5400);
  const BackendCsr source(backend(), random_csr(rng, 10, 13, 0.3, 0.0));
  for (std::int64_t bad : {std::int64_t{10}, std::int64_t{-1}, std::int64_t{1} << 40}) {
    const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{0, 9, bad, 3});
    GatherOutput out = make_output(13, 4, 4 * 13);
    EXPECT_TRUE(
        throws_error([&] { backend().gather_rows(source.view(), ids.data(), 4, out.output()); },
                     "gather_rows: row id " + std::to_string(bad) + " outside [0, 10)", true));
  }
}

// An epoch's ids in batches: batch_nonzeros gives each batch's nnz in one call, and gather_rows
// given that nnz builds the same batch as the reference (the last batch short).
TEST_P(GatherConformance, KnownNonZerosGatherTheSameBatches) {
  std::mt19937_64 rng(5500);
  const HostCsr source = random_csr(rng, 1000, 512, 0.03, 0.2);
  const std::vector<std::int64_t> ids = reference::random_permutation(7, source.rows);
  const BackendCsr source_on(backend(), source);
  const Buffer<std::int64_t> ids_on = upload(ids);
  for (std::int64_t batch_rows : {1, 64, 300, 1000, 4096}) {
    SCOPED_TRACE("batch_rows " + std::to_string(batch_rows));
    const std::int64_t batches = (source.rows + batch_rows - 1) / batch_rows;
    std::vector<std::int64_t> nnz(static_cast<std::size_t>(batches), -1);
    backend().batch_nonzeros(source_on.view(), ids_on.data(), source.rows, batch_rows, nnz.data());
    for (std::int64_t b = 0; b < batches; ++b) {
      const std::int64_t first = b * batch_rows;
      const std::int64_t count = std::min(batch_rows, source.rows - first);
      const HostCsr expected =
          reference::gather_rows(source, {ids.begin() + first, ids.begin() + first + count});
      ASSERT_EQ(nnz[b], expected.nnz()) << "batch " << b;
      GatherOutput out = make_output(source.cols, count, expected.nnz());
      backend().gather_rows(source_on.view(), ids_on.data() + first, count, nnz[b], out.output());
      const auto length = static_cast<std::size_t>(nnz[b]);
      ASSERT_TRUE(exactly_equal(download(out.row_offsets), expected.row_offsets,
                                static_cast<std::size_t>(count + 1), "row_offsets"));
      ASSERT_TRUE(
          exactly_equal(download(out.col_indices), expected.col_indices, length, "col_indices"));
      ASSERT_TRUE(exactly_equal(download(out.values), expected.values, length, "values"));
    }
  }
}

TEST_P(GatherConformance, BatchNonzerosThrowsForRowIdOutOfRange) {
  std::mt19937_64 rng(5600);
  const BackendCsr source(backend(), random_csr(rng, 10, 13, 0.3, 0.0));
  for (std::int64_t bad : {std::int64_t{10}, std::int64_t{-1}}) {
    const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{0, 9, bad, 3, 5});
    std::vector<std::int64_t> nnz(3);
    EXPECT_TRUE(
        throws_error([&] { backend().batch_nonzeros(source.view(), ids.data(), 5, 2, nnz.data()); },
                     "gather_rows: row id " + std::to_string(bad) + " outside [0, 10)", true));
  }
}

TEST_P(GatherConformance, KnownNonZerosBeyondCapacityThrow) {
  const BackendCsr source_on(backend(), three_row_source());
  const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{2, 0, 1, 2});  // 8 non-zeros
  GatherOutput out = make_output(4, 4, 7);
  EXPECT_TRUE(
      throws_error([&] { backend().gather_rows(source_on.view(), ids.data(), 4, 8, out.output()); },
                   "gather_rows: batch has 8 non-zeros, output holds 7", true));
  // Only the cpu backend can tell a batch beyond its bound without waiting for the device.
  if (is_cpu()) {
    GatherOutput roomy = make_output(4, 4, 10);
    EXPECT_TRUE(throws_error(
        [&] { backend().gather_rows(source_on.view(), ids.data(), 4, 7, roomy.output()); },
        "gather_rows: the batch has 8 non-zeros, more than the 7 given", true));
  }
}

TEST_P(GatherConformance, AnUpperBoundOfTheNonZerosGathersTheBatch) {
  // What a captured step passes: the buffer's capacity, not the batch's count.
  const BackendCsr source_on(backend(), three_row_source());
  const Buffer<std::int64_t> ids = upload(std::vector<std::int64_t>{2, 0, 1});  // 5 non-zeros
  GatherOutput out = make_output(4, 3, 9);
  backend().gather_rows(source_on.view(), ids.data(), 3, 9, out.output());
  EXPECT_EQ(out.row_offsets.download(), (std::vector<RowOffset>{0, 3, 5, 5}));
  const std::vector<ColIndex> cols = out.col_indices.download();
  const std::vector<float> values = out.values.download();
  EXPECT_EQ(std::vector<ColIndex>(cols.begin(), cols.begin() + 5),
            (std::vector<ColIndex>{0, 1, 2, 0, 3}));
  EXPECT_EQ(std::vector<float>(values.begin(), values.begin() + 5),
            (std::vector<float>{3, 4, 5, 1, 2}));
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(GatherConformance);

}  // namespace
}  // namespace sparseae::test::conformance
