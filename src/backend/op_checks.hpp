#pragma once
// Shape checks shared by both backends, so each op rejects bad arguments with the same message
// whichever backend runs it.
#include <cstdint>
#include <string>

#include "core/row_checks.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/error.hpp"
#include "sparseae/matrix.hpp"
#include "sparseae/ops.hpp"

namespace sparseae::detail {

inline std::string shape(std::int64_t rows, std::int64_t cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

template <typename T>
std::string shape(const MatrixView<T>& m) {
  return shape(m.rows, m.cols);
}

template <typename T>
void check_view(const char* op, const char* name, const MatrixView<T>& m) {
  require(m.rows >= 0 && m.cols >= 0 && m.ld >= m.cols,
          std::string(op) + ": " + name + " " + shape(m) + " has leading dimension " +
              std::to_string(m.ld) + " < cols");
  require(m.data != nullptr || m.empty(), std::string(op) + ": " + name + " has no data");
}

// Rows and columns of op(m).
template <typename T>
std::int64_t op_rows(Transpose t, const MatrixView<T>& m) {
  return t == Transpose::yes ? m.cols : m.rows;
}
template <typename T>
std::int64_t op_cols(Transpose t, const MatrixView<T>& m) {
  return t == Transpose::yes ? m.rows : m.cols;
}

inline void check_gemm(Transpose ta, Transpose tb, ConstDenseView a, ConstDenseView b,
                       DenseView c) {
  check_view("gemm", "a", a);
  check_view("gemm", "b", b);
  check_view("gemm", "c", c);
  require(op_cols(ta, a) == op_rows(tb, b) && op_rows(ta, a) == c.rows && op_cols(tb, b) == c.cols,
          "gemm: shapes do not match: op(a) " + shape(op_rows(ta, a), op_cols(ta, a)) +
              " * op(b) " + shape(op_rows(tb, b), op_cols(tb, b)) + " -> c " + shape(c));
}

inline void check_spmm(Transpose ta, CsrView a, ConstDenseView b, DenseView c) {
  check_view("spmm", "b", b);
  check_view("spmm", "c", c);
  const std::int64_t a_rows = ta == Transpose::yes ? a.cols : a.rows;
  const std::int64_t a_cols = ta == Transpose::yes ? a.rows : a.cols;
  require(a_cols == b.rows && a_rows == c.rows && b.cols == c.cols,
          "spmm: shapes do not match: op(a) " + shape(a_rows, a_cols) + " * b " + shape(b) +
              " -> c " + shape(c));
}

inline void check_same_shape(const char* op, const char* name_a, ConstDenseView a,
                             const char* name_b, ConstDenseView b) {
  check_view(op, name_a, a);
  check_view(op, name_b, b);
  require(a.rows == b.rows && a.cols == b.cols, std::string(op) + ": " + name_a + " " + shape(a) +
                                                    " and " + name_b + " " + shape(b) + " differ");
}

// topk_rows and batch_topk: 1 <= k <= z.cols; batch_topk counts the entries of z in 32 bits.
inline void check_topk(const char* op, std::int64_t k, ConstDenseView z) {
  check_view(op, "z", z);
  require(k >= 1 && k <= z.cols, std::string(op) + ": k = " + std::to_string(k) +
                                     " is outside [1, " + std::to_string(z.cols) +
                                     "], the columns of z " + shape(z));
  require(z.rows * z.cols < (std::int64_t{1} << 32),
          std::string(op) + ": z " + shape(z) +
              " has 2^32 entries or more, which it counts in 32 bits");
}

// auxk_backward: 0 <= aux_k <= z.cols, and pre, z and dz of one shape.
inline void check_auxk(std::int64_t aux_k, ConstDenseView pre, ConstDenseView z,
                       ConstDenseView dz) {
  check_same_shape("auxk_backward", "pre", pre, "z", z);
  check_same_shape("auxk_backward", "z", z, "dz", dz);
  require(aux_k >= 0 && aux_k <= z.cols, "auxk_backward: aux_k = " + std::to_string(aux_k) +
                                             " is outside [0, " + std::to_string(z.cols) +
                                             "], the columns of z " + shape(z));
}

// bias_activation_forward: z of y's shape, or no z at all (zeros).
inline void check_bias_activation(const char* op, ConstDenseView z, ConstDenseView y) {
  if (z.data == nullptr) {
    check_view(op, "y", y);
    return;
  }
  check_same_shape(op, "z", z, "y", y);
}

// y holds output_heads(kind) outputs per target entry: rows x (K * target.cols).
inline void check_loss(LossKind kind, ConstDenseView y, std::int64_t target_rows,
                       std::int64_t target_cols, DenseView grad) {
  check_same_shape("reconstruction_loss", "y", y, "grad", grad);
  const std::int64_t heads = output_heads(kind);
  require(target_rows == y.rows && target_cols * heads == y.cols,
          "reconstruction_loss: target " + shape(target_rows, target_cols) + " and y " + shape(y) +
              " differ" +
              (heads > 1 ? " (the loss takes " + std::to_string(heads) + " outputs per entry)"
                         : std::string()));
}

inline void check_loss(LossKind kind, ConstDenseView y, CsrView target, DenseView grad) {
  check_loss(kind, y, target.rows, target.cols, grad);
}

inline void check_loss(LossKind kind, ConstDenseView y, ConstDenseView target, DenseView grad) {
  check_view("reconstruction_loss", "target", target);
  check_loss(kind, y, target.rows, target.cols, grad);
}

inline void check_dense_gather(ConstDenseView source, std::int64_t count, DenseView out) {
  check_view("gather_dense_rows", "source", source);
  check_view("gather_dense_rows", "out", out);
  require(out.rows == count && out.cols == source.cols,
          "gather_dense_rows: out " + shape(out) + " does not hold " + std::to_string(count) +
              " rows of " + std::to_string(source.cols) + " columns");
}

// The optimizer's argument checks, identical on every backend.
inline void check_optimizer(const OptimizerConfig& config, std::int64_t step,
                            const float* second_moment, const float* grad_sum_squares) {
  require(step >= 1, "optimizer_step: step counts from 1");
  require(second_moment != nullptr || config.kind == OptimizerKind::sgd,
          std::string("optimizer_step: ") + optimizer_name(config.kind) +
              " needs a second-moment buffer");
  require(config.max_grad_norm <= 0.0f || grad_sum_squares != nullptr,
          "optimizer_step: clipping needs the squared gradient norm");
  require(!config.skip_nonfinite || grad_sum_squares != nullptr,
          "optimizer_step: skipping non-finite steps needs the squared gradient norm");
}

inline void check_gather(CsrView source, std::int64_t count, const CsrOutput& out) {
  require(count >= 0, "gather_rows: negative row count");
  require(out.cols == source.cols, "gather_rows: output has " + std::to_string(out.cols) +
                                       " columns, source " + std::to_string(source.cols));
}

inline void check_batch_nonzeros(std::int64_t count, std::int64_t batch_rows) {
  require(count >= 0, "batch_nonzeros: negative row count");
  require(batch_rows > 0, "batch_nonzeros: batch_rows must be positive");
}

// What both backends say of an op issued inside Backend::capture that a capture cannot hold.
inline std::string capture_refusal_message(const char* backend, const char* op) {
  return std::string(backend) + " backend: " + op +
         " inside a captured step (a captured step neither waits for the device, reads host "
         "memory nor allocates)";
}

inline void check_csr_to_dense(CsrView a, DenseView out) {
  check_view("csr_to_dense", "out", out);
  require(a.rows == out.rows && a.cols == out.cols,
          "csr_to_dense: a " + shape(a.rows, a.cols) + " and out " + shape(out) + " differ");
}

inline void check_accumulate(std::int64_t n) {
  require(n >= 0, "accumulate: negative length " + std::to_string(n));
}

inline void check_upload_slot(const char* op, int slot) {
  require(slot >= 0 && slot < Backend::kUploadSlots,
          std::string(op) + ": upload slot " + std::to_string(slot) + " is not in [0, " +
              std::to_string(Backend::kUploadSlots) + ")");
}

inline void check_symmetric_eigen(std::int64_t n) {
  require(n >= 0, "symmetric_eigen: negative order " + std::to_string(n));
}

inline std::string eigen_failure_message(std::int64_t info, std::int64_t n) {
  return "symmetric_eigen: the solver did not converge on the " + shape(n, n) +
         " matrix (info " + std::to_string(info) + ")";
}

}  // namespace sparseae::detail
