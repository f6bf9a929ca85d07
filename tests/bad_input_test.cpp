// Every kind of bad input the readers (.mtx, .mtx.gz, .npy, .csv, read by extension as the CLI
// reads them) and the checkpoint loader refuse: one test per kind, each case asserting the whole
// message, which names the file, the position (line, element, or row and column) and the reason.
// A checkpoint's wrong magic, version and checksum are tested in trainer_test.cpp
// (CheckpointErrors); what the CLI prints, its exit code and the files it leaves, in
// cli_test.cpp (Cli.BadInputFiles*).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "checkpoint/checksum.hpp"
#include "file_builders.hpp"
#include "io/reading.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/io.hpp"
#include "sparseae/model.hpp"
#include "test_util.hpp"

namespace sparseae {
namespace {

namespace fs = std::filesystem;
using test::error_message;
using test::gzipped;
using test::little_endian;
using test::npy_dict;
using test::npy_file;

const std::string kIntegerBanner = "%%MatrixMarket matrix coordinate integer general\n";
const std::string kRealBanner = "%%MatrixMarket matrix coordinate real general\n";

// A file of one entry in a 10 x 512 matrix; the comment after it gives the file room for the
// entry by the bound on entries per byte.
std::string one_entry(const std::string& banner, const std::string& entry) {
  return banner + "10 512 1\n" + entry + "\n% end\n";
}

// A file to write, and the message reading it must fail with, after the file's path.
struct BadFile {
  std::string name;
  std::string bytes;
  std::string message;
};

// Each test gets a fresh directory, removed afterwards.
class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = fs::temp_directory_path() / ("sparseae-bad-input-" + std::string(test->name()) +
                                              "-" + std::to_string(::getpid()));
    fs::remove_all(directory_);
    fs::create_directories(directory_);
  }
  void TearDown() override { fs::remove_all(directory_); }

  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string file = (directory_ / name).string();
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    return file;
  }

  // Each file must fail to read with exactly its message.
  void expect_refused(const std::vector<BadFile>& files) const {
    for (const BadFile& bad : files) {
      SCOPED_TRACE(bad.name + " holding '" + bad.bytes.substr(0, 80) + "'");
      const std::string file = write(bad.name, bad.bytes);
      EXPECT_EQ(error_message([&] { read_matrix(file); }), file + bad.message);
    }
  }

  fs::path directory_;
};

TEST_F(BadInput, EmptyFile) {
  expect_refused({
      {"x.mtx", "", ": empty file (expected a MatrixMarket header)"},
      {"x.mtx.gz", gzipped(""), ": empty file (expected a MatrixMarket header)"},
      {"x.npy", "", ": empty file (expected a .npy header)"},
      {"x.csv", "", ": empty file (expected comma-separated rows)"},
      {"blank.csv", "\n  \n\n", ": empty file (expected comma-separated rows)"},
  });
}

