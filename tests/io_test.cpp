#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/json.hpp"
#include "core/text_cursor.hpp"
#include "file_builders.hpp"
#include "io/atomic_file.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"
#include "test_util.hpp"

namespace sparseae {
namespace {

namespace fs = std::filesystem;
using test::csr;
using test::expect_same;
using test::gzipped;
using test::little_endian;
using test::npy_dict;
using test::npy_file;
using test::zip_archive;
using test::ZipMember;

// Each test gets a fresh directory, removed afterwards with whatever the test left in it.
class IoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ =
        fs::temp_directory_path() / ("sparseae-" + std::string(test->test_suite_name()) + "-" +
                                     test->name() + "-" + std::to_string(::getpid()));
    fs::remove_all(directory_);
    fs::create_directories(directory_);
  }
  void TearDown() override { fs::remove_all(directory_); }

  std::string path(const std::string& name) const { return (directory_ / name).string(); }

  std::string write_file(const std::string& name, const std::string& bytes) const {
    const std::string file = path(name);
    std::ofstream(file, std::ios::binary) << bytes;
    return file;
  }

  std::vector<std::string> files_left() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(directory_))
      names.push_back(entry.path().filename().string());
    return names;
  }

  fs::path directory_;
};

std::string read_bytes(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expect_error(const std::function<void()>& action, const std::string& message) {
  try {
    action();
    ADD_FAILURE() << "no error; expected: " << message;
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), message);
  }
}

// ---------------------------------------------------------------------------------------------
// MatrixMarket

const std::string kIntegerBanner = "%%MatrixMarket matrix coordinate integer general\n";

using IoMatrixMarket = IoTest;

TEST_F(IoMatrixMarket, SortsRowsSumsDuplicatesAndDropsZeros) {
  const std::string file = write_file("m.mtx", kIntegerBanner +
                                                   "% a comment\n"
                                                   "%\n"
                                                   "4 5 7\n"
                                                   "3 5 2\n"
                                                   "1 4 1\n"
                                                   "\n"
                                                   "3 1 7\n"
                                                   "1 2 3\n"
                                                   "3 5 4\n"
                                                   "% comments may come between entries\n"
                                                   "1 3 0\n"
                                                   "3 2 1");  // no final line end
  expect_same(read_matrix_market(file),
              csr(4, 5, {0, 2, 2, 5, 5}, {1, 3, 0, 1, 4}, {3, 1, 7, 1, 6}));
}

TEST_F(IoMatrixMarket, ReadsRealValuesAndWindowsLineEnds) {
  const std::string file = write_file("m.mtx",
                                      "%%MatrixMarket Matrix Coordinate Real General\r\n2 2 2\r\n"
                                      "2 2 0.25\r\n1 1 1.5e2\r\n");
  expect_same(read_matrix_market(file), csr(2, 2, {0, 1, 2}, {0, 1}, {150.0f, 0.25f}));
}

TEST_F(IoMatrixMarket, RoundTripsIntegerAndRealFiles) {
  const HostCsr counts = csr(3, 512, {0, 2, 2, 3}, {0, 511, 7}, {1, 16777216, 3});
  write_matrix_market(path("counts.mtx"), counts, true);
  EXPECT_EQ(read_bytes(path("counts.mtx")),
            kIntegerBanner + "3 512 3\n1 1 1\n1 512 16777216\n3 8 3\n");
  expect_same(read_matrix(path("counts.mtx")).csr, counts);

  const HostCsr reals =
      csr(2, 3, {0, 2, 3}, {0, 2, 1}, {0.1f, 1e-7f, std::numeric_limits<float>::max()});
  write_matrix_market(path("reals.mtx"), reals, false);
  const LoadedMatrix loaded = read_matrix(path("reals.mtx"));
  EXPECT_TRUE(loaded.sparse);
  expect_same(loaded.csr, reals);  // 9 significant digits bring back the same floats
  EXPECT_EQ(files_left().size(), 2u);
}

