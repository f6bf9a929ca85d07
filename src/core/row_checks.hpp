#pragma once
// What a row gather says of rows it cannot take: shared by both backends' gather ops and by the
// trainer's host-side gather of streamed rows, so that a bad row id reads the same wherever it
// is found.
#include <cstdint>
#include <string>

namespace sparseae::detail {

inline std::string gather_overflow_message(std::int64_t nnz, std::int64_t capacity) {
  return "gather_rows: batch has " + std::to_string(nnz) + " non-zeros, output holds " +
         std::to_string(capacity);
}

inline std::string gather_bad_row_message(std::int64_t row, std::int64_t rows) {
  return "gather_rows: row id " + std::to_string(row) + " outside [0, " + std::to_string(rows) +
         ")";
}

}  // namespace sparseae::detail