TEST_F(BadInput, MissingOrMalformedHeader) {
  const std::string f4_six = little_endian(std::vector<float>{0, 1, 2, 3, 4, 5});
  expect_refused({
      {"x.mtx", "1 2 3\n",
       ":1: not a MatrixMarket file (the first line must start with %%MatrixMarket)"},
      {"x.mtx.gz", gzipped("hello\n"),
       ":1: not a MatrixMarket file (the first line must start with %%MatrixMarket)"},
      {"x.mtx", "%%MatrixMarket matrix coordinate integer\n",
       ":1: the banner must read '%%MatrixMarket matrix coordinate integer|real general'"},
      {"x.mtx", "%%MatrixMarket vector coordinate integer general\n",
       ":1: object 'vector' is not supported (expected matrix)"},
      {"x.mtx", "%%MatrixMarket matrix array real general\n",
       ":1: format 'array' is not supported (expected coordinate)"},
      {"x.mtx", "%%MatrixMarket matrix coordinate pattern general\n",
       ":1: field 'pattern' is not supported (expected integer or real)"},
      {"x.mtx", "%%MatrixMarket matrix coordinate integer symmetric\n",
       ":1: symmetry 'symmetric' is not supported (expected general)"},
      {"x.mtx", kIntegerBanner + "% only comments\n", ": no size line after the banner"},
      {"x.mtx", kIntegerBanner + "10 512\n",
       ":2: the size line must be 'rows columns entries' (non-negative integers), found "
       "'10 512'"},
      {"x.mtx", kIntegerBanner + "% rows cols entries\n10 -1 0\n",
       ":3: the size line must be 'rows columns entries' (non-negative integers), found "
       "'10 -1 0'"},
      {"x.mtx", kIntegerBanner + "ten 512 0\n",
       ":2: the size line must be 'rows columns entries' (non-negative integers), found "
       "'ten 512 0'"},
      {"x.npy", "PK\x03\x04 not numpy at all", ": not a .npy file (bad magic)"},
      {"x.npy", "\x93NUMPY", ": truncated header"},
      // A header length that runs past the end of the file.
      {"x.npy", std::string("\x93NUMPY\x01\x00\xff\x7f{}", 12), ": truncated header"},
      {"x.npy", npy_file(npy_dict("<f4", "(2, 3)"), f4_six, 4),
       ": unsupported format version 4.0 (expected 1.0, 2.0 or 3.0)"},
      {"x.npy", npy_file("{'descr': '<f4', 'shape': (2, 3), }", f4_six),
       ": malformed header: it lacks one of 'descr', 'fortran_order', 'shape'"},
      {"x.npy", npy_file("{'descr': '<f4', 'fortran_order': maybe, 'shape': (2, 3), }", f4_six),
       ": malformed header: 'fortran_order' is not True or False"},
      {"x.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", f4_six),
       ": malformed header: 'shape' is not a tuple of sizes"},
      {"x.npy", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", f4_six),
       ": malformed header: expected '}'"},
      {"x.npy", npy_file("{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4_six),
       ": malformed header: expected ':'"},
  });
}

TEST_F(BadInput, WrongDeclaredCounts) {
  const std::string f4_six = little_endian(std::vector<float>{0, 1, 2, 3, 4, 5});
  // A gzipped file's declared entries are bounded by its compressed size times deflate's best
  // ratio.
  const std::string big_gz = gzipped(kIntegerBanner + "10 512 1000000000\n1 1 1\n");
  expect_refused({
      // 76 bytes of file, 18 of them after the size line: room for 3 entries, not 4.
      {"x.mtx", kIntegerBanner + "10 512 4\n1 1 1\n2 2 2\n3 3 3\n",
       ":2: declares 4 entries, more than its 76 bytes can hold"},
      {"x.mtx.gz", big_gz,
       ":2: declares 1000000000 entries, more than its " + std::to_string(big_gz.size()) +
           " compressed bytes can hold"},
      {"x.npy", npy_file(npy_dict("<f4", "(2, 3)"), f4_six.substr(0, 20)),
       ": holds 20 data bytes, shape (2, 3) of '<f4' needs 24"},
      {"x.npy", npy_file(npy_dict("<f4", "(2, 3)"), f4_six + "x"),
       ": holds 25 data bytes, shape (2, 3) of '<f4' needs 24"},
      {"x.npy", npy_file(npy_dict("<f4", "(3, 3)"), f4_six),
       ": holds 24 data bytes, shape (3, 3) of '<f4' needs 36"},
  });
}