TEST_F(IoMatrixMarket, ReadsGzippedFiles) {
  write_file("m.mtx.gz", test::gzipped(kIntegerBanner + "2 3 2\n2 3 5\n1 1 1\n"));
  const LoadedMatrix loaded = read_matrix(path("m.mtx.gz"));
  EXPECT_TRUE(loaded.sparse);
  expect_same(loaded.csr, csr(2, 3, {0, 1, 2}, {0, 2}, {1, 5}));
}

TEST_F(IoMatrixMarket, ReportsAMissingFile) {
  const std::string file = path("absent.mtx");
  expect_error([&] { read_matrix(file); }, file + ": cannot open: No such file or directory");
}

// ---------------------------------------------------------------------------------------------
// NumPy .npz (scipy.sparse.save_npz, np.savez)

using IoNpz = IoTest;

// The members scipy.sparse.save_npz writes for a matrix, each a .npy: format as bytes ('|S3'),
// shape as int64, data and the index arrays in their own dtypes.
std::vector<ZipMember> scipy_members(const std::string& format, const std::string& shape_data,
                                     const std::vector<ZipMember>& arrays) {
  std::vector<ZipMember> members = arrays;
  members.push_back({"format.npy", npy_file(npy_dict("|S3", "()"), format)});
  members.push_back({"shape.npy", npy_file(npy_dict("<i8", "(2,)"), shape_data)});
  return members;
}

ZipMember member(const std::string& name, const std::string& descr, const std::string& data,
                 std::size_t count) {
  return {name + ".npy", npy_file(npy_dict(descr, "(" + std::to_string(count) + ",)"), data)};
}

// [[0, 2, 0], [1, 0, 3]] in every layout save_npz writes, stored and deflated, with and without
// numpy's zip64 members: the same CSR. csc, coo and unsorted or duplicate entries (summed) too.
TEST_F(IoNpz, ReadsScipySparseInEveryLayoutAndArchiveForm) {
  const HostCsr expected = csr(2, 3, {0, 1, 3}, {1, 0, 2}, {2, 1, 3});
  const std::string shape = little_endian(std::vector<std::int64_t>{2, 3});
  const std::vector<std::pair<std::string, std::vector<ZipMember>>> layouts = {
      {"csr", scipy_members(
                  "csr", shape,
                  {member("data", "<i8", little_endian(std::vector<std::int64_t>{2, 1, 3}), 3),
                   member("indices", "<i4", little_endian(std::vector<std::int32_t>{1, 0, 2}), 3),
                   member("indptr", "<i4", little_endian(std::vector<std::int32_t>{0, 1, 3}), 3)})},
      {"csc",
       scipy_members(
           "csc", shape,
           {member("data", "<f4", little_endian(std::vector<float>{1, 2, 3}), 3),
            member("indices", "<i8", little_endian(std::vector<std::int64_t>{1, 0, 1}), 3),
            member("indptr", "<i8", little_endian(std::vector<std::int64_t>{0, 1, 2, 3}), 4)})},
      // coo, out of order, with 3 split into 1 + 2 (summed) and an explicit zero (dropped).
      {"coo",
       scipy_members(
           "coo", shape,
           {member("data", "<f8", little_endian(std::vector<double>{2, 2, 1, 1, 0}), 5),
            member("row", "<i4", little_endian(std::vector<std::int32_t>{1, 0, 1, 1, 0}), 5),
            member("col", "<i4", little_endian(std::vector<std::int32_t>{2, 1, 0, 2, 0}), 5)})}};
  for (const auto& [format, members] : layouts)
    for (const bool deflate : {false, true})
      for (const bool zip64 : {false, true}) {
        SCOPED_TRACE(format + (deflate ? " deflated" : " stored") + (zip64 ? " zip64" : ""));
        const LoadedMatrix loaded =
            read_matrix(write_file("x.npz", zip_archive(members, deflate, zip64)));
        ASSERT_TRUE(loaded.sparse);
        expect_same(loaded.csr, expected);
      }
  // --transpose reads the columns as rows.
  const LoadedMatrix transposed = read_matrix(
      write_file("t.npz", zip_archive(layouts[0].second, true)), Orientation::transposed);
  expect_same(transposed.csr, csr(3, 2, {0, 1, 2, 3}, {1, 0, 1}, {1, 2, 3}));
}

