#pragma once
// Lossless mode: a count matrix stored as, per row, the model's latent code and the residual
// between the row and what the model predicts from that stored code, entropy-coded with the
// model's own predicted distribution; decompression rebuilds the matrix exactly.
//
// File layout (little-endian; FNV-1a 64-bit checksums):
//   header   "SAECOMP\n" | u32 format version | u32 latent bits (32, 16, 8) | u32 residual
//            coding (1 model pmf, 2 adaptive residual) | u32 0 | u64 rows | u64 columns |
//            u64 latent width | u64 model identity | u64 decoder probe | u64 rows per block |
//            u64 checksum of the header's bytes before it
//   blocks   "SAEBLOCK" | u64 first row | u64 rows | u64 latent stream bytes | u64 residual
//            stream bytes | u64 hash of the block's counts | latent stream | residual stream |
//            u64 checksum of the block's bytes before it
//   trailer  "SAE-END\n" | u64 blocks | u64 non-zeros | u64 checksum of every byte of the file
//            before it
// The model identity hashes the model's configuration and parameters: decompressing with
// another model is refused. The decoder probe hashes the deterministic decoder's outputs and the
// entry models built from them for a fixed code: a machine whose decoder or libm computes them
// differently is refused instead of decoding garbage. Each block is decoded on its own, so
// both directions stream a block at a time.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"

namespace sparseae {

constexpr std::uint32_t kLosslessFormatVersion = 1;

// Rows of counts in order, a block at a time.
class RowBlockSource {
 public:
  virtual ~RowBlockSource() = default;
  virtual std::int64_t rows() const = 0;
  virtual std::int64_t cols() const = 0;
  // The next min(max_rows, rows left) rows into block; 0 rows at the end.
  virtual void next(std::int64_t max_rows, HostCsr& block) = 0;
};

// The rows of a matrix in memory.
class CsrRowSource final : public RowBlockSource {
 public:
  explicit CsrRowSource(const HostCsr& matrix) : matrix_(&matrix) {}
  std::int64_t rows() const override { return matrix_->rows; }
  std::int64_t cols() const override { return matrix_->cols; }
  void next(std::int64_t max_rows, HostCsr& block) override;

 private:
  const HostCsr* matrix_;
  std::int64_t next_row_ = 0;
};

// The rows of a MatrixMarket file sorted by row, streamed (MatrixMarketRowReader).
class MatrixMarketRowSource final : public RowBlockSource {
 public:
  explicit MatrixMarketRowSource(const std::string& path) : reader_(path) {}
  std::int64_t rows() const override { return reader_.rows(); }
  std::int64_t cols() const override { return reader_.cols(); }
  void next(std::int64_t max_rows, HostCsr& block) override { reader_.next(max_rows, block); }

 private:
  MatrixMarketRowReader reader_;
};

struct LosslessOptions {
  int latent_bits = 32;            // 32 (float32), 16 (float16) or 8 (linear per column)
  std::int64_t block_rows = 4096;  // rows per block of the file
  std::int64_t batch_rows = 4096;  // rows per backend call of the encoder and the decoder
};

// Where the bytes of a compressed file go; total() is the file's size.
struct LosslessSizes {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t nonzeros = 0;
  std::int64_t latent_bytes = 0;    // the latent streams
  std::int64_t residual_bytes = 0;  // the residual streams (row totals included)
  std::int64_t framing_bytes = 0;   // header, block headers and checksums, trailer
  // The counts' NLL under the model, in bits, where the residual is coded with the model's pmf
  // (the ideal length of the residual streams); NaN otherwise.
  double nll_bits = 0;

  std::int64_t total() const { return latent_bytes + residual_bytes + framing_bytes; }
};

// The identity a compressed file records: a hash of the configuration and the parameters.
std::uint64_t lossless_model_identity(const RunConfig& config,
                                      const std::vector<float>& parameters);

// Compresses the rows of source with the model (config, parameters) into path, written
// atomically (path "" only measures). Throws Error for a value that is not an integer count
// (lossless mode codes integer counts up to 2^24), for columns other than the model's, and for
// an impossible option.
LosslessSizes compress_lossless(Backend& backend, const RunConfig& config,
                                const std::vector<float>& parameters, RowBlockSource& source,
                                const std::string& path, const LosslessOptions& options);

struct LosslessFileInfo {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t nonzeros = 0;
  int latent_bits = 32;
};

// Decompresses path with the model it was compressed with: start(info) once the header and
// trailer are read, then visit(first_row, block) for each block of rows in order. Throws Error,
// naming the file, for another model, another decoder (probe), a corrupt or truncated file;
// every block's bytes and counts are checked before visit sees them, the whole file's checksum
// after the last block.
void decompress_lossless(Backend& backend, const RunConfig& config,
                         const std::vector<float>& parameters, const std::string& path,
                         std::int64_t batch_rows,
                         const std::function<void(const LosslessFileInfo&)>& start,
                         const std::function<void(std::int64_t, const HostCsr&)>& visit);

// decompress_lossless into a MatrixMarket 'coordinate integer general' file, streamed block by
// block and written atomically: nothing appears at out unless every check passed.
LosslessFileInfo decompress_lossless_to_matrix_market(Backend& backend, const RunConfig& config,
                                                      const std::vector<float>& parameters,
                                                      const std::string& path,
                                                      const std::string& out,
                                                      std::int64_t batch_rows);

}  // namespace sparseae