TEST_F(BadInput, FewerOrMoreEntriesThanDeclared) {
  const std::string nine_of_ten = kIntegerBanner +
                                  "10 512 10\n1 1 1\n2 2 2\n3 3 3\n4 4 4\n5 5 5\n6 6 6\n"
                                  "7 7 7\n8 8 8\n9 9 9\n% the last entry is missing\n";
  const std::string two_of_one = kIntegerBanner + "10 512 1\n1 1 1\n2 2 2\n";
  expect_refused({
      {"x.mtx", nine_of_ten, ": declares 10 entries but has 9"},
      {"x.mtx.gz", gzipped(nine_of_ten), ": declares 10 entries but has 9"},
      {"x.mtx", two_of_one, ":4: more entries than the 1 declared"},
      {"x.mtx.gz", gzipped(two_of_one), ":4: more entries than the 1 declared"},
      {"x.mtx", one_entry(kIntegerBanner, "1 1"),
       ":3: entry has 2 fields, expected 3 (row column value)"},
      {"x.mtx", one_entry(kIntegerBanner, "1 1 1 1"),
       ":3: entry has 4 fields, expected 3 (row column value)"},
  });
}

TEST_F(BadInput, IndexZeroNegativeOrPastTheSize) {
  expect_refused({
      {"x.mtx", one_entry(kIntegerBanner, "0 1 1"), ":3: row index 0 outside [1, 10]"},
      {"x.mtx", one_entry(kIntegerBanner, "-1 1 1"), ":3: row index -1 outside [1, 10]"},
      {"x.mtx", one_entry(kIntegerBanner, "11 1 1"), ":3: row index 11 outside [1, 10]"},
      {"x.mtx", one_entry(kIntegerBanner, "99999999999999999999 1 1"),
       ":3: row index 99999999999999999999 outside [1, 10]"},
      {"x.mtx", one_entry(kIntegerBanner, "1 0 1"), ":3: column index 0 outside [1, 512]"},
      {"x.mtx", one_entry(kIntegerBanner, "1 -7 1"), ":3: column index -7 outside [1, 512]"},
      {"x.mtx", kIntegerBanner + "10 512 3\n1 1 1\n2 2 2\n%\n3 513 1\n",
       ":6: column index 513 outside [1, 512]"},
      {"x.mtx", one_entry(kIntegerBanner, "x 1 1"), ":3: row index 'x' is not an integer"},
      {"x.mtx", one_entry(kIntegerBanner, "1 2.0 1"), ":3: column index '2.0' is not an integer"},
      {"x.mtx.gz", gzipped(one_entry(kIntegerBanner, "1 600 1")),
       ":3: column index 600 outside [1, 512]"},
  });
}

// Entries that share a row and a column are summed (MatrixMarket leaves duplicates to the
// reader; summing is what scipy does), and their sum must be a count like any single value.
TEST_F(BadInput, DuplicateEntriesAreSummedAndTheirSumMustBeACount) {
  const std::string file =
      write("sum.mtx", kIntegerBanner + "2 3 4\n2 3 4\n1 1 16777215\n2 3 5\n1 1 1\n");
  const HostCsr summed = read_matrix(file).csr;
  EXPECT_EQ(summed.row_offsets, (std::vector<RowOffset>{0, 1, 2}));
  EXPECT_EQ(summed.col_indices, (std::vector<ColIndex>{0, 2}));
  EXPECT_EQ(summed.values, (std::vector<float>{16777216, 9}));
  expect_refused({
      // Summed in float, 16777216 + 1 would round back to 16777216 without a word.
      {"x.mtx", kIntegerBanner + "2 3 3\n1 1 16777215\n2 2 1\n1 1 2\n",
       ": row 1, column 1: duplicate entries sum to 16777217, more than 16777216, the largest "
       "count float32 holds exactly"},
      {"x.mtx", kRealBanner + "2 3 3\n2 3 3e38\n2 2 1\n2 3 1e38\n",
       ": row 2, column 3: duplicate entries sum to 3.99999997e+38, outside the float32 range"},
  });
}

