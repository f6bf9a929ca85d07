// Choosing a reader by file name, and converting between sparse and dense matrices.
#include <algorithm>
#include <cctype>
#include <string>

#include "sparseae/error.hpp"
#include "sparseae/io.hpp"

namespace sparseae {

namespace {

bool has_suffix(const std::string& path, const std::string& suffix) {
  return path.size() >= suffix.size() &&
         std::equal(suffix.rbegin(), suffix.rend(), path.rbegin(), [](char a, char b) {
           return a == std::tolower(static_cast<unsigned char>(b));
         });
}

}  // namespace

LoadedMatrix read_matrix(const std::string& path) {
  LoadedMatrix loaded;
  if (has_suffix(path, ".mtx") || has_suffix(path, ".mtx.gz")) {
    loaded.sparse = true;
    loaded.csr = read_matrix_market(path);
  } else if (has_suffix(path, ".npy")) {
    loaded.dense = read_npy(path);
  } else if (has_suffix(path, ".csv")) {
    loaded.dense = read_csv(path);
  } else {
    throw Error(path + ": unrecognised file type (expected .mtx, .mtx.gz, .npy or .csv)");
  }
  return loaded;
}

HostCsr to_csr(const HostDense& dense) {
  require(static_cast<std::int64_t>(dense.values.size()) == dense.rows * dense.cols,
          "to_csr: dense matrix " + std::to_string(dense.rows) + "x" + std::to_string(dense.cols) +
              " has " + std::to_string(dense.values.size()) + " values");
  require(dense.cols <= io_limits::max_cols, "to_csr: " + std::to_string(dense.cols) +
                                                 " columns exceed the limit of " +
                                                 std::to_string(io_limits::max_cols));
  HostCsr csr;
  csr.rows = dense.rows;
  csr.cols = dense.cols;
  csr.row_offsets.assign(static_cast<std::size_t>(dense.rows) + 1, 0);
  const ConstDenseView view = dense.view();
  for (std::int64_t r = 0; r < dense.rows; ++r) {
    for (std::int64_t c = 0; c < dense.cols; ++c) {
      if (view(r, c) != 0.0f) {
        csr.col_indices.push_back(static_cast<ColIndex>(c));
        csr.values.push_back(view(r, c));
      }
    }
    csr.row_offsets[static_cast<std::size_t>(r) + 1] = csr.nnz();
  }
  return csr;
}

HostDense to_dense(const HostCsr& csr) {
  csr.validate();
  require(csr.cols == 0 || csr.rows <= io_limits::max_dense_values / csr.cols,
          "to_dense: " + std::to_string(csr.rows) + "x" + std::to_string(csr.cols) +
              " exceeds the limit of " + std::to_string(io_limits::max_dense_values) + " values");
  HostDense dense;
  dense.rows = csr.rows;
  dense.cols = csr.cols;
  dense.values.assign(static_cast<std::size_t>(csr.rows * csr.cols), 0.0f);
  for (std::int64_t r = 0; r < csr.rows; ++r)
    for (RowOffset k = csr.row_offsets[r]; k < csr.row_offsets[r + 1]; ++k)
      dense.values[static_cast<std::size_t>(r * csr.cols + csr.col_indices[k])] += csr.values[k];
  return dense;
}

}  // namespace sparseae
