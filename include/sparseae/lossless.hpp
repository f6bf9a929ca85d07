#pragma once
// Lossless mode: a count matrix stored so that decompression rebuilds it exactly, a block of rows
// at a time, by one of three codecs:
// - order0: each column's counts coded with one quantised pmf of its own, fitted on the rows
//   being compressed (the tables travel in the file, so the rows' own histogram gives the smallest
//   file, and no model is needed to decompress).
// - order0_training: the same code with the pmfs fitted on a model's training rows
//   (RunConfig::training_count_histogram): the file holds no tables, and decompressing needs the
//   model, whose identity the header records.
// - model: per row, the model's latent code and the residual between the row and what the model
//   predicts from that stored code, entropy-coded with the model's own predicted distribution.
//   Each block keeps whichever of the two codings is smaller: a model that does not fit the rows
//   costs a few bytes a block over order0. The order-0 tables travel only where a block uses
//   them: a file whose every block keeps the model holds none.
//
// File layout (little-endian; FNV-1a 64-bit checksums):
//   header   "SAECOMP\n" | u32 format version | u32 codec (1 model, 2 order0, 3 order0_training,
//            which came within version 4: older builds refuse it as an unknown codec) | u32 latent
//            bits (32, 16, 8; 0 for order0) | u32 residual coding (1 model pmf, 2 adaptive
//            residual; 0 for order0) | u64 rows | u64 columns | u64 latent width | u64 model
//            identity | u64 decoder probe | u64 rows per block | u64 table bytes (the order-0
//            tables' length) | u64 checksum of the header's bytes before it
//   blocks   "SAEBLOCK" | u64 first row | u64 rows | u32 block coding (1 model, 2 order0) | u32 0 |
//            u64 latent stream bytes (0 for order0) | u64 count stream bytes | u64 hash of the
//            block's counts | latent stream | count stream (the residual, or the order-0 code) |
//            u64 checksum of the block's bytes before it
//   tables   where a block is order-0 coded: the order-0 tables (table bytes, a rANS stream) | u64
//            checksum of them (versions 2 and 3: always, between the header and the blocks)
//   trailer  "SAE-END\n" | u64 blocks | u64 non-zeros | u64 checksum of every byte of the file
//            before it
// The model identity hashes the model's configuration and parameters: decompressing with
// another model is refused (an order0_training file records it too). The decoder probe hashes the
// deterministic decoder's outputs and the entry models built from them for a fixed code: a machine
// whose decoder or libm computes them differently is refused instead of decoding garbage. An order0
// file records neither (0). Each block is decoded on its own, so both directions stream a block at
// a time; compression reads the rows twice, first to fit the order-0 tables.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/io.hpp"

namespace sparseae {

// Version 2: the codec, the order-0 tables and the per-block choice. Version 3: latents coded as
// integers under the model's prior (kPriorLatentBits). Version 4: the tables after the blocks
// instead of after the header, and none where no block uses them. This build reads all three.
constexpr std::uint32_t kLosslessFormatVersion = 4;
constexpr std::uint32_t kOldestLosslessFormatVersion = 2;

// The latent bits of a model-coded file whose latents are the model's integer codes, each
// dimension entropy-coded with the pmf its learned prior gives (a model trained with
// TrainConfig::rate_lambda: ModelConfig::latent_prior).
constexpr int kPriorLatentBits = 0;

// The latent bits sae compress stores a model's codes with unless asked otherwise: the prior's
// integer codes where the model has one (the smallest files), float32 where it has not (exact
// whatever the codes' range).
inline int default_latent_bits(const ModelConfig& model) {
  return model.latent_prior ? kPriorLatentBits : 32;
}

enum class LosslessCodec : std::uint32_t { model = 1, order0 = 2, order0_training = 3 };
// "model", "order0", "order0-training" (sae compress --codec); Error names the choices.
LosslessCodec parse_lossless_codec(const std::string& name);

// Rows of counts in order, a block at a time.
class RowBlockSource {
 public:
  virtual ~RowBlockSource() = default;
  virtual std::int64_t rows() const = 0;
  virtual std::int64_t cols() const = 0;
  // The next min(max_rows, rows left) rows into block; 0 rows at the end.
  virtual void next(std::int64_t max_rows, HostCsr& block) = 0;
  // Back to the first row.
  virtual void rewind() = 0;
};

// The rows of a matrix in memory.
class CsrRowSource final : public RowBlockSource {
 public:
  explicit CsrRowSource(const HostCsr& matrix) : matrix_(&matrix) {}
  std::int64_t rows() const override { return matrix_->rows; }
  std::int64_t cols() const override { return matrix_->cols; }
  void next(std::int64_t max_rows, HostCsr& block) override;
  void rewind() override { next_row_ = 0; }

