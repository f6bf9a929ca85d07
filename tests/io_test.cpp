#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "io/atomic_file.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"

namespace sparseae {
namespace {

namespace fs = std::filesystem;

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

  std::string write_gzip(const std::string& name, const std::string& text) const {
    const std::string file = path(name);
    gzFile gz = gzopen(file.c_str(), "wb");
    EXPECT_NE(gz, nullptr);
    EXPECT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())),
              static_cast<int>(text.size()));
    EXPECT_EQ(gzclose(gz), Z_OK);
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

HostCsr csr(std::int64_t rows, std::int64_t cols, std::vector<RowOffset> offsets,
            std::vector<ColIndex> columns, std::vector<float> values) {
  HostCsr m;
  m.rows = rows;
  m.cols = cols;
  m.row_offsets = std::move(offsets);
  m.col_indices = std::move(columns);
  m.values = std::move(values);
  return m;
}

void expect_same(const HostCsr& actual, const HostCsr& expected) {
  EXPECT_EQ(actual.rows, expected.rows);
  EXPECT_EQ(actual.cols, expected.cols);
  EXPECT_EQ(actual.row_offsets, expected.row_offsets);
  EXPECT_EQ(actual.col_indices, expected.col_indices);
  EXPECT_EQ(actual.values, expected.values);
}

// ---------------------------------------------------------------------------------------------
// MatrixMarket

const std::string kIntegerBanner = "%%MatrixMarket matrix coordinate integer general\n";
const std::string kRealBanner = "%%MatrixMarket matrix coordinate real general\n";

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
  write_gzip("m.mtx.gz", kIntegerBanner + "2 3 2\n2 3 5\n1 1 1\n");
  const LoadedMatrix loaded = read_matrix(path("m.mtx.gz"));
  EXPECT_TRUE(loaded.sparse);
  expect_same(loaded.csr, csr(2, 3, {0, 1, 2}, {0, 2}, {1, 5}));
}

TEST_F(IoMatrixMarket, DetectsTruncatedGzip) {
  std::string text = kIntegerBanner + "1000 512 3000\n";
  for (int k = 0; k < 3000; ++k)
    text += std::to_string(k % 1000 + 1) + " " + std::to_string(k * 7 % 512 + 1) + " 1\n";
  const std::string whole = read_bytes(write_gzip("whole.mtx.gz", text));
  ASSERT_NO_THROW(read_matrix_market(path("whole.mtx.gz")));
  const std::string file = write_file("cut.mtx.gz", whole.substr(0, whole.size() / 2));
  expect_error([&] { read_matrix_market(file); },
               file + ": truncated or corrupt gzip data (unexpected end of file)");
  // Cut inside the trailer: every entry arrives, but the checksum and length do not.
  const std::string trailer_cut = write_file("trailer.mtx.gz", whole.substr(0, whole.size() - 4));
  expect_error([&] { read_matrix_market(trailer_cut); },
               trailer_cut + ": truncated or corrupt gzip data (unexpected end of file)");
}