TEST_F(BadInput, NegativeCounts) {
  expect_refused({
      {"x.mtx", kIntegerBanner + "10 512 2\n1 1 1\n2 2 -2\n", ":4: negative count -2"},
      {"x.mtx", one_entry(kRealBanner, "1 1 -0.5"), ":3: negative count -0.5"},
      {"x.mtx", one_entry(kIntegerBanner, "1 1 -99999999999999999999"),
       ":3: negative count -99999999999999999999"},
      {"x.npy",
       npy_file(npy_dict("<i8", "(2, 3)"),
                little_endian(std::vector<std::int64_t>{0, 1, 2, 3, 4, -2})),
       ": element [1, 2]: negative count -2"},
      {"x.npy", npy_file(npy_dict("<f4", "(1, 1)"), little_endian(std::vector<float>{-0.5f})),
       ": element [0, 0]: negative count -0.5"},
      {"x.npy",
       npy_file(npy_dict("|i1", "(1, 2)"), little_endian(std::vector<std::int8_t>{0, -128})),
       ": element [0, 1]: negative count -128"},
      {"x.npy",
       npy_file(npy_dict("<i2", "(1, 2)"), little_endian(std::vector<std::int16_t>{-1, 0})),
       ": element [0, 0]: negative count -1"},
      // Fortran order: the element is named by its place in the array, not in the file.
      {"x.npy",
       npy_file(npy_dict("<i2", "(2, 3)", "True"),
                little_endian(std::vector<std::int16_t>{0, 3, 1, -4, 2, 5})),
       ": element [1, 1]: negative count -4"},
      {"x.csv", "1,2,3\n1,-2,3\n", ":2: field 2: negative count -2"},
  });
}

TEST_F(BadInput, NanOrInf) {
  const double inf = std::numeric_limits<double>::infinity();
  expect_refused({
      {"x.mtx", one_entry(kRealBanner, "1 1 nan"), ":3: value nan is not finite"},
      {"x.mtx", one_entry(kRealBanner, "1 1 inf"), ":3: value inf is not finite"},
      {"x.mtx", one_entry(kRealBanner, "1 1 -inf"), ":3: value -inf is not finite"},
      // Finite in the file, infinite as float32.
      {"x.mtx", one_entry(kRealBanner, "1 1 1e39"), ":3: value 1e39 is outside the float32 range"},
      {"x.mtx", one_entry(kRealBanner, "1 1 1e999"),
       ":3: value 1e999 is outside the float32 range"},
      {"x.npy",
       npy_file(npy_dict("<f4", "(2, 3)"),
                little_endian(std::vector<float>{0, std::nanf(""), 2, 3, 4, 5})),
       ": element [0, 1]: value nan is not finite"},
      {"x.npy", npy_file(npy_dict("<f8", "(1, 2)"), little_endian(std::vector<double>{1, inf})),
       ": element [0, 1]: value inf is not finite"},
      {"x.npy", npy_file(npy_dict("<f8", "(1, 2)"), little_endian(std::vector<double>{1e300, 1})),
       ": element [0, 0]: value 1e+300 is outside the float32 range"},
      {"x.csv", "1,2,3\n1,2,nan\n", ":2: field 3: value nan is not finite"},
      {"x.csv", "1,2,3\ninf,2,3\n", ":2: field 1: value inf is not finite"},
      {"x.csv", "1,2,3\n1,2,1e39\n", ":2: field 3: value 1e39 is outside the float32 range"},
  });
}

TEST_F(BadInput, RealValueWhereAnIntegerFormatIsDeclared) {
  expect_refused({
      {"x.mtx", one_entry(kIntegerBanner, "1 1 1.5"),
       ":3: value 1.5 is not an integer (the header declares integer)"},
      {"x.mtx", one_entry(kIntegerBanner, "1 1 2e3"),
       ":3: value 2e3 is not an integer (the header declares integer)"},
      {"x.mtx", one_entry(kIntegerBanner, "1 1 nan"),
       ":3: value nan is not an integer (the header declares integer)"},
      {"x.mtx", one_entry(kIntegerBanner, "1 1 one"), ":3: value 'one' is not a number"},
      // An integer float32 would round.
      {"x.mtx", one_entry(kIntegerBanner, "1 1 16777217"),
       ":3: count 16777217 exceeds 16777216, the largest that float32 holds exactly"},
      {"x.npy",
       npy_file(npy_dict("<i4", "(1, 2)"), little_endian(std::vector<std::int32_t>{16777217, 0})),
       ": element [0, 0]: count 16777217 exceeds 16777216, the largest that float32 holds "
       "exactly"},
      {"x.npy",
       npy_file(npy_dict("<u4", "(1, 2)"),
                little_endian(std::vector<std::uint32_t>{0, 4294967295u})),
       ": element [0, 1]: count 4294967295 exceeds 16777216, the largest that float32 holds "
       "exactly"},
      // Beyond int64.
      {"x.npy",
       npy_file(npy_dict("<u8", "(1, 2)"),
                little_endian(std::vector<std::uint64_t>{0, 18446744073709551615u})),
       ": element [0, 1]: count 18446744073709551615 exceeds 16777216, the largest that float32 "
       "holds exactly"},
      {"x.csv", "1,2,3\n1,two,3\n", ":2: field 2 'two' is not a number"},
  });
}