// np.savez(path, X): one array, read as read_npy reads it; a '<U3' format name reads too.
TEST_F(IoNpz, ReadsOneDenseArrayAndUnicodeFormatNames) {
  const LoadedMatrix dense = read_matrix(write_file(
      "d.npz",
      zip_archive({{"arr_0.npy", npy_file(npy_dict("<u2", "(2, 2)"),
                                          little_endian(std::vector<std::uint16_t>{0, 5, 7, 0}))}},
                  true)));
  ASSERT_FALSE(dense.sparse);
  EXPECT_EQ(dense.dense.values, (std::vector<float>{0, 5, 7, 0}));
  const std::string unicode_csr = little_endian(std::vector<std::uint32_t>{'c', 's', 'r'});
  std::vector<ZipMember> members = {
      {"format.npy", npy_file(npy_dict("<U3", "()"), unicode_csr)},
      {"shape.npy",
       npy_file(npy_dict("<i8", "(2,)"), little_endian(std::vector<std::int64_t>{1, 4}))},
      member("data", "|u1", little_endian(std::vector<std::uint8_t>{9}), 1),
      member("indices", "<i4", little_endian(std::vector<std::int32_t>{3}), 1),
      member("indptr", "<i4", little_endian(std::vector<std::int32_t>{0, 1}), 2),
      {"_is_array.npy", npy_file(npy_dict("|b1", "()"), std::string(1, '\1'))}};
  const LoadedMatrix loaded = read_matrix(write_file("u.npz", zip_archive(members, false)));
  expect_same(loaded.csr, csr(1, 4, {0, 1}, {3}, {9}));
}

// write_npz's archives read back as they were written: counts as scipy.sparse csr (an empty row,
// an empty matrix), a dense matrix as its one array.
TEST_F(IoNpz, WrittenArchivesReadBack) {
  for (const HostCsr& counts :
       {csr(3, 4, {0, 2, 2, 3}, {0, 3, 1}, {5, 1, 7}), csr(0, 6, {0}, {}, {})}) {
    write_npz(path("w.npz"), counts);
    const LoadedMatrix loaded = read_matrix(path("w.npz"));
    ASSERT_TRUE(loaded.sparse);
    expect_same(loaded.csr, counts);
  }
  HostDense dense;
  dense.rows = 2;
  dense.cols = 3;
  dense.values = {0, 1, 2, 30, 0, 5};
  write_npz(path("d.npz"), dense);
  const LoadedMatrix loaded = read_matrix(path("d.npz"));
  ASSERT_FALSE(loaded.sparse);
  EXPECT_EQ(loaded.dense.rows, 2);
  EXPECT_EQ(loaded.dense.values, dense.values);
}