 private:
  const HostCsr* matrix_;
  std::int64_t next_row_ = 0;
};

// The rows of a MatrixMarket file sorted by row, streamed (MatrixMarketRowReader).
class MatrixMarketRowSource final : public RowBlockSource {
 public:
  explicit MatrixMarketRowSource(const std::string& path)
      : path_(path), reader_(std::make_unique<MatrixMarketRowReader>(path)) {}
  std::int64_t rows() const override { return reader_->rows(); }
  std::int64_t cols() const override { return reader_->cols(); }
  void next(std::int64_t max_rows, HostCsr& block) override { reader_->next(max_rows, block); }
  void rewind() override { reader_ = std::make_unique<MatrixMarketRowReader>(path_); }

 private:
  std::string path_;
  std::unique_ptr<MatrixMarketRowReader> reader_;
};

struct LosslessOptions {
  LosslessCodec codec = LosslessCodec::model;
  // 32 (float32), 16 (float16), 8 (linear per column), or kPriorLatentBits (the integer codes
  // under the prior of a model that has one).
  int latent_bits = 32;
  std::int64_t block_rows = 4096;  // rows per block of the file
  std::int64_t batch_rows = 4096;  // rows per backend call of the encoder and the decoder
  // With the model codec, each block keeps the smaller of the model and the order-0 coding;
  // false keeps the model coding in every block (what the model alone costs).
  bool order0_fallback = true;
};

// Where the bytes of a compressed file go; total() is the file's size.
struct LosslessSizes {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t nonzeros = 0;
  std::int64_t blocks = 0;
  std::int64_t order0_blocks = 0;   // blocks kept in the order-0 coding
  std::int64_t latent_bytes = 0;    // the latent streams of the blocks kept in the model coding
  std::int64_t residual_bytes = 0;  // their residual streams (row totals included)
  std::int64_t order0_bytes = 0;    // the count streams of the blocks kept in the order-0 coding
  std::int64_t table_bytes = 0;     // the order-0 tables + checksum, where a block uses them
  std::int64_t framing_bytes = 0;   // header, block headers and checksums, trailer
  // The latent and residual streams of every block in the model coding, kept or not: with
  // framing_bytes, what the file would be without the per-block choice.
  std::int64_t model_coding_bytes = 0;
  // The counts' NLL under the model, in bits, where the residual is coded with the model's pmf
  // (the ideal length of the residual streams); NaN otherwise.
  double nll_bits = 0;

  std::int64_t total() const {
    return latent_bytes + residual_bytes + order0_bytes + table_bytes + framing_bytes;
  }
};

// The identity a compressed file records: a hash of the configuration and the parameters.
std::uint64_t lossless_model_identity(const RunConfig& config,
                                      const std::vector<float>& parameters);

// Compresses the rows of source into path with options.codec, written atomically (path "" only
// measures); with the order0 codec the model is not used, with order0_training only its training
// histogram and identity (Error when it holds no histogram). Throws Error for a value that is not
// an integer count (lossless mode codes integer counts up to 2^24), for columns other than the
// model's, and for an impossible option.
LosslessSizes compress_lossless(Backend& backend, const RunConfig& config,
                                const std::vector<float>& parameters, RowBlockSource& source,
                                const std::string& path, const LosslessOptions& options);
// The order0 codec, without a model; throws Error for another codec.
LosslessSizes compress_lossless(RowBlockSource& source, const std::string& path,
                                const LosslessOptions& options);

struct LosslessFileInfo {
  LosslessCodec codec = LosslessCodec::model;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t nonzeros = 0;
  int latent_bits = 32;  // as LosslessOptions::latent_bits; 0 for order0
};

// Decompresses path: start(info) once the header and trailer are read, then
// visit(first_row, block) for each block of rows in order. A model-coded or order0_training file
// needs the model it was compressed with; an order0 file does not use it. Throws Error, naming the
// file, for another model, another decoder (probe), a corrupt or truncated file; every block's
// bytes and counts are checked before visit sees them, the whole file's checksum after the last
// block.
void decompress_lossless(Backend& backend, const RunConfig& config,
                         const std::vector<float>& parameters, const std::string& path,
                         std::int64_t batch_rows,
                         const std::function<void(const LosslessFileInfo&)>& start,
                         const std::function<void(std::int64_t, const HostCsr&)>& visit);
// An order0 file, without a model; throws Error, naming the file, for a model-coded one.
void decompress_lossless(const std::string& path,
                         const std::function<void(const LosslessFileInfo&)>& start,
                         const std::function<void(std::int64_t, const HostCsr&)>& visit);

// decompress_lossless into a MatrixMarket 'coordinate integer general' file, streamed block by
// block and written atomically: nothing appears at out unless every check passed.
LosslessFileInfo decompress_lossless_to_matrix_market(Backend& backend, const RunConfig& config,
                                                      const std::vector<float>& parameters,
                                                      const std::string& path,
                                                      const std::string& out,
                                                      std::int64_t batch_rows);
LosslessFileInfo decompress_lossless_to_matrix_market(const std::string& path,
                                                      const std::string& out);

}  // namespace sparseae
