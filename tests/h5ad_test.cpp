// AnnData .h5ad files (read_h5ad, write_h5ad, write_h5ad_codes): X as csr_matrix, csc_matrix or
// a dense dataset in the dtypes anndata writes, files written here read back, and bad files each
// refused in one line that names the file. The files are built with the HDF5 C API
// (h5ad_builder.hpp); ctest's h5ad_h5py checks the same files against h5py and anndata.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "h5ad_builder.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"
#include "test_util.hpp"

namespace sparseae {
namespace {

namespace fs = std::filesystem;
using test::csr;
using test::expect_same;
using test::H5File;
using test::write_sparse_x;

class H5ad : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = fs::temp_directory_path() /
                 ("sparseae-h5ad-" + std::string(test->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(directory_);
    fs::create_directories(directory_);
  }
  void TearDown() override { fs::remove_all(directory_); }

  std::string path(const std::string& name) const { return (directory_ / name).string(); }

  fs::path directory_;
};

// The error's message, which must be one line; "" (and a failure) when action does not throw.
std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << "no error";
  return "";
}

// [[0, 2, 0], [1, 0, 3]], as CSR.
const HostCsr kExpected = csr(2, 3, {0, 1, 3}, {1, 0, 2}, {2, 1, 3});

TEST_F(H5ad, ReadsCsrWithInt32AndInt64IndicesAndAnyNumericData) {
  write_sparse_x(path("f32.h5ad"), "csr_matrix", {2, 3}, std::vector<float>{2, 1, 3},
                 std::vector<std::int32_t>{1, 0, 2}, std::vector<std::int32_t>{0, 1, 3});
  write_sparse_x(path("i64.h5ad"), "csr_matrix", {2, 3}, std::vector<std::int64_t>{2, 1, 3},
                 std::vector<std::int64_t>{1, 0, 2}, std::vector<std::int64_t>{0, 1, 3});
  write_sparse_x(path("u8.h5ad"), "csr_matrix", {2, 3}, std::vector<std::uint8_t>{2, 1, 3},
                 std::vector<std::int64_t>{1, 0, 2}, std::vector<std::int64_t>{0, 1, 3});
  for (const std::string name : {"f32.h5ad", "i64.h5ad", "u8.h5ad"}) {
    SCOPED_TRACE(name);
    const LoadedMatrix loaded = read_matrix(path(name));
    ASSERT_TRUE(loaded.sparse);
    expect_same(loaded.csr, kExpected);
  }
  // --transpose reads the columns as rows.
  expect_same(read_matrix(path("f32.h5ad"), Orientation::transposed).csr,
              csr(3, 2, {0, 1, 2, 3}, {1, 0, 1}, {1, 2, 3}));
}

TEST_F(H5ad, ReadsCscAsCsrWithDuplicatesSummedAndZerosDropped) {
  // Column-major [[0, 2, 0], [1, 0, 3]] with the 3 split into 1 + 2 and an explicit zero.
  write_sparse_x(path("c.h5ad"), "csc_matrix", {2, 3}, std::vector<double>{1, 0, 2, 1, 2},
                 std::vector<std::int32_t>{1, 0, 0, 1, 1}, std::vector<std::int32_t>{0, 1, 3, 5});
  const LoadedMatrix loaded = read_matrix(path("c.h5ad"));
  ASSERT_TRUE(loaded.sparse);
  expect_same(loaded.csr, kExpected);
}

TEST_F(H5ad, ReadsDenseXAndFixedLengthAttributes) {
  {
    H5File file(path("d.h5ad"));
    file.dataset("X", std::vector<std::uint16_t>{0, 2, 0, 1, 0, 3}, {2, 3});
    file.text_attribute("X", "encoding-type", "array", true);
  }
  const LoadedMatrix dense = read_matrix(path("d.h5ad"));
  ASSERT_FALSE(dense.sparse);
  EXPECT_EQ(dense.dense.rows, 2);
  EXPECT_EQ(dense.dense.cols, 3);
  EXPECT_EQ(dense.dense.values, (std::vector<float>{0, 2, 0, 1, 0, 3}));
  EXPECT_EQ(read_matrix(path("d.h5ad"), Orientation::transposed).dense.values,
            (std::vector<float>{0, 1, 2, 0, 0, 3}));
  {
    H5File file(path("fixed.h5ad"));
    file.group("X");
    file.text_attribute("X", "encoding-type", "csr_matrix", true);
    file.shape_attribute("X", {2, 3});
    file.dataset("X/data", std::vector<float>{2, 1, 3});
    file.dataset("X/indices", std::vector<std::int32_t>{1, 0, 2});
    file.dataset("X/indptr", std::vector<std::int32_t>{0, 1, 3});
  }
  expect_same(read_matrix(path("fixed.h5ad")).csr, kExpected);
  {  // as anndata before 0.7 wrote X: h5sparse_format and h5sparse_shape
    H5File file(path("old.h5ad"));
    file.group("X");
    file.text_attribute("X", "h5sparse_format", "csr");
    file.shape_attribute("X", {2, 3}, "h5sparse_shape");
    file.dataset("X/data", std::vector<float>{2, 1, 3});
    file.dataset("X/indices", std::vector<std::int32_t>{1, 0, 2});
    file.dataset("X/indptr", std::vector<std::int32_t>{0, 1, 3});
  }
  expect_same(read_matrix(path("old.h5ad")).csr, kExpected);
}

TEST_F(H5ad, WrittenFilesReadBack) {
  for (const HostCsr& counts :
       {csr(3, 4, {0, 2, 2, 3}, {0, 3, 1}, {5, 1, 7}), csr(0, 6, {0}, {}, {})}) {
    write_h5ad(path("w.h5ad"), counts);
    const LoadedMatrix loaded = read_matrix(path("w.h5ad"));
    ASSERT_TRUE(loaded.sparse);
    expect_same(loaded.csr, counts);
  }
  HostDense codes;
  codes.rows = 2;
  codes.cols = 3;
  codes.values = {0.5f, -1.25f, 3, 0, 2, -7};
  write_values(path("z.h5ad"), MatrixFormat::h5ad, codes);
  // Codes are in obsm; X is absent, as anndata writes it.
  const hid_t file = H5Fopen(path("z.h5ad").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  EXPECT_EQ(H5Lexists(file, "X", H5P_DEFAULT), 0);
  const hid_t dataset = H5Dopen2(file, "obsm/X_sparseae", H5P_DEFAULT);
  ASSERT_GE(dataset, 0);
  std::vector<float> read_back(6);
  H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, read_back.data());
  EXPECT_EQ(read_back, codes.values);
  H5Dclose(dataset);
  H5Fclose(file);
  EXPECT_EQ(error_of([&] { read_matrix(path("z.h5ad")); }),
            path("z.h5ad") + ": no X (an AnnData file holds its counts in X; this one has none)");
  // Nothing but the files themselves: no temporary left beside them.
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory_))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"w.h5ad", "z.h5ad"}));
}

