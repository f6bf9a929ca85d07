#pragma once
// Non-owning views of matrices in a backend's memory space. Views are cheap to copy and carry no
// ownership; the memory they point to belongs to a Buffer (buffer.hpp) or to the caller.
#include <cstdint>
#include <type_traits>

namespace sparseae {

// Row-major dense matrix: element (r, c) lives at data[r * ld + c], with ld >= cols.
template <typename T>
struct MatrixView {
  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t ld = 0;

  MatrixView() = default;
  MatrixView(T* data_, std::int64_t rows_, std::int64_t cols_)
      : data(data_), rows(rows_), cols(cols_), ld(cols_) {}
  MatrixView(T* data_, std::int64_t rows_, std::int64_t cols_, std::int64_t ld_)
      : data(data_), rows(rows_), cols(cols_), ld(ld_) {}

  // A view of const elements converts implicitly from a view of mutable ones.
  template <typename U = T, typename = std::enable_if_t<!std::is_const_v<U>>>
  operator MatrixView<const U>() const {
    return {data, rows, cols, ld};
  }

  T& operator()(std::int64_t r, std::int64_t c) const { return data[r * ld + c]; }
  // Row r's first element, without dereferencing: valid for a view with no columns, whose data
  // may be null.
  T* row(std::int64_t r) const { return data + r * ld; }
  std::int64_t size() const { return rows * cols; }
  bool empty() const { return rows == 0 || cols == 0; }
};

using DenseView = MatrixView<float>;
using ConstDenseView = MatrixView<const float>;

// Row offsets are 64-bit so one matrix can hold billions of non-zeros; column indices are 32-bit
// because a count matrix never has more than 2^31 columns, and 4 bytes per entry matter.
using RowOffset = std::int64_t;
using ColIndex = std::int32_t;

// Compressed sparse rows, zero-based: the non-zeros of row r are entries
// row_offsets[r] .. row_offsets[r + 1] - 1 of col_indices and values.
template <typename T>
struct CsrMatrixView {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t nnz = 0;
  const RowOffset* row_offsets = nullptr;
  const ColIndex* col_indices = nullptr;
  T* values = nullptr;

  template <typename U = T, typename = std::enable_if_t<!std::is_const_v<U>>>
  operator CsrMatrixView<const U>() const {
    return {rows, cols, nnz, row_offsets, col_indices, values};
  }
};

using CsrView = CsrMatrixView<const float>;

// Destination of an op that writes a CSR matrix (row gather): the arrays are written, and
// nnz_capacity bounds how many entries fit.
struct CsrOutput {
  std::int64_t cols = 0;
  std::int64_t nnz_capacity = 0;
  RowOffset* row_offsets = nullptr;  // rows + 1 entries
  ColIndex* col_indices = nullptr;   // nnz_capacity entries
  float* values = nullptr;           // nnz_capacity entries
};

}  // namespace sparseae
