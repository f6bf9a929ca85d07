// Choosing a reader or a writer by file name, and converting between sparse and dense matrices.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

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

HostDense transposed(const HostDense& dense) {
  HostDense result;
  result.rows = dense.cols;
  result.cols = dense.rows;
  result.values.resize(dense.values.size());
  const ConstDenseView view = dense.view();
  for (std::int64_t r = 0; r < dense.rows; ++r)
    for (std::int64_t c = 0; c < dense.cols; ++c)
      result.values[static_cast<std::size_t>(c * dense.rows + r)] = view(r, c);
  return result;
}

// The extension as a user would name it: the last one, or the last two for a compressed file
// ("x.mtx.gz": ".mtx.gz"), so that the refusal names what was asked for.
std::string extension_of(const std::string& path) {
  const std::filesystem::path name = std::filesystem::path(path).filename();
  const std::string last = name.extension().string();
  if (last == ".gz" || last == ".bz2" || last == ".xz" || last == ".zst")
    return name.stem().extension().string() + last;
  return last;
}

}  // namespace

LoadedMatrix read_matrix(const std::string& path, Orientation orientation) {
  LoadedMatrix loaded;
  if (has_suffix(path, ".mtx") || has_suffix(path, ".mtx.gz")) {
    loaded.sparse = true;
    loaded.csr = read_matrix_market(path, orientation);
    return loaded;
  }
  if (has_suffix(path, ".npz") || has_suffix(path, ".h5ad")) {
    loaded = has_suffix(path, ".npz") ? read_npz(path, orientation) : read_h5ad(path, orientation);
    if (loaded.sparse) return loaded;
  } else if (has_suffix(path, ".npy")) {
    loaded.dense = read_npy(path);
  } else if (has_suffix(path, ".csv")) {
    loaded.dense = read_csv(path);
  } else {
    throw Error(path +
                ": unrecognised file type (expected .mtx, .mtx.gz, .npz, .h5ad, .npy or .csv)");
  }
  if (orientation == Orientation::transposed) loaded.dense = transposed(loaded.dense);
  return loaded;
}

const char* format_extension(MatrixFormat format) {
  switch (format) {
    case MatrixFormat::matrix_market:
      return ".mtx";
    case MatrixFormat::npy:
      return ".npy";
    case MatrixFormat::npz:
      return ".npz";
    case MatrixFormat::csv:
      return ".csv";
    case MatrixFormat::h5ad:
      return ".h5ad";
  }
  throw Error("format_extension: unknown format");
}

MatrixFormat output_format(const std::string& path, const std::vector<MatrixFormat>& writable,
                           const std::string& writer) {
  for (const MatrixFormat format : writable)
    if (has_suffix(path, format_extension(format))) return format;
  std::string formats;
  for (std::size_t i = 0; i < writable.size(); ++i) {
    if (i > 0) formats += i + 1 == writable.size() ? " or " : ", ";
    formats += format_extension(writable[i]);
  }
  const std::string extension = extension_of(path);
  throw Error(
      path + ": " + writer + " writes " + formats +
      (extension.empty() ? ", and the name has no extension" : ", not '" + extension + "'"));
}

void write_counts(const std::string& path, MatrixFormat format, const HostCsr& counts) {
  if (format == MatrixFormat::matrix_market)
    write_matrix_market(path, counts, true);
  else if (format == MatrixFormat::npz)
    write_npz(path, counts);
  else if (format == MatrixFormat::h5ad)
    write_h5ad(path, counts);
  else
    write_values(path, format, to_dense(counts));
}

void write_values(const std::string& path, MatrixFormat format, const HostDense& values) {
  require(format != MatrixFormat::matrix_market,
          path + ": dense values are written as .npy, .npz, .csv or .h5ad, not .mtx");
  if (format == MatrixFormat::npy)
    write_npy(path, values);
  else if (format == MatrixFormat::npz)
    write_npz(path, values);
  else if (format == MatrixFormat::h5ad)
    write_h5ad_codes(path, values);
  else
    write_csv(path, values);
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

void require_counts(const HostCsr& matrix, const std::string& what) {
  try {
    matrix.validate();
  } catch (const Error& error) {
    throw Error(what + ": " + error.what());
  }
  for (std::int64_t r = 0; r < matrix.rows; ++r) {
    for (RowOffset k = matrix.row_offsets[r]; k < matrix.row_offsets[r + 1]; ++k) {
      const float value = matrix.values[static_cast<std::size_t>(k)];
      if (std::isfinite(value) && value >= 0.0f) continue;
      std::ostringstream message;
      message << what << ": row " << r << ", column "
              << matrix.col_indices[static_cast<std::size_t>(k)] << ": "
              << (std::isfinite(value) ? "negative count " : "value ") << value
              << (std::isfinite(value) ? "" : " is not finite")
              << " (counts are finite and non-negative)";
      throw Error(message.str());
    }
  }
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