// Each fault in one line that names the file (and the member).
TEST_F(IoNpz, RefusesBadArchivesAndMatricesInOneLine) {
  const std::string shape = little_endian(std::vector<std::int64_t>{2, 3});
  const auto csr_members = [&](const std::string& data_descr, const std::string& data,
                               std::vector<std::int32_t> indices,
                               std::vector<std::int32_t> indptr) {
    return scipy_members("csr", shape,
                         {member("data", data_descr, data, indices.size()),
                          member("indices", "<i4", little_endian(indices), indices.size()),
                          member("indptr", "<i4", little_endian(indptr), indptr.size())});
  };
  const std::string good_data = little_endian(std::vector<std::int64_t>{2, 1, 3});
  const std::string good = zip_archive(csr_members("<i8", good_data, {1, 0, 2}, {0, 1, 3}), true);
  const std::string file = path("bad.npz");
  struct Case {
    std::string bytes;
    std::string message;
  };
  std::string corrupt_crc = good;
  corrupt_crc[40] = static_cast<char>(corrupt_crc[40] ^ 0x55);  // inside the first member's data
  const std::vector<Case> cases = {
      {"not a zip at all, just text", file + ": no zip end record: not a .npz (zip) archive"},
      {zip_archive(csr_members("<i8", little_endian(std::vector<std::int64_t>{2, -1, 3}), {1, 0, 2},
                               {0, 1, 3}),
                   false),
       file + ": data.npy: element 1: negative count -1"},
      {zip_archive(csr_members("<f8", little_endian(std::vector<double>{2, std::nan(""), 3}),
                               {1, 0, 2}, {0, 1, 3}),
                   false),
       file + ": data.npy: element 1: value nan is not finite"},
      {zip_archive(csr_members("<i8", good_data, {1, 0, 3}, {0, 1, 3}), false),
       file + ": indices[2] = 3 outside [0, 3)"},
      {zip_archive(csr_members("<i8", good_data, {1, 0, 2}, {0, 1}), false),
       file + ": csr arrays disagree: indptr has 2 entries (expected 3, from 0 to 3), indices 3, "
              "data 3"},
      {zip_archive(scipy_members("dia", shape, {member("data", "<i8", good_data, 3)}), false),
       file + ": scipy.sparse format 'dia' (this reader takes csr, csc and coo)"},
      {zip_archive({{"a.npy", "x"}, {"b.npy", "y"}}, false),
       file + ": neither a scipy.sparse matrix (no format.npy) nor one array (2 members)"},
      {good.substr(0, good.size() / 2) + good.substr(good.size() - 22),
       file + ": central directory entry 1 missing"}};
  for (const Case& c : cases) {
    write_file("bad.npz", c.bytes);
    expect_error([&] { read_matrix(file); }, c.message);
  }
  // An empty member (what the fuzzer found copied from a null pointer), stored or deflated.
  for (const bool deflate : {false, true}) {
    std::vector<ZipMember> members =
        scipy_members("coo", shape,
                      {member("data", "<i8", good_data, 3),
                       {"row.npy", ""},
                       member("col", "<i4", little_endian(std::vector<std::int32_t>{1, 0, 2}), 3)});
    write_file("bad.npz", zip_archive(members, deflate));
    expect_error([&] { read_matrix(file); },
                 file + ": row.npy: empty file (expected a .npy header)");
  }
  write_file("bad.npz", corrupt_crc);
  try {
    read_matrix(file);
    ADD_FAILURE() << "a corrupt member read";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()).rfind(file + ": ", 0), 0u) << error.what();
  }
}

// ---------------------------------------------------------------------------------------------
// NumPy .npy

using IoNpy = IoTest;

TEST_F(IoNpy, ReadsEveryDtype) {
  const std::vector<float> expected{0, 1, 2, 3, 4, 250};
  const std::vector<std::pair<std::string, std::string>> files{
      {"<f4", little_endian(std::vector<float>{0, 1, 2, 3, 4, 250})},
      {"<f8", little_endian(std::vector<double>{0, 1, 2, 3, 4, 250})},
      {"<i4", little_endian(std::vector<std::int32_t>{0, 1, 2, 3, 4, 250})},
      {"<i8", little_endian(std::vector<std::int64_t>{0, 1, 2, 3, 4, 250})},
      {"|u1", little_endian(std::vector<std::uint8_t>{0, 1, 2, 3, 4, 250})},
      {"|i1", little_endian(std::vector<std::int8_t>{0, 1, 2, 3, 4, 120})},
      {"<i2", little_endian(std::vector<std::int16_t>{0, 1, 2, 3, 4, 250})},
      {"<u2", little_endian(std::vector<std::uint16_t>{0, 1, 2, 3, 4, 250})},
      {"<u4", little_endian(std::vector<std::uint32_t>{0, 1, 2, 3, 4, 250})},
      {"<u8", little_endian(std::vector<std::uint64_t>{0, 1, 2, 3, 4, 250})}};
  for (const auto& [descr, data] : files) {
    SCOPED_TRACE(descr);
    const HostDense dense =
        read_npy(write_file("x.npy", npy_file(npy_dict(descr, "(2, 3)"), data)));
    EXPECT_EQ(dense.rows, 2);
    EXPECT_EQ(dense.cols, 3);
    std::vector<float> want = expected;
    if (descr == "|i1") want.back() = 120;
    EXPECT_EQ(dense.values, want);
  }
}