TEST_F(IoMatrixMarket, NamesTheLineAndTheReasonOfEachError) {
  const auto expect_file_error = [&](const std::string& text, const std::string& message) {
    const std::string file = write_file("data.mtx", text);
    expect_error([&] { read_matrix_market(file); }, file + message);
  };
  // One entry declared; the comment after it gives the file room for it by the byte bound.
  const auto one_entry = [](const std::string& banner, const std::string& entry) {
    return banner + "10 512 1\n" + entry + "\n% end\n";
  };
  expect_file_error(kIntegerBanner + "10 512 3\n1 1 1\n2 2 2\n%\n3 513 1\n",
                    ":6: column index 513 outside [1, 512]");
  expect_file_error(one_entry(kIntegerBanner, "0 1 1"), ":3: row index 0 outside [1, 10]");
  expect_file_error(one_entry(kIntegerBanner, "11 1 1"), ":3: row index 11 outside [1, 10]");
  expect_file_error(one_entry(kIntegerBanner, "99999999999999999999 1 1"),
                    ":3: row index 99999999999999999999 outside [1, 10]");
  expect_file_error(one_entry(kIntegerBanner, "x 1 1"), ":3: row index 'x' is not an integer");
  expect_file_error(one_entry(kIntegerBanner, "1 2.0 1"),
                    ":3: column index '2.0' is not an integer");
  expect_file_error(kIntegerBanner + "10 512 2\n1 1 1\n2 2 -2\n", ":4: negative count -2");
  expect_file_error(one_entry(kIntegerBanner, "1 1 1.5"),
                    ":3: value 1.5 is not an integer (the header declares integer)");
  expect_file_error(one_entry(kIntegerBanner, "1 1 16777217"),
                    ":3: count 16777217 exceeds 16777216, the largest that float32 holds exactly");
  expect_file_error(one_entry(kIntegerBanner, "1 1 one"), ":3: value 'one' is not a number");
  expect_file_error(one_entry(kIntegerBanner, "1 1"),
                    ":3: entry has 2 fields, expected 3 (row column value)");
  expect_file_error(one_entry(kRealBanner, "1 1 nan"), ":3: value nan is not finite");
  expect_file_error(one_entry(kRealBanner, "1 1 -inf"), ":3: value -inf is not finite");
  expect_file_error(one_entry(kRealBanner, "1 1 -0.5"), ":3: negative count -0.5");
  expect_file_error(one_entry(kRealBanner, "1 1 1e39"),
                    ":3: value 1e39 is outside the float32 range");
  expect_file_error(one_entry(kRealBanner, "1 1 1e999"),
                    ":3: value 1e999 is outside the float32 range");
  expect_file_error(kIntegerBanner +
                        "10 512 10\n1 1 1\n2 2 2\n3 3 3\n4 4 4\n5 5 5\n6 6 6\n"
                        "7 7 7\n8 8 8\n9 9 9\n% the last entry is missing\n",
                    ": declares 10 entries but has 9");
  expect_file_error(kIntegerBanner + "10 512 1\n1 1 1\n2 2 2\n",
                    ":4: more entries than the 1 declared");
  expect_file_error("hello\n",
                    ":1: not a MatrixMarket file (the first line must start with "
                    "%%MatrixMarket)");
  expect_file_error("",
                    ":1: not a MatrixMarket file (the first line must start with "
                    "%%MatrixMarket)");
  expect_file_error("%%MatrixMarket matrix coordinate integer\n",
                    ":1: the banner must read '%%MatrixMarket matrix coordinate integer|real "
                    "general'");
  expect_file_error("%%MatrixMarket matrix array real general\n",
                    ":1: format 'array' is not supported (expected coordinate)");
  expect_file_error("%%MatrixMarket matrix coordinate pattern general\n",
                    ":1: field 'pattern' is not supported (expected integer or real)");
  expect_file_error("%%MatrixMarket matrix coordinate integer symmetric\n",
                    ":1: symmetry 'symmetric' is not supported (expected general)");
  expect_file_error("%%MatrixMarket vector coordinate integer general\n",
                    ":1: object 'vector' is not supported (expected matrix)");
  expect_file_error(kIntegerBanner + "% only comments\n", ": no size line after the banner");
  expect_file_error(kIntegerBanner + "10 512\n",
                    ":2: the size line must be 'rows columns entries' (non-negative integers), "
                    "found '10 512'");
  expect_file_error(kIntegerBanner + "10 -1 0\n",
                    ":2: the size line must be 'rows columns entries' (non-negative integers), "
                    "found '10 -1 0'");
  expect_file_error(kIntegerBanner + "3000000000 512 0\n",
                    ":2: 3000000000 rows exceed the limit of 2147483647");
  expect_file_error(kIntegerBanner + "10 3000000000 0\n",
                    ":2: 3000000000 columns exceed the limit of 2147483647");
  expect_file_error(kIntegerBanner + "10 512 5000000000\n",
                    ":2: 5000000000 entries exceed the limit of 4294967296");
  // 76 bytes of file, 18 of them after the size line: room for 3 entries, not 4.
  expect_file_error(kIntegerBanner + "10 512 4\n1 1 1\n2 2 2\n3 3 3\n",
                    ":2: declares 4 entries, more than its 76 bytes can hold");
}

TEST_F(IoMatrixMarket, BoundsTheDeclaredEntriesOfAGzippedFileByItsSize) {
  const std::string file = write_gzip("big.mtx.gz", kIntegerBanner + "10 512 1000000000\n1 1 1\n");
  const auto compressed_bytes = std::to_string(fs::file_size(file));
  expect_error([&] { read_matrix_market(file); },
               file + ":2: declares 1000000000 entries, more than its " + compressed_bytes +
                   " compressed bytes can hold");
}