TEST_F(BadInput, TruncatedOrCorruptGzip) {
  std::string text = kIntegerBanner + "1000 512 3000\n";
  for (int k = 0; k < 3000; ++k)
    text += std::to_string(k % 1000 + 1) + " " + std::to_string(k * 7 % 512 + 1) + " 1\n";
  const std::string whole = gzipped(text);
  ASSERT_NO_THROW(read_matrix(write("whole.mtx.gz", whole)));
  std::string bad_crc = whole;
  bad_crc[bad_crc.size() - 8] ^= 0x01;  // the trailer: CRC-32, then the length
  expect_refused({
      {"x.mtx.gz", whole.substr(0, whole.size() / 2),
       ": truncated or corrupt gzip data (unexpected end of file)"},
      // Every entry arrives, but the checksum and the length do not.
      {"x.mtx.gz", whole.substr(0, whole.size() - 4),
       ": truncated or corrupt gzip data (unexpected end of file)"},
      {"x.mtx.gz", bad_crc, ": truncated or corrupt gzip data (incorrect data check)"},
  });
}

TEST_F(BadInput, NpyWithAnUnsupportedDtypeOrShape) {
  const std::string f4_six = little_endian(std::vector<float>{0, 1, 2, 3, 4, 5});
  const std::string expected = "' (expected little-endian float32, float64 or an integer type)";
  expect_refused({
      {"x.npy", npy_file(npy_dict("<c8", "(2, 3)"), f4_six), ": unsupported dtype '<c8" + expected},
      {"x.npy", npy_file(npy_dict(">f4", "(2, 3)"), f4_six), ": unsupported dtype '>f4" + expected},
      {"x.npy", npy_file(npy_dict(">i2", "(2, 3)"), f4_six), ": unsupported dtype '>i2" + expected},
      {"x.npy", npy_file(npy_dict("<U3", "(2, 3)"), f4_six), ": unsupported dtype '<U3" + expected},
      {"x.npy", npy_file(npy_dict("|b1", "(2, 3)"), f4_six), ": unsupported dtype '|b1" + expected},
      {"x.npy", npy_file(npy_dict("<f2", "(2, 3)"), f4_six), ": unsupported dtype '<f2" + expected},
      {"x.npy", npy_file(npy_dict("<f4", "(1, 2, 3)"), f4_six),
       ": expected a 2-D array, found shape (1, 2, 3)"},
      {"x.npy", npy_file(npy_dict("<f4", "(6,)"), f4_six),
       ": expected a 2-D array, found shape (6,)"},
      {"x.npy", npy_file(npy_dict("<f4", "()"), f4_six.substr(0, 4)),
       ": expected a 2-D array, found shape ()"},
  });
}

TEST_F(BadInput, CsvWithRaggedRows) {
  expect_refused({
      {"x.csv", "1,2,3\n1,2,3,4\n", ":2: row has 4 fields, expected 3"},
      {"x.csv", "1,2,3\n4,5,6\n\n7,8\n", ":4: row has 2 fields, expected 3"},
      {"x.csv", "a,b,c,d,e\n1,2,3,4,5\n1,2,3,4\n", ":3: row has 4 fields, expected 5"},
      {"x.csv", "1,2,3\n1,2,3,\n", ":2: row has 4 fields, expected 3"},
      {"x.csv", "1,2,3\n1,,3\n", ":2: field 2 is empty"},
  });
}