TEST_F(H5ad, RefusesBadFilesInOneLine) {
  const std::string file = path("bad.h5ad");
  const std::string x = file + ": X";
  const auto refused = [&](const std::function<void()>& build) {
    fs::remove(file);
    build();
    return error_of([&] { read_matrix(file); });
  };
  const auto csr_file = [&](std::vector<std::int64_t> shape, std::vector<double> data,
                            std::vector<std::int32_t> indices, std::vector<std::int32_t> indptr) {
    return [=] { write_sparse_x(file, "csr_matrix", shape, data, indices, indptr); };
  };
  EXPECT_EQ(refused([&] {
              H5File h5(file);
              h5.group("obs");
            }),
            file + ": no X (an AnnData file holds its counts in X; this one has none)");
  EXPECT_EQ(refused(csr_file({2, 3}, {2, -1, 3}, {1, 0, 2}, {0, 1, 3})),
            x + "/data: element 1: negative count -1");
  EXPECT_EQ(refused(csr_file({2, 3}, {2, std::nan(""), 3}, {1, 0, 2}, {0, 1, 3})),
            x + "/data: element 1: value nan is not finite");
  EXPECT_EQ(refused([&] {
              write_sparse_x(file, "csr_matrix", {2, 3}, std::vector<std::int64_t>{2, 1 << 25, 3},
                             std::vector<std::int32_t>{1, 0, 2},
                             std::vector<std::int32_t>{0, 1, 3});
            }),
            x + "/data: element 1: count 33554432 exceeds 16777216, the largest that float32 "
                "holds exactly");
  // A shape the arrays do not fit: 3 rows need 4 indptr entries; a column beyond the shape.
  EXPECT_EQ(refused(csr_file({3, 3}, {2, 1, 3}, {1, 0, 2}, {0, 1, 3})),
            x + ": csr arrays disagree: indptr has 3 entries (expected 4, from 0 to 3), indices 3, "
                "data 3");
  EXPECT_EQ(refused(csr_file({2, 2}, {2, 1, 3}, {1, 0, 2}, {0, 1, 3})),
            x + ": indices[2] = 2 outside [0, 2)");
  EXPECT_EQ(refused(csr_file({2, 3, 1}, {2, 1, 3}, {1, 0, 2}, {0, 1, 3})),
            x + ": attribute 'shape' is not two integers");
  EXPECT_EQ(refused([&] {
              write_sparse_x(file, "coo_matrix", {2, 3}, std::vector<float>{1},
                             std::vector<std::int32_t>{0}, std::vector<std::int32_t>{0});
            }),
            x + ": encoding-type 'coo_matrix' (this reader takes csr_matrix and csc_matrix)");
  EXPECT_EQ(refused([&] {
              H5File h5(file);
              h5.group("X");
              h5.text_attribute("X", "encoding-type", "csr_matrix");
              h5.shape_attribute("X", {2, 3});
              h5.dataset("X/data", std::vector<float>{2, 1, 3});
              h5.dataset("X/indptr", std::vector<std::int32_t>{0, 1, 3});
            }),
            x + "/indices: missing");
  EXPECT_EQ(refused([&] {
              H5File h5(file);
              h5.group("X");
              h5.text_attribute("X", "encoding-type", "csr_matrix");
              h5.shape_attribute("X", {2, 3});
              h5.null_dataset("X/data");
            }),
            x + "/data: empty (a null dataspace)");
  EXPECT_EQ(refused([&] {
              H5File h5(file);
              h5.dataset("X", std::vector<std::uint8_t>{}, {0, 2}, H5T_STD_B8LE);  // a bitfield
            }),
            x + ": unsupported dtype (expected float32, float64 or an integer type of 1 to 8 "
                "bytes)");
  EXPECT_EQ(refused([&] {
              H5File h5(file);
              h5.dataset("X", std::vector<float>{1, 2, 3});
            }),
            x + ": expected a 2-D numeric array, found '<f4' of shape (3,)");
  EXPECT_EQ(refused([&] {
              H5File h5(file);
              h5.group("X");
              h5.shape_attribute("X", {2, 3});
            }),
            x + ": no 'encoding-type' attribute");

  // Not HDF5 at all, and an .h5ad cut short: HDF5's own reason after the file's name.
  const std::string not_hdf5 = refused([&] { std::ofstream(file) << "just text\n"; });
  EXPECT_EQ(not_hdf5.rfind(file + ": not an HDF5 file, or truncated or corrupt (", 0), 0)
      << not_hdf5;
  write_h5ad(path("good.h5ad"), kExpected);
  const auto size = fs::file_size(path("good.h5ad"));
  const std::string truncated = refused([&] {
    fs::copy_file(path("good.h5ad"), file);
    fs::resize_file(file, size / 2);
  });
  EXPECT_EQ(truncated.rfind(file + ": not an HDF5 file, or truncated or corrupt (", 0), 0)
      << truncated;
  EXPECT_EQ(error_of([&] { read_matrix(path("absent.h5ad")); }),
            path("absent.h5ad") + ": cannot open: No such file or directory");
}

}  // namespace
}  // namespace sparseae