TEST_F(IoMatrixMarket, ReportsAMissingFile) {
  const std::string file = path("absent.mtx");
  expect_error([&] { read_matrix(file); }, file + ": cannot open: No such file or directory");
}

// ---------------------------------------------------------------------------------------------
// NumPy .npy

// A .npy file as numpy writes it: magic, version, header length, the dict padded with spaces to
// a 64-byte boundary and ended by a newline, then the data.
std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  header.append(63 - (8 + length_bytes + header.size()) % 64, ' ');
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(major);
  bytes += '\0';
  for (std::size_t i = 0; i < length_bytes; ++i)
    bytes += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return bytes + header + data;
}

std::string npy_dict(const std::string& descr, const std::string& shape,
                     const std::string& fortran_order = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran_order + ", 'shape': " + shape +
         ", }";
}

// The little-endian bytes of values, each stored as a T.
template <typename T>
std::string little_endian(const std::vector<T>& values) {
  std::string bytes;
  for (const T value : values) {
    unsigned char raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));  // the tests run on little-endian machines
    bytes.append(reinterpret_cast<const char*>(raw), sizeof(T));
  }
  return bytes;
}

using IoNpy = IoTest;

TEST_F(IoNpy, ReadsEveryDtype) {
  const std::vector<float> expected{0, 1, 2, 3, 4, 250};
  const std::vector<std::pair<std::string, std::string>> files{
      {"<f4", little_endian(std::vector<float>{0, 1, 2, 3, 4, 250})},
      {"<f8", little_endian(std::vector<double>{0, 1, 2, 3, 4, 250})},
      {"<i4", little_endian(std::vector<std::int32_t>{0, 1, 2, 3, 4, 250})},
      {"<i8", little_endian(std::vector<std::int64_t>{0, 1, 2, 3, 4, 250})},
      {"|u1", little_endian(std::vector<std::uint8_t>{0, 1, 2, 3, 4, 250})}};
  for (const auto& [descr, data] : files) {
    SCOPED_TRACE(descr);
    const HostDense dense =
        read_npy(write_file("x.npy", npy_file(npy_dict(descr, "(2, 3)"), data)));
    EXPECT_EQ(dense.rows, 2);
    EXPECT_EQ(dense.cols, 3);
    EXPECT_EQ(dense.values, expected);
  }
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

TEST_F(IoNpy, NamesTheReasonOfEachError) {
  const std::string f4_six = little_endian(std::vector<float>{0, 1, 2, 3, 4, 5});
  const auto expect_file_error = [&](const std::string& bytes, const std::string& message) {
    const std::string file = write_file("x.npy", bytes);
    expect_error([&] { read_npy(file); }, file + message);
  };
  expect_file_error(npy_file(npy_dict("<c8", "(2, 3)"), f4_six),
                    ": unsupported dtype '<c8' (expected float32/64, int32/64, uint8)");
  expect_file_error(npy_file(npy_dict(">f4", "(2, 3)"), f4_six),
                    ": unsupported dtype '>f4' (expected float32/64, int32/64, uint8)");
  expect_file_error(npy_file(npy_dict("<f4", "(2, 3)", "True"), f4_six),
                    ": Fortran order is not supported");
  expect_file_error(npy_file(npy_dict("<f4", "(6,)"), f4_six),
                    ": expected a 2-D array, found shape (6,)");
  expect_file_error(npy_file(npy_dict("<f4", "(1, 2, 3)"), f4_six),
                    ": expected a 2-D array, found shape (1, 2, 3)");
  expect_file_error(npy_file(npy_dict("<f4", "(2, 3)"), f4_six.substr(0, 20)),
                    ": holds 20 data bytes, shape (2, 3) of '<f4' needs 24");
  expect_file_error(npy_file(npy_dict("<f4", "(2, 3)"), f4_six + "x"),
                    ": holds 25 data bytes, shape (2, 3) of '<f4' needs 24");
  expect_file_error(npy_file(npy_dict("<f4", "(100000, 100000)"), f4_six),
                    ": shape (100000, 100000) exceeds the limit of 4294967296 values");
  expect_file_error(npy_file(npy_dict("<i8", "(2, 3)"),
                             little_endian(std::vector<std::int64_t>{0, 1, 2, 3, 4, -2})),
                    ": element [1, 2]: negative count -2");
  expect_file_error(
      npy_file(npy_dict("<i4", "(1, 2)"), little_endian(std::vector<std::int32_t>{16777217, 0})),
      ": element [0, 0]: count 16777217 exceeds 16777216, the largest that "
      "float32 holds exactly");
  expect_file_error(npy_file(npy_dict("<f4", "(2, 3)"),
                             little_endian(std::vector<float>{0, std::nanf(""), 2, 3, 4, 5})),
                    ": element [0, 1]: value nan is not finite");
  expect_file_error(
      npy_file(npy_dict("<f8", "(1, 2)"),
               little_endian(std::vector<double>{1, std::numeric_limits<double>::infinity()})),
      ": element [0, 1]: value inf is not finite");
  expect_file_error(
      npy_file(npy_dict("<f8", "(1, 2)"), little_endian(std::vector<double>{1e300, 1})),
      ": element [0, 0]: value 1e+300 is outside the float32 range");
  expect_file_error(npy_file(npy_dict("<f4", "(1, 1)"), little_endian(std::vector<float>{-0.5f})),
                    ": element [0, 0]: negative count -0.5");
  expect_file_error("PK\x03\x04 not numpy at all", ": not a .npy file (bad magic)");
  expect_file_error("\x93NUMPY", ": truncated header");
  expect_file_error(npy_file(npy_dict("<f4", "(2, 3)"), f4_six, 4),
                    ": unsupported format version 4.0 (expected 1.0, 2.0 or 3.0)");
  expect_file_error(npy_file("{'descr': '<f4', 'shape': (2, 3), }", f4_six),
                    ": malformed header: it lacks one of 'descr', 'fortran_order', 'shape'");
  expect_file_error(npy_file("{'descr': '<f4', 'fortran_order': maybe, 'shape': (2, 3), }", f4_six),
                    ": malformed header: 'fortran_order' is not True or False");
  expect_file_error(
      npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", f4_six),
      ": malformed header: 'shape' is not a tuple of sizes");
  // A header length that runs past the end of the file.
  expect_file_error(std::string("\x93NUMPY\x01\x00\xff\x7f{}", 12), ": truncated header");
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

TEST_F(IoCsv, ReadsAnEmptyFile) {
  const HostDense dense = read_csv(write_file("x.csv", ""));
  EXPECT_EQ(dense.rows, 0);
  EXPECT_EQ(dense.cols, 0);
}

TEST_F(IoCsv, NamesTheLineFieldAndReasonOfEachError) {
  const auto expect_file_error = [&](const std::string& text, const std::string& message) {
    const std::string file = write_file("x.csv", text);
    expect_error([&] { read_csv(file); }, file + message);
  };
  expect_file_error("a,b,c,d,e\n1,2,3,4,5\n1,2,3,4\n", ":3: row has 4 fields, expected 5");
  expect_file_error("1,2,3\n1,2,3,4\n", ":2: row has 4 fields, expected 3");
  expect_file_error("1,2,3\n1,-2,3\n", ":2: field 2: negative count -2");
  expect_file_error("1,2,3\n1,,3\n", ":2: field 2 is empty");
  expect_file_error("1,2,3\n1,two,3\n", ":2: field 2 'two' is not a number");
  expect_file_error("1,2,3\n1,2,nan\n", ":2: field 3: value nan is not finite");
  expect_file_error("1,2,3\n1,2,1e39\n", ":2: field 3: value 1e39 is outside the float32 range");
}

// ---------------------------------------------------------------------------------------------
// Dispatch, conversions and writing

using IoReadMatrix = IoTest;

TEST_F(IoReadMatrix, RejectsAnUnknownExtension) {
  const std::string file = write_file("data.txt", "1,2\n");
  expect_error([&] { read_matrix(file); },
               file + ": unrecognised file type (expected .mtx, .mtx.gz, .npy or .csv)");
}

TEST_F(IoReadMatrix, MatchesExtensionsWhateverTheirCase) {
  write_file("DATA.MTX", kIntegerBanner + "1 1 1\n1 1 4\n");
  EXPECT_TRUE(read_matrix(path("DATA.MTX")).sparse);
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

}  // namespace
}  // namespace sparseae