// Declared sizes are checked against the readers' limits and the file's size, then against the
// memory this process may use, all before anything is allocated.
TEST_F(BadInput, DeclaredSizesFarBeyondMemory) {
  expect_refused({
      {"x.mtx", kIntegerBanner + "3000000000 512 0\n",
       ":2: 3000000000 rows exceed the limit of 2147483647"},
      {"x.mtx", kIntegerBanner + "10 3000000000 0\n",
       ":2: 3000000000 columns exceed the limit of 2147483647"},
      {"x.mtx", kIntegerBanner + "10 512 5000000000\n",
       ":2: 5000000000 entries exceed the limit of 4294967296"},
      {"x.mtx", kIntegerBanner + "10 512 99999999999999999999\n",
       ":2: the size line must be 'rows columns entries' (non-negative integers), found "
       "'10 512 99999999999999999999'"},
      {"x.npy", npy_file(npy_dict("<f4", "(100000, 100000)"), ""),
       ": shape (100000, 100000) exceeds the limit of 4294967296 values"},
      {"x.npy", npy_file(npy_dict("<f4", "(99999999999999999999, 2)"), ""),
       ": malformed header: 'shape' is not a tuple of sizes"},
  });

  // Within the limits, but beyond the memory this process may use (here capped at 1 GiB, as
  // ulimit -d would): the row offsets of 2^31 - 1 rows alone take 16 GiB.
  struct MemoryCap {
    MemoryCap() { io_detail::set_memory_cap(std::int64_t{1} << 30); }
    ~MemoryCap() { io_detail::set_memory_cap(io_detail::kNoMemoryCap); }
  } cap;
  expect_refused({
      {"x.mtx", kIntegerBanner + "2147483647 512 0\n",
       ":2: 2147483647 rows and 0 entries need 16.0 GiB, more than the 1.0 GiB of memory this "
       "process may use"},
      {"x.mtx.gz", gzipped(kIntegerBanner + "2147483647 512 0\n"),
       ":2: 2147483647 rows and 0 entries need 16.0 GiB, more than the 1.0 GiB of memory this "
       "process may use"},
  });
  // A uint8 file takes four times its size as float32 values.
  io_detail::set_memory_cap(std::int64_t{1} << 20);
  expect_refused({
      {"x.npy", npy_file(npy_dict("|u1", "(1024, 512)"), std::string(1024 * 512, '\0')),
       ": shape (1024, 512) as float32 values need 2.0 MiB, more than the 1.0 MiB of memory "
       "this process may use"},
  });
}

// ---------------------------------------------------------------------------------------------
// Checkpoints: a configuration that is not what the format says, behind a valid checksum (a
// corrupt byte fails the checksum first).

// The bytes of a checkpoint of a 4-3-2-3-4 model, split where its configuration's JSON sits.
struct CheckpointParts {
  std::string head;  // magic, version, flags
  std::string configuration;
  std::string tail;  // from the parameter count to the last field, without the checksum
};