// np.save(X.T) writes X's bytes as they are, declared Fortran order: the array read is X.T.
TEST_F(IoNpy, ReadsFortranOrderAsTheArrayNumpyHolds) {
  // X.T = [[0, 1, 2], [3, 4, 5]], stored column by column.
  const std::string data = little_endian(std::vector<std::uint16_t>{0, 3, 1, 4, 2, 5});
  const HostDense dense =
      read_npy(write_file("x.npy", npy_file(npy_dict("<u2", "(2, 3)", "True"), data)));
  EXPECT_EQ(dense.rows, 2);
  EXPECT_EQ(dense.cols, 3);
  EXPECT_EQ(dense.values, (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST_F(IoNpy, ReadsFormatVersions2And3) {
  const std::string data = little_endian(std::vector<float>{1, 2});
  for (const int major : {2, 3}) {
    const HostDense dense =
        read_npy(write_file("x.npy", npy_file(npy_dict("<f4", "(1, 2)"), data, major)));
    EXPECT_EQ(dense.values, (std::vector<float>{1, 2}));
  }
}

TEST_F(IoNpy, WritesWhatNumpyWritesAndReadsItBack) {
  HostDense dense;
  dense.rows = 2;
  dense.cols = 3;
  dense.values = {0.0f, 0.1f, 1e-30f, 7.0f, 16777216.0f, std::numeric_limits<float>::max()};
  write_npy(path("x.npy"), dense);
  EXPECT_EQ(read_bytes(path("x.npy")),
            npy_file(npy_dict("<f4", "(2, 3)"), little_endian(dense.values)));
  const LoadedMatrix loaded = read_matrix(path("x.npy"));
  EXPECT_FALSE(loaded.sparse);
  EXPECT_EQ(loaded.rows(), 2);
  EXPECT_EQ(loaded.cols(), 3);
  EXPECT_EQ(loaded.dense.values, dense.values);
}

TEST_F(IoNpy, ReadsAnEmptyArray) {
  const HostDense dense = read_npy(write_file("x.npy", npy_file(npy_dict("<f4", "(0, 512)"), "")));
  EXPECT_EQ(dense.rows, 0);
  EXPECT_EQ(dense.cols, 512);
  EXPECT_TRUE(dense.values.empty());
}

// ---------------------------------------------------------------------------------------------
// CSV

using IoCsv = IoTest;

TEST_F(IoCsv, ReadsRowsWithoutAHeader) {
  const HostDense dense = read_csv(write_file("x.csv", "0,1,2\n3, 4.5 ,1e2\r\n\n"));
  EXPECT_EQ(dense.rows, 2);
  EXPECT_EQ(dense.cols, 3);
  EXPECT_EQ(dense.values, (std::vector<float>{0, 1, 2, 3, 4.5f, 100}));
}

TEST_F(IoCsv, DetectsAHeaderThatIsNotNumeric) {
  const LoadedMatrix loaded = read_matrix(write_file("x.csv", "a,b,c\n0,1,2\n3,4,5\n"));
  EXPECT_FALSE(loaded.sparse);
  EXPECT_EQ(loaded.dense.rows, 2);
  EXPECT_EQ(loaded.dense.values, (std::vector<float>{0, 1, 2, 3, 4, 5}));
  // pandas writes an empty first name for its index column.
  EXPECT_EQ(read_csv(write_file("y.csv", ",0,1\n1,2,3\n")).rows, 1);
}

TEST_F(IoCsv, HonoursAForcedHeaderChoice) {
  const std::string numeric_header = write_file("x.csv", "0,1,2\n3,4,5\n");
  EXPECT_EQ(read_csv(numeric_header, CsvHeader::present).values, (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(read_csv(numeric_header, CsvHeader::absent).rows, 2);
  const std::string named_header = write_file("y.csv", "a,b,c\n3,4,5\n");
  expect_error([&] { read_csv(named_header, CsvHeader::absent); },
               named_header + ":1: field 1 'a' is not a number");
}

// ---------------------------------------------------------------------------------------------
// Dispatch, conversions and writing

using IoReadMatrix = IoTest;

TEST_F(IoReadMatrix, RejectsAnUnknownExtension) {
  const std::string file = write_file("data.txt", "1,2\n");
  expect_error(
      [&] { read_matrix(file); },
      file + ": unrecognised file type (expected .mtx, .mtx.gz, .npz, .h5ad, .npy or .csv)");
}

TEST_F(IoReadMatrix, MatchesExtensionsWhateverTheirCase) {
  write_file("DATA.MTX", kIntegerBanner + "1 1 1\n1 1 4\n");
  EXPECT_TRUE(read_matrix(path("DATA.MTX")).sparse);
}

// --transpose: a genes x cells file read as cells x genes, in every format.
TEST_F(IoReadMatrix, ReadsTheFileTransposedWhenAsked) {
  const HostCsr expected = csr(3, 2, {0, 1, 2, 4}, {1, 0, 0, 1}, {4, 5, 2, 7});
  const std::string mtx =
      write_file("x.mtx", kIntegerBanner + "2 3 4\n2 1 4\n1 2 5\n1 3 2\n2 3 7\n");
  const LoadedMatrix sparse = read_matrix(mtx, Orientation::transposed);
  EXPECT_TRUE(sparse.sparse);
  expect_same(sparse.csr, expected);
  expect_same(
      read_matrix_market(write_file("x.mtx.gz", gzipped(read_bytes(mtx))), Orientation::transposed),
      expected);
  for (const auto& [name, format] : std::vector<std::pair<std::string, MatrixFormat>>{
           {"x.npy", MatrixFormat::npy}, {"x.csv", MatrixFormat::csv}}) {
    SCOPED_TRACE(name);
    const std::string file = path(name);
    write_counts(file, format, read_matrix_market(mtx));
    const LoadedMatrix dense = read_matrix(file, Orientation::transposed);
    EXPECT_FALSE(dense.sparse);
    EXPECT_EQ(dense.dense.rows, 3);
    EXPECT_EQ(dense.dense.cols, 2);
    EXPECT_EQ(dense.dense.values, to_dense(expected).values);
  }
}

TEST_F(IoReadMatrix, NamesTheFilesRowAndColumnWhenTransposed) {
  const std::string file = write_file("x.mtx", kIntegerBanner + "2 3 2\n1 3 16777216\n1 3 1\n");
  expect_error([&] { read_matrix_market(file, Orientation::transposed); },
               file +
                   ": row 1, column 3: duplicate entries sum to 16777217, more than 16777216, "
                   "the largest count float32 holds exactly");
}

TEST(IoConversion, DenseToCsrDropsZerosAndBack) {
  HostDense dense;
  dense.rows = 3;
  dense.cols = 3;
  dense.values = {0, 2, 0, 0, 0, 0, 5, 0, 1};
  const HostCsr sparse = to_csr(dense);
  expect_same(sparse, csr(3, 3, {0, 1, 1, 3}, {1, 0, 2}, {2, 5, 1}));
  EXPECT_EQ(to_dense(sparse).values, dense.values);
}

using IoWrite = IoTest;

TEST_F(IoWrite, LeavesNothingBehindWhenAWriteFails) {
  const HostCsr fractional = csr(2, 2, {0, 1, 2}, {0, 1}, {1.0f, 2.5f});
  const std::string file = path("out.mtx");
  expect_error([&] { write_matrix_market(file, fractional, true); },
               file + ": entry 2 (row 2, column 2): value 2.5 is not a whole number");
  EXPECT_TRUE(files_left().empty());

  // An existing file survives a failed overwrite unchanged.
  write_file("out.mtx", "old contents");
  const HostCsr infinite = csr(1, 1, {0, 1}, {0}, {std::numeric_limits<float>::infinity()});
  expect_error([&] { write_matrix_market(file, infinite, false); },
               file + ": entry 1 (row 1, column 1): value inf is not finite");
  EXPECT_EQ(files_left(), std::vector<std::string>{"out.mtx"});
  EXPECT_EQ(read_bytes(file), "old contents");
}

TEST_F(IoWrite, RefusesInconsistentMatrices) {
  HostDense dense;
  dense.rows = 2;
  dense.cols = 3;
  dense.values.resize(5);
  const std::string npy = path("out.npy");
  expect_error([&] { write_npy(npy, dense); }, npy + ": dense matrix 2x3 has 5 values");
  const std::string mtx = path("out.mtx");
  expect_error(
      [&] {
        write_matrix_market(mtx, csr(1, 2, {0, 1}, {2}, {1}), true);
      },
      mtx + ": CSR matrix 1x2: entry 0 has column index 2 outside [0, 2)");
  EXPECT_TRUE(files_left().empty());
}

TEST_F(IoWrite, ChoosesTheFormatByExtensionOrRefusesIt) {
  const std::vector<MatrixFormat> all{MatrixFormat::matrix_market, MatrixFormat::npy,
                                      MatrixFormat::csv};
  EXPECT_EQ(output_format("a.mtx", all, "w"), MatrixFormat::matrix_market);
  EXPECT_EQ(output_format("dir.d/A.NPY", all, "w"), MatrixFormat::npy);
  EXPECT_EQ(output_format("a.csv", all, "w"), MatrixFormat::csv);
  expect_error([&] { output_format("x.npz", all, "sae gen --out"); },
               "x.npz: sae gen --out writes .mtx, .npy or .csv, not '.npz'");
  expect_error([&] { output_format("x.mtx.gz", all, "w"); },
               "x.mtx.gz: w writes .mtx, .npy or .csv, not '.mtx.gz'");
  expect_error(
      [&] {
        output_format("dir.d/codes", {MatrixFormat::npy, MatrixFormat::csv}, "w");
      },
      "dir.d/codes: w writes .npy or .csv, and the name has no extension");
  expect_error([&] { output_format("c.npy", {MatrixFormat::matrix_market}, "w"); },
               "c.npy: w writes .mtx, not '.npy'");
}

// Counts written in each format read back as the same counts.
TEST_F(IoWrite, CountsRoundTripThroughEveryFormat) {
  const HostCsr counts = csr(3, 4, {0, 2, 2, 4}, {0, 3, 1, 2}, {1, 16777216, 3, 2});
  for (const auto& [name, format] :
       std::vector<std::pair<std::string, MatrixFormat>>{{"c.mtx", MatrixFormat::matrix_market},
                                                         {"c.npy", MatrixFormat::npy},
                                                         {"c.csv", MatrixFormat::csv}}) {
    SCOPED_TRACE(name);
    write_counts(path(name), format, counts);
    const LoadedMatrix loaded = read_matrix(path(name));
    EXPECT_EQ(loaded.sparse, format == MatrixFormat::matrix_market);
    expect_same(loaded.sparse ? loaded.csr : to_csr(loaded.dense), counts);
  }
}

// Dense values (a model's codes) as .npy and .csv: every float32 read back exactly.
TEST_F(IoWrite, ValuesRoundTripThroughNpyAndCsv) {
  HostDense values;
  values.rows = 2;
  values.cols = 3;
  values.values = {-0.1f, 1e-30f, 3.0f, -2.5e7f, 0.0f, std::numeric_limits<float>::max()};
  write_values(path("v.npy"), MatrixFormat::npy, values);
  EXPECT_EQ(read_npy(path("v.npy"), NpyValues::finite).values, values.values);
  write_values(path("v.csv"), MatrixFormat::csv, values);
  EXPECT_EQ(read_bytes(path("v.csv")), "-0.1,1e-30,3\n-2.5e+07,0,3.4028235e+38\n");
  expect_error([&] { write_values(path("v.mtx"), MatrixFormat::matrix_market, values); },
               path("v.mtx") + ": dense values are written as .npy, .npz, .csv or .h5ad, not .mtx");
  std::vector<std::string> written = files_left();
  std::sort(written.begin(), written.end());
  EXPECT_EQ(written, (std::vector<std::string>{"v.csv", "v.npy"}));
}

TEST_F(IoWrite, ReportsADirectoryThatDoesNotExist) {
  const std::string file = path("missing/out.npy");
  expect_error([&] { write_npy(file, HostDense{}); }, file + ": cannot create " + file + ".tmp-" +
                                                          std::to_string(::getpid()) +
                                                          ": No such file or directory");
}

TEST_F(IoWrite, AtomicFileAppearsOnlyOnCommit) {
  {
    AtomicFile file(path("a.bin"));
    file.write("partial");
    EXPECT_EQ(files_left(), std::vector<std::string>{"a.bin.tmp-" + std::to_string(::getpid())});
  }
  EXPECT_TRUE(files_left().empty());
  write_file("a.bin", "old");
  AtomicFile file(path("a.bin"));
  file.write("new");
  EXPECT_EQ(read_bytes(path("a.bin")), "old");
  file.commit();
  EXPECT_EQ(read_bytes(path("a.bin")), "new");
  EXPECT_EQ(files_left(), std::vector<std::string>{"a.bin"});
}

// What the reports and the checkpoints write: members in the order set, strings escaped,
// numbers as precise as asked, and null for what JSON cannot write.
TEST(Json, WritesMembersInOrderAndNonFiniteNumbersAsNull) {
  Json json = Json::object();
  json.set("name", Json::string("a \"quoted\"\tname"))
      .set("fixed", Json::number_fixed(0.75, 6))
      .set("significant", Json::number_significant(2.0 / 3.0, 6))
      .set("exact", Json::number(0.1))
      .set("missing", Json::number_significant(std::nan(""), 6))
      .set("unbounded", Json::number(std::numeric_limits<double>::infinity()))
      .set("list", Json::array({Json::integer(-3), Json::boolean(true)}));
  EXPECT_EQ(json.dump(),
            "{\"name\": \"a \\\"quoted\\\"\\u0009name\", \"fixed\": 0.750000, "
            "\"significant\": 0.666667, \"exact\": 0.10000000000000001, \"missing\": null, "
            "\"unbounded\": null, \"list\": [-3, true]}");
  const Json back = Json::parse(json.dump(), "test");
  EXPECT_EQ(back.at("name").as_string(), "a \"quoted\"\tname");
  EXPECT_EQ(back.at("exact").as_double(), 0.1);
  EXPECT_EQ(back.at("missing").type(), Json::Type::null);
  EXPECT_EQ(back.dump(), json.dump());
}

// Rows built in memory (the Python package's) are checked as a reader checks a file's values.
TEST(RequireCounts, NamesTheFirstEntryThatIsNotACountAndTheBrokenStructure) {
  HostCsr csr;
  csr.rows = 2;
  csr.cols = 3;
  csr.row_offsets = {0, 1, 3};
  csr.col_indices = {2, 0, 1};
  csr.values = {1.0f, 4.0f, 2.5f};
  EXPECT_NO_THROW(require_counts(csr, "X"));
  csr.values[2] = -2.0f;
  EXPECT_EQ(test::error_message([&] { require_counts(csr, "X"); }),
            "X: row 1, column 1: negative count -2 (counts are finite and non-negative)");
  csr.values[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(test::error_message([&] { require_counts(csr, "X"); }),
            "X: row 1, column 0: value nan is not finite (counts are finite and non-negative)");
  csr.col_indices[0] = 3;
  EXPECT_EQ(test::error_message([&] { require_counts(csr, "X"); }),
            "X: CSR matrix 2x3: entry 0 has column index 3 outside [0, 3)");
}

TEST(TextCursor, ReadsTokensAndNamesTheOffsetOnlyWhenAsked) {
  const std::string text = "{'key': \"va\\\"lue\", True, -12.5e3 }";
  TextCursor cursor(text, "what");
  cursor.expect('{');
  EXPECT_EQ(cursor.quoted_string("'\""), "key");
  EXPECT_FALSE(cursor.consume(','));
  cursor.expect(':');
  EXPECT_EQ(cursor.quoted_string("'\""), "va\"lue");
  cursor.expect(',');
  EXPECT_FALSE(cursor.consume_word("False"));
  EXPECT_TRUE(cursor.consume_word("True"));
  cursor.expect(',');
  EXPECT_EQ(cursor.number_token(), "-12.5e3");
  EXPECT_EQ(cursor.number_token(), "");
  EXPECT_EQ(test::error_message([&] { cursor.expect(']'); }), "what: expected ']' at offset 33");
  EXPECT_EQ(test::error_message([&] { cursor.quoted_string("'"); }),
            "what: expected a quoted string at offset 33");
  TextCursor unterminated("'open", "x.npy: malformed header", TextCursor::ErrorOffset::omitted);
  EXPECT_EQ(test::error_message([&] { unterminated.quoted_string("'"); }),
            "x.npy: malformed header: unterminated string");
}

}  // namespace
}  // namespace sparseae