CheckpointParts small_checkpoint_parts(const std::string& file) {
  RunConfig config;
  config.model.input_dim = 4;
  config.model.hidden = {3};
  config.model.latent = 2;
  Checkpoint checkpoint{config, {}};
  TrainingState& state = checkpoint.state;
  state.parameters = ModelLayout(config.model).initial_parameters();
  state.first_moment = state.second_moment = state.best_parameters = state.parameters;
  save_checkpoint(file, checkpoint);
  std::ifstream in(file, std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::uint64_t json_bytes = 0;
  std::memcpy(&json_bytes, bytes.data() + 16, sizeof json_bytes);
  CheckpointParts parts;
  parts.head = bytes.substr(0, 16);
  parts.configuration = bytes.substr(24, json_bytes);
  parts.tail = bytes.substr(24 + json_bytes, bytes.size() - 24 - json_bytes - 8);
  return parts;
}

// A checkpoint of these parts, its checksum valid.
std::string checkpoint_bytes(const CheckpointParts& parts) {
  const std::uint64_t json_bytes = parts.configuration.size();
  std::string bytes = parts.head;
  bytes.append(reinterpret_cast<const char*>(&json_bytes), sizeof json_bytes);
  bytes += parts.configuration + parts.tail;
  const std::uint64_t checksum =
      checkpoint_checksum(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  bytes.append(reinterpret_cast<const char*>(&checksum), sizeof checksum);
  return bytes;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from << " is not in " << text;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST_F(BadInput, CheckpointWithABadConfigurationOrLength) {
  const CheckpointParts good = small_checkpoint_parts(write("good.ckpt", ""));
  const auto with_configuration = [&](const std::string& json) {
    CheckpointParts parts = good;
    parts.configuration = json;
    return checkpoint_bytes(parts);
  };
  const auto with_tail = [&](const std::string& tail) {
    CheckpointParts parts = good;
    parts.tail = tail;
    return checkpoint_bytes(parts);
  };
  const std::string& json = good.configuration;
  std::uint64_t parameters = 0;
  std::memcpy(&parameters, good.tail.data(), sizeof parameters);
  const auto parameter_count = [](std::int64_t hidden) {
    ModelConfig model;
    model.input_dim = 4;
    model.hidden = {hidden};
    model.latent = 2;
    return std::to_string(ModelLayout(model).parameter_count());
  };
  const struct {
    std::string bytes;
    std::string message;
  } cases[] = {
      {"", ": empty file (expected a sparseae checkpoint)"},
      {checkpoint_bytes(good).substr(0, 20), ": truncated checkpoint (header)"},
      {with_configuration("{}"), ": configuration: no member 'model'"},
      {with_configuration(json.substr(0, 30)), ": configuration: unterminated string at offset 30"},
      {with_configuration(std::string(40, '[')),
       ": configuration: nesting deeper than 32 levels at offset 32"},
      {with_configuration(replaced(json, "\"latent\": 2", "\"latent\": \"2\"")),
       ": configuration: a value is not a number"},
      {with_configuration(replaced(json, "\"input_dim\": 4", "\"input_dim\": 0")),
       ": configuration: model: input width must be positive"},
      // Found with the checkpoint fuzzer's harness: widths whose products overflowed int64.
      {with_configuration(replaced(json, "\"hidden\": [3]", "\"hidden\": [4611686018427387904]")),
       ": configuration: model: a layer is wider than 1099511627776 (2^40)"},
      {with_configuration(
           replaced(json, "\"hidden\": [3]", "\"hidden\": [3037000500, 3037000500]")),
       ": configuration: model: more than 1099511627776 (2^40) parameters"},
      {with_configuration(replaced(json, "\"hidden\": [3]", "\"hidden\": [40]")),
       ": checkpoint holds " + parameter_count(3) + " parameters, its model configuration needs " +
           parameter_count(40)},
      // Found with the checkpoint fuzzer's harness: no parameters at all.
      {with_tail(std::string(8, '\0') + good.tail.substr(8 + 4 * sizeof(float) * parameters)),
       ": checkpoint holds 0 parameters, its model configuration needs " + parameter_count(3)},
      {with_tail(good.tail.substr(0, 12)), ": truncated checkpoint (parameters)"},
      {with_tail(good.tail.substr(0, good.tail.size() - 1)),
       ": truncated checkpoint (patience counter)"},
      {with_tail(good.tail + "xy"), ": 2 unexpected bytes after the last field (patience counter)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    const std::string file = write("bad.ckpt", c.bytes);
    EXPECT_EQ(error_message([&] { load_checkpoint(file); }), file + c.message);
  }
}

}  // namespace
}  // namespace sparseae
