// Lossless mode: the file format (sparseae/lossless.hpp), compress and decompress. Compiled with
// -ffp-contract=off (src/CMakeLists.txt), like everything that computes what the decoder reads.
#include "sparseae/lossless.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "compress/deterministic_decoder.hpp"
#include "compress/entry_coding.hpp"
#include "compress/fnv.hpp"
#include "compress/order0.hpp"
#include "compress/rans.hpp"
#include "core/named_enum.hpp"
#include "io/atomic_file.hpp"
#include "math/op_math.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the lossless format is written in the host's byte order, little-endian");

namespace sparseae {

using lossless::ColumnHistogram;
using lossless::DeterministicDecoder;
using lossless::Fnv1a;
using lossless::LatentCoder;
using lossless::Order0RowCoder;
using lossless::Order0Tables;
using lossless::RansDecoder;
using lossless::RansEncoder;
using lossless::ResidualCoding;
using lossless::RowCoder;

namespace {

constexpr char kHeaderMagic[8] = {'S', 'A', 'E', 'C', 'O', 'M', 'P', '\n'};
constexpr char kBlockMagic[8] = {'S', 'A', 'E', 'B', 'L', 'O', 'C', 'K'};
constexpr char kTrailerMagic[8] = {'S', 'A', 'E', '-', 'E', 'N', 'D', '\n'};

struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t codec;
  std::uint32_t latent_bits;
  std::uint32_t coding;
  std::uint64_t rows;
  std::uint64_t cols;
  std::uint64_t latent_width;
  std::uint64_t model_identity;
  std::uint64_t probe;
  std::uint64_t block_rows;
  std::uint64_t table_bytes;
  std::uint64_t checksum;
};

// How a block's counts are coded: the file's codec, or order-0 in a model-coded file where that
// is smaller.
enum class BlockCoding : std::uint32_t { model = 1, order0 = 2 };

struct BlockHeader {
  char magic[8];
  std::uint64_t first_row;
  std::uint64_t rows;
  std::uint32_t coding;
  std::uint32_t reserved;
  std::uint64_t latent_bytes;
  std::uint64_t count_bytes;
  std::uint64_t counts_hash;
};

struct Trailer {
  char magic[8];
  std::uint64_t blocks;
  std::uint64_t nonzeros;
  std::uint64_t checksum;
};

static_assert(sizeof(Header) == 88 && sizeof(BlockHeader) == 56 && sizeof(Trailer) == 32,
              "the format's records have no padding");

template <typename Record>
std::uint64_t checksum_before_last_field(const Record& record) {
  Fnv1a hash;
  hash.add(&record, sizeof record - sizeof(std::uint64_t));
  return hash.value();
}

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// The offset the decoder adds to a row's log-mean head: its log size factor, from its total
// count (in model units), as the trainer's BatchInput computes it from the row's values.
float log_offset(std::uint32_t total, const RunConfig& config) {
  const auto log_reference = static_cast<float>(std::log(config.reference_library_size));
  return math::log_size_factor(static_cast<double>(total) / config.scale, log_reference);
}

// Adds a row's counts (dense) to the hash of its block's counts: its non-zero count, then each
// (column, count). Compress and decompress hash the same dense rows.
void hash_row(const std::vector<float>& row, Fnv1a& hash) {
  std::uint32_t nonzeros = 0;
  for (const float v : row) nonzeros += v != 0.0f;
  hash.add_value(nonzeros);
  for (std::size_t c = 0; c < row.size(); ++c)
    if (row[c] != 0.0f) {
      hash.add_value(static_cast<std::uint32_t>(c));
      hash.add_value(static_cast<std::uint32_t>(row[c]));
    }
}

// What this machine's decoder computes for a fixed code: its outputs and the entry models built
// from them.
std::uint64_t decoder_probe(DeterministicDecoder& decoder, const RunConfig& config,
                            const LatentCoder& latent_coder) {
  std::vector<float> latent(static_cast<std::size_t>(decoder.latent_width()));
  for (std::size_t j = 0; j < latent.size(); ++j)
    latent[j] = (static_cast<float>(j % 7) - 3.0f) * 0.375f;
  const float offset = 0.25f;
  std::vector<float> outputs(static_cast<std::size_t>(decoder.output_width()));
  decoder.decode(latent.data(), 1, &offset, outputs.data());
  Fnv1a hash;
  hash.add(outputs.data(), outputs.size() * sizeof(float));
  lossless::hash_entry_models(config.train.loss, config.scale, outputs.data(),
                              config.model.input_dim, hash);
  latent_coder.hash_prior(hash);
  return hash.value();
}

// Throws unless every value of the block is an integer count float32 holds exactly.
void check_integer_counts(const HostCsr& block, std::int64_t first_row) {
  for (std::int64_t r = 0; r < block.rows; ++r)
    for (RowOffset k = block.row_offsets[r]; k < block.row_offsets[r + 1]; ++k) {
      const float v = block.values[k];
      if (v >= 0.0f && v <= static_cast<float>(io_limits::max_exact_count) && std::trunc(v) == v)
        continue;
      char text[32];
      std::snprintf(text, sizeof text, "%.9g", static_cast<double>(v));
      throw Error("row " + std::to_string(first_row + r + 1) + ", column " +
                  std::to_string(block.col_indices[k] + 1) + ": value " + text +
                  " is not an integer count up to 2^24; lossless mode codes integer counts");
    }
}

// The row's total count, which a model with size factors needs before decoding the row.
std::uint32_t row_total(const HostCsr& block, std::int64_t r) {
  double total = 0.0;
  for (RowOffset k = block.row_offsets[r]; k < block.row_offsets[r + 1]; ++k)
    total += block.values[k];
  require(total <= static_cast<double>(std::numeric_limits<std::uint32_t>::max()),
          "row " + std::to_string(r + 1) + " of a block: total count beyond 2^32");
  return static_cast<std::uint32_t>(total);
}

// Output that is a file, or only a count of bytes (and the checksum of the file so far).
class Output {
 public:
  explicit Output(const std::string& path) {
    if (!path.empty()) file_ = std::make_unique<AtomicFile>(path);
  }
  void write(const void* data, std::size_t size) {
    if (file_) file_->write(data, size);
    hash_.add(data, size);
  }
  std::uint64_t checksum() const { return hash_.value(); }
  void commit() {
    if (file_) file_->commit();
  }

 private:
  std::unique_ptr<AtomicFile> file_;
  Fnv1a hash_;
};

// Reads a compressed file front to back, keeping the checksum of what it read.
class Input {
 public:
  explicit Input(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "rb")) {
    if (file_ == nullptr) fail("cannot open (" + std::string(std::strerror(errno)) + ")");
    std::fseek(file_, 0, SEEK_END);
    size_ = std::ftell(file_);
    std::fseek(file_, 0, SEEK_SET);
  }
  ~Input() { std::fclose(file_); }
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;

  std::int64_t size() const { return size_; }
  std::int64_t position() const { return position_; }
  void read(void* data, std::size_t size, const char* what) {
    if (static_cast<std::int64_t>(size) > size_ - position_ ||
        std::fread(data, 1, size, file_) != size)
      fail("truncated: the file ends inside " + std::string(what));
    hash_.add(data, size);
    position_ += static_cast<std::int64_t>(size);
  }
  // The trailer, read out of order and not hashed.
  Trailer trailer() {
    Trailer trailer;
    if (size_ < static_cast<std::int64_t>(sizeof(Header) + sizeof trailer))
      fail("truncated: " + std::to_string(size_) + " bytes, shorter than a header and trailer");
    read_at(size_ - static_cast<std::int64_t>(sizeof trailer), &trailer, sizeof trailer);
    return trailer;
  }
  // size bytes from offset, out of order and not hashed; the position stays.
  void read_at(std::int64_t offset, void* data, std::size_t size) {
    std::fseek(file_, static_cast<long>(offset), SEEK_SET);
    if (std::fread(data, 1, size, file_) != size) fail("cannot read");
    std::fseek(file_, static_cast<long>(position_), SEEK_SET);
  }
  std::uint64_t checksum() const { return hash_.value(); }
  [[noreturn]] void fail(const std::string& why) const { throw Error(path_ + ": " + why); }

 private:
  std::string path_;
  std::FILE* file_;
  std::int64_t size_ = 0;
  std::int64_t position_ = 0;
  Fnv1a hash_;
};

// The counts of row r of block, dense.
void dense_row(const HostCsr& block, std::int64_t r, std::vector<float>& row) {
  std::fill(row.begin(), row.end(), 0.0f);
  for (RowOffset k = block.row_offsets[r]; k < block.row_offsets[r + 1]; ++k)
    row[static_cast<std::size_t>(block.col_indices[k])] += block.values[k];
}

}  // namespace

void CsrRowSource::next(std::int64_t max_rows, HostCsr& block) {
  const std::int64_t first = next_row_;
  const std::int64_t end = std::min(matrix_->rows, first + std::max<std::int64_t>(max_rows, 0));
  block.rows = end - first;
  block.cols = matrix_->cols;
  const RowOffset begin = matrix_->row_offsets[first];
  block.row_offsets.assign(1, 0);
  for (std::int64_t r = first; r < end; ++r)
    block.row_offsets.push_back(matrix_->row_offsets[r + 1] - begin);
  const RowOffset stop = matrix_->row_offsets[end];
  block.col_indices.assign(matrix_->col_indices.begin() + begin,
                           matrix_->col_indices.begin() + stop);
  block.values.assign(matrix_->values.begin() + begin, matrix_->values.begin() + stop);
  next_row_ = end;
}

LosslessCodec parse_lossless_codec(const std::string& name) {
  static constexpr detail::Named<LosslessCodec> kCodecs[] = {
      {LosslessCodec::model, "model"},
      {LosslessCodec::order0, "order0"},
      {LosslessCodec::order0_training, "order0-training"}};
  return detail::parse_named(kCodecs, "lossless codec", name);
}

std::uint64_t lossless_model_identity(const RunConfig& config,
                                      const std::vector<float>& parameters) {
  Fnv1a hash;
  const std::string json = run_config_to_json(config);
  hash.add(json.data(), json.size());
  hash.add(parameters.data(), parameters.size() * sizeof(float));
  return hash.value();
}

namespace {

// The model a model-coded file is compressed or decompressed with.
struct ModelRef {
  Backend& backend;
  const RunConfig& config;
  const std::vector<float>& parameters;
};

// The latents' coder of latent_bits for the model; throws Error for kPriorLatentBits with a model
// that has no prior.
LatentCoder make_latent_coder(const ModelRef& model, int latent_bits) {
  if (latent_bits != kPriorLatentBits) return LatentCoder(latent_bits);
  const ModelLayout layout(model.config.model);
  require(layout.prior_offset() >= 0,
          "integer latents under a prior need a model trained with --rate-lambda; this one has "
          "no prior (use --latent-bits 32, 16 or 8)");
  return LatentCoder(model.parameters.data() + layout.prior_offset(), model.config.model.latent);
}

// The tables fitted on every row of source, which is left rewound.
Order0Tables fit_order0_tables(RowBlockSource& source, std::int64_t block_rows) {
  ColumnHistogram histogram(source.cols());
  HostCsr block;
  std::vector<float> row(static_cast<std::size_t>(source.cols()));
  for (std::int64_t first = 0;; first += block.rows) {
    source.next(block_rows, block);
    if (block.rows == 0) break;
    check_integer_counts(block, first);
    for (std::int64_t r = 0; r < block.rows; ++r) {
      dense_row(block, r, row);
      histogram.add(row.data());
    }
  }
  source.rewind();
  return Order0Tables(histogram);
}

// Before row r of a block whose decoder outputs are outputs (row_width a row), at every
// kPreparedRows-th row: the entry pmfs of the next kPreparedRows rows, computed side by side.
// Enough rows to keep the threads busy, few enough that their pmfs stay in a few MB.
constexpr std::int64_t kPreparedRows = 16;
void prepare_rows_from(RowCoder& coder, const std::vector<float>& outputs, std::int64_t row_width,
                       std::int64_t r) {
  if (r % kPreparedRows != 0) return;
  const auto rows = static_cast<std::int64_t>(outputs.size()) / row_width;
  coder.prepare(outputs.data() + r * row_width, std::min(kPreparedRows, rows - r));
}

// The model's coding of a block: its latent codes, and the counts given the dequantised codes.
class ModelBlockCoder {
 public:
  ModelBlockCoder(const ModelRef& model, const LosslessOptions& options)
      : config_(model.config),
        latent_coder_(make_latent_coder(model, options.latent_bits)),
        encoder_(model.backend, model.config, model.parameters, options.batch_rows),
        decoder_(model.backend, model.config, model.parameters, options.batch_rows) {}

  DeterministicDecoder& decoder() { return decoder_; }
  const LatentCoder& latent_coder() const { return latent_coder_; }

  // Codes the latents (and row totals) of block and prepares the rows' entry models.
  void start(const HostCsr& block) {
    HostDense latents = encoder_.encode(block);
    latent_coder_.put(latent_stream_, block.rows, decoder_.latent_width(), latents.values.data());
    coder_ = std::make_unique<RowCoder>(config_.train.loss, config_.scale, block.cols);
    offsets_.assign(static_cast<std::size_t>(block.rows), 0.0f);
    if (decoder_.takes_offsets())
      for (std::int64_t r = 0; r < block.rows; ++r) {
        const std::uint32_t total = row_total(block, r);
        coder_->put_total(residual_stream_, total);
        offsets_[static_cast<std::size_t>(r)] = log_offset(total, config_);
      }
    outputs_.resize(static_cast<std::size_t>(block.rows * decoder_.output_width()));
    decoder_.decode(latents.values.data(), block.rows, offsets_.data(), outputs_.data());
  }
  // Codes row r (dense) of the block; returns its NLL in nats (count_pmf coding).
  double put(std::int64_t r, const std::vector<float>& row) {
    prepare_rows_from(*coder_, outputs_, decoder_.output_width(), r);
    return coder_->put(residual_stream_, outputs_.data() + r * decoder_.output_width(), row.data());
  }
  std::vector<std::uint8_t> finish_latents() { return latent_stream_.finish(); }
  std::vector<std::uint8_t> finish_residuals() { return residual_stream_.finish(); }

 private:
  const RunConfig& config_;
  const LatentCoder latent_coder_;
  TrainedModel encoder_;
  DeterministicDecoder decoder_;
  std::unique_ptr<RowCoder> coder_;
  RansEncoder latent_stream_, residual_stream_;
  std::vector<float> offsets_, outputs_;
};

LosslessSizes compress_rows(const ModelRef* model, RowBlockSource& source, const std::string& path,
                            const LosslessOptions& options) {
  require(options.codec == LosslessCodec::model || options.codec == LosslessCodec::order0 ||
              options.codec == LosslessCodec::order0_training,
          "unknown lossless codec " + std::to_string(static_cast<std::uint32_t>(options.codec)));
  require(options.block_rows > 0 && options.block_rows <= (1 << 24),
          "rows per block " + std::to_string(options.block_rows) + " outside [1, 2^24]");
  const bool use_model = options.codec == LosslessCodec::model;
  // The model's training rows give the order-0 tables: the file stores none, and the model
  // identifies them.
  const bool training_tables = options.codec == LosslessCodec::order0_training;
  require(!training_tables || model != nullptr, "the order0-training codec needs a model");
  std::unique_ptr<ModelBlockCoder> model_coder;
  if (use_model) {
    require(model != nullptr, "the model codec needs a model");
    require(source.cols() == model->config.model.input_dim,
            "the data have " + std::to_string(source.cols()) + " columns, the model expects " +
                std::to_string(model->config.model.input_dim));
    model_coder = std::make_unique<ModelBlockCoder>(*model, options);
  }
  const std::int64_t cols = source.cols();
  const ResidualCoding coding =
      use_model ? lossless::residual_coding(model->config.train.loss, model->config.scale)
                : ResidualCoding::adaptive_residual;

  Output out(path);
  if (training_tables)
    require(source.cols() == model->config.model.input_dim,
            "the data have " + std::to_string(source.cols()) + " columns, the model expects " +
                std::to_string(model->config.model.input_dim));
  const Order0Tables tables = training_tables ? Order0Tables(ColumnHistogram(model->config))
                                              : fit_order0_tables(source, options.block_rows);
  const std::vector<std::uint8_t> table_bytes =
      training_tables ? std::vector<std::uint8_t>() : tables.encode();
  Header header{};
  std::memcpy(header.magic, kHeaderMagic, sizeof kHeaderMagic);
  header.version = kLosslessFormatVersion;
  header.codec = static_cast<std::uint32_t>(options.codec);
  header.rows = static_cast<std::uint64_t>(source.rows());
  header.cols = static_cast<std::uint64_t>(cols);
  header.block_rows = static_cast<std::uint64_t>(options.block_rows);
  header.table_bytes = table_bytes.size();
  if (use_model) {
    header.latent_bits = static_cast<std::uint32_t>(options.latent_bits);
    header.coding = static_cast<std::uint32_t>(coding);
    header.latent_width = static_cast<std::uint64_t>(model_coder->decoder().latent_width());
    header.model_identity = lossless_model_identity(model->config, model->parameters);
    header.probe =
        decoder_probe(model_coder->decoder(), model->config, model_coder->latent_coder());
  }
  if (training_tables)
    header.model_identity = lossless_model_identity(model->config, model->parameters);
  header.checksum = checksum_before_last_field(header);
  out.write(&header, sizeof header);

  LosslessSizes sizes;
  sizes.rows = source.rows();
  sizes.cols = cols;
  sizes.framing_bytes = sizeof header;
  sizes.nll_bits = use_model && coding == ResidualCoding::count_pmf ? 0.0 : std::nan("");
  double nll_nats = 0.0;
  HostCsr block;
  std::vector<float> row(static_cast<std::size_t>(cols));
  const std::vector<std::uint8_t> no_bytes;
  for (std::int64_t first = 0;; first += block.rows) {
    source.next(options.block_rows, block);
    if (block.rows == 0) break;
    check_integer_counts(block, first);
    if (use_model) model_coder->start(block);
    Order0RowCoder order0_coder(tables);
    RansEncoder order0_stream;
    Fnv1a block_counts;
    for (std::int64_t r = 0; r < block.rows; ++r) {
      dense_row(block, r, row);
      hash_row(row, block_counts);
      for (const float v : row) sizes.nonzeros += v != 0.0f;
      order0_coder.put(order0_stream, row.data());
      if (use_model) nll_nats += model_coder->put(r, row);
    }
    const std::vector<std::uint8_t> order0_bytes = order0_stream.finish();
    std::vector<std::uint8_t> latent_bytes, residual_bytes;
    if (use_model) {
      latent_bytes = model_coder->finish_latents();
      residual_bytes = model_coder->finish_residuals();
      sizes.model_coding_bytes +=
          static_cast<std::int64_t>(latent_bytes.size() + residual_bytes.size());
    }
    const bool keep_model =
        use_model && (!options.order0_fallback ||
                      latent_bytes.size() + residual_bytes.size() < order0_bytes.size());
    const std::vector<std::uint8_t>& kept_latents = keep_model ? latent_bytes : no_bytes;
    const std::vector<std::uint8_t>& kept_counts = keep_model ? residual_bytes : order0_bytes;

    BlockHeader block_header{};
    std::memcpy(block_header.magic, kBlockMagic, sizeof kBlockMagic);
    block_header.first_row = static_cast<std::uint64_t>(first);
    block_header.rows = static_cast<std::uint64_t>(block.rows);
    block_header.coding =
        static_cast<std::uint32_t>(keep_model ? BlockCoding::model : BlockCoding::order0);
    block_header.latent_bytes = kept_latents.size();
    block_header.count_bytes = kept_counts.size();
    block_header.counts_hash = block_counts.value();
    Fnv1a block_hash;
    block_hash.add(&block_header, sizeof block_header);
    block_hash.add(kept_latents.data(), kept_latents.size());
    block_hash.add(kept_counts.data(), kept_counts.size());
    const std::uint64_t block_checksum = block_hash.value();
    out.write(&block_header, sizeof block_header);
    out.write(kept_latents.data(), kept_latents.size());
    out.write(kept_counts.data(), kept_counts.size());
    out.write(&block_checksum, sizeof block_checksum);
    sizes.framing_bytes += sizeof block_header + sizeof block_checksum;
    if (keep_model) {
      sizes.latent_bytes += static_cast<std::int64_t>(latent_bytes.size());
      sizes.residual_bytes += static_cast<std::int64_t>(residual_bytes.size());
    } else {
      sizes.order0_bytes += static_cast<std::int64_t>(order0_bytes.size());
      ++sizes.order0_blocks;
    }
    ++sizes.blocks;
  }
  // The tables follow the blocks, and only where a block is coded with them: a file whose every
  // block keeps the model's coding holds none (512 columns' tables are kilobytes, a few bytes a
  // row of a file of thousands of rows).
  if (sizes.order0_blocks > 0 && !training_tables) {
    Fnv1a table_hash;
    table_hash.add(table_bytes.data(), table_bytes.size());
    const std::uint64_t table_checksum = table_hash.value();
    out.write(table_bytes.data(), table_bytes.size());
    out.write(&table_checksum, sizeof table_checksum);
    sizes.table_bytes = static_cast<std::int64_t>(table_bytes.size() + sizeof table_checksum);
  }
  Trailer trailer{};
  std::memcpy(trailer.magic, kTrailerMagic, sizeof kTrailerMagic);
  trailer.blocks = static_cast<std::uint64_t>(sizes.blocks);
  trailer.nonzeros = static_cast<std::uint64_t>(sizes.nonzeros);
  out.write(&trailer, sizeof trailer - sizeof trailer.checksum);
  trailer.checksum = out.checksum();
  out.write(&trailer.checksum, sizeof trailer.checksum);
  sizes.framing_bytes += sizeof trailer;
  if (!std::isnan(sizes.nll_bits)) sizes.nll_bits = nll_nats / std::log(2.0);
  out.commit();
  return sizes;
}

// Decodes the blocks of a model-coded file: their latents and the counts given them.
class ModelBlockDecoder {
 public:
  ModelBlockDecoder(const ModelRef& model, int latent_bits, std::int64_t batch_rows)
      : config_(model.config),
        latent_coder_(make_latent_coder(model, latent_bits)),
        decoder_(model.backend, model.config, model.parameters, batch_rows) {}

  DeterministicDecoder& decoder() { return decoder_; }
  const LatentCoder& latent_coder() const { return latent_coder_; }

  // Reads the block's latent stream and the row totals at the head of its residual stream.
  void start(std::int64_t rows, const std::uint8_t* latent_bytes, std::size_t latent_size,
             RansDecoder& residual_stream) {
    latents_.resize(static_cast<std::size_t>(rows * decoder_.latent_width()));
    RansDecoder latent_stream(latent_bytes, latent_size);
    latent_coder_.get(latent_stream, rows, decoder_.latent_width(), latents_.data());
    latent_stream.finish();
    coder_ = std::make_unique<RowCoder>(config_.train.loss, config_.scale, config_.model.input_dim);
    offsets_.assign(static_cast<std::size_t>(rows), 0.0f);
    if (decoder_.takes_offsets())
      for (std::int64_t r = 0; r < rows; ++r)
        offsets_[static_cast<std::size_t>(r)] =
            log_offset(coder_->get_total(residual_stream), config_);
    outputs_.resize(static_cast<std::size_t>(rows * decoder_.output_width()));
    decoder_.decode(latents_.data(), rows, offsets_.data(), outputs_.data());
  }
  void get(RansDecoder& residual_stream, std::int64_t r, float* row) {
    prepare_rows_from(*coder_, outputs_, decoder_.output_width(), r);
    coder_->get(residual_stream, outputs_.data() + r * decoder_.output_width(), row);
  }

 private:
  const RunConfig& config_;
  const LatentCoder latent_coder_;
  DeterministicDecoder decoder_;
  std::unique_ptr<RowCoder> coder_;
  std::vector<float> latents_, offsets_, outputs_;
};

void decompress_rows(const ModelRef* model, const std::string& path, std::int64_t batch_rows,
                     const std::function<void(const LosslessFileInfo&)>& start,
                     const std::function<void(std::int64_t, const HostCsr&)>& visit) {
  Input in(path);
  const Trailer trailer = in.trailer();
  Header header;
  in.read(&header, sizeof header, "the header");
  if (std::memcmp(header.magic, kHeaderMagic, sizeof kHeaderMagic) != 0)
    in.fail("not a file written by sae compress (no SAECOMP header)");
  // The version comes first: an older file's header has another layout, so its checksum is not
  // where this build looks.
  if (header.version < kOldestLosslessFormatVersion || header.version > kLosslessFormatVersion)
    in.fail("format version " + std::to_string(header.version) + ", this build reads versions " +
            std::to_string(kOldestLosslessFormatVersion) + " to " +
            std::to_string(kLosslessFormatVersion) +
            ": decompress it with the build that wrote it");
  if (header.checksum != checksum_before_last_field(header))
    in.fail("the header's checksum does not match: the file is corrupt");
  if (std::memcmp(trailer.magic, kTrailerMagic, sizeof kTrailerMagic) != 0)
    in.fail("truncated or corrupt: no trailer at the end of the file");
  const auto codec = static_cast<LosslessCodec>(header.codec);
  if (codec != LosslessCodec::model && codec != LosslessCodec::order0 &&
      codec != LosslessCodec::order0_training)
    in.fail("unknown codec " + std::to_string(header.codec) + ": the file is corrupt");
  const bool use_model = codec == LosslessCodec::model;
  const bool training_tables = codec == LosslessCodec::order0_training;
  if (use_model || training_tables) {
    if (model == nullptr)
      in.fail(use_model ? "compressed with a model (--codec model): decompress with the checkpoint "
                          "it was compressed with (--model)"
                        : "compressed with the order-0 tables of a model's training rows (--codec "
                          "order0-training): decompress with that checkpoint (--model)");
    const std::uint64_t identity = lossless_model_identity(model->config, model->parameters);
    if (header.model_identity != identity)
      in.fail(std::string("compressed with another model") + (use_model ? "" : "'s tables") +
              " (identity " + hex(header.model_identity) + ", the model given is " +
              hex(identity) + "): decompress with the same --model");
  }
  if (training_tables && (header.cols != static_cast<std::uint64_t>(model->config.model.input_dim) ||
                          header.table_bytes != 0))
    in.fail("the header's shape does not match the model's: the file is corrupt");
  std::unique_ptr<ModelBlockDecoder> model_decoder;
  if (use_model) {
    model_decoder = std::make_unique<ModelBlockDecoder>(
        *model, static_cast<int>(header.latent_bits), batch_rows);
    const RunConfig& config = model->config;
    if (header.cols != static_cast<std::uint64_t>(config.model.input_dim) ||
        header.latent_width !=
            static_cast<std::uint64_t>(model_decoder->decoder().latent_width()) ||
        header.coding !=
            static_cast<std::uint32_t>(lossless::residual_coding(config.train.loss, config.scale)))
      in.fail("the header's shape does not match the model's: the file is corrupt");
    const std::uint64_t probe =
        decoder_probe(model_decoder->decoder(), config, model_decoder->latent_coder());
    if (header.probe != probe)
      in.fail(
          "this machine's decoder computes other probabilities than the one that wrote the "
          "file (probe " +
          hex(probe) + ", file " + hex(header.probe) +
          "): decompress where it was compressed, with the same build and C library");
  }
  if (header.rows > static_cast<std::uint64_t>(io_limits::max_rows) ||
      header.cols > static_cast<std::uint64_t>(io_limits::max_cols) || header.block_rows == 0 ||
      header.block_rows > (1u << 24))
    in.fail("the header's row or column counts are out of range: the file is corrupt");
  const auto cols = static_cast<std::int64_t>(header.cols);
  const auto trailer_start = in.size() - static_cast<std::int64_t>(sizeof(Trailer));
  const bool tables_at_end = header.version >= 4;
  if (!tables_at_end && header.table_bytes > static_cast<std::uint64_t>(std::max<std::int64_t>(
                                                 trailer_start - in.position() - 8, 0)))
    in.fail("the order-0 tables are longer than the file: the file is corrupt or truncated");
  // Before version 4 the tables follow the header; from 4 they end the blocks, where a block
  // uses them, and are read out of order when the first such block comes (the file's checksum
  // takes them in order after the blocks).
  // A table length beyond the file is refused where the tables are needed, before any use.
  const bool tables_fit = header.table_bytes <= static_cast<std::uint64_t>(trailer_start);
  const std::int64_t tables_size =
      tables_fit ? static_cast<std::int64_t>(header.table_bytes) + 8 : 0;
  const std::int64_t tables_start = trailer_start - tables_size;
  std::vector<std::uint8_t> table_section, payload;
  std::unique_ptr<Order0Tables> tables;
  const auto take_tables = [&](const std::uint8_t* bytes) {
    Fnv1a table_hash;
    table_hash.add(bytes, header.table_bytes);
    std::uint64_t table_checksum;
    std::memcpy(&table_checksum, bytes + header.table_bytes, sizeof table_checksum);
    if (table_checksum != table_hash.value())
      in.fail("the order-0 tables' checksum does not match: the file is corrupt");
    try {
      tables = std::make_unique<Order0Tables>(bytes, header.table_bytes, cols);
    } catch (const Error& error) {
      in.fail(std::string("the order-0 tables: ") + error.what());
    }
  };
  if (training_tables)
    tables = std::make_unique<Order0Tables>(ColumnHistogram(model->config));
  else if (!tables_at_end) {
    table_section.resize(static_cast<std::size_t>(tables_size));
    in.read(table_section.data(), table_section.size(), "the order-0 tables");
    take_tables(table_section.data());
  }
  // Where the blocks end: before the tables, when they are at the end and a block needs them.
  std::int64_t blocks_end = trailer_start;

  LosslessFileInfo info;
  info.codec = codec;
  info.rows = static_cast<std::int64_t>(header.rows);
  info.cols = cols;
  info.nonzeros = static_cast<std::int64_t>(trailer.nonzeros);
  info.latent_bits = static_cast<int>(header.latent_bits);
  start(info);

  std::int64_t first = 0, nonzeros = 0;
  std::uint64_t blocks = 0;
  std::vector<float> row(static_cast<std::size_t>(cols));
  HostCsr block;
  block.cols = cols;
  while (in.position() < blocks_end) {
    BlockHeader block_header;
    in.read(&block_header, sizeof block_header, "a block header");
    const std::string where =
        "block " + std::to_string(blocks + 1) + " (from row " + std::to_string(first + 1) + ")";
    const auto coding = static_cast<BlockCoding>(block_header.coding);
    const bool model_block = coding == BlockCoding::model;
    if (tables_at_end && !model_block && tables == nullptr) {
      if (!tables_fit || tables_start < in.position())
        in.fail(where + ": no room for the order-0 tables: the file is corrupt or truncated");
      table_section.resize(static_cast<std::size_t>(tables_size));
      in.read_at(tables_start, table_section.data(), table_section.size());
      take_tables(table_section.data());
      blocks_end = tables_start;
    }
    const std::int64_t left = blocks_end - in.position() - 8;
    if (std::memcmp(block_header.magic, kBlockMagic, sizeof kBlockMagic) != 0 ||
        block_header.first_row != static_cast<std::uint64_t>(first) || block_header.rows == 0 ||
        block_header.rows > header.block_rows ||
        block_header.rows > header.rows - static_cast<std::uint64_t>(first) ||
        (coding != BlockCoding::order0 && !(model_block && use_model)) ||
        (!model_block && block_header.latent_bytes != 0) ||
        block_header.latent_bytes > static_cast<std::uint64_t>(std::max<std::int64_t>(left, 0)) ||
        block_header.count_bytes >
            static_cast<std::uint64_t>(std::max<std::int64_t>(left, 0)) - block_header.latent_bytes)
      in.fail(where + ": the block header is corrupt or the file truncated");
    Fnv1a block_hash;
    block_hash.add(&block_header, sizeof block_header);
    payload.resize(block_header.latent_bytes + block_header.count_bytes);
    in.read(payload.data(), payload.size(), where.c_str());
    block_hash.add(payload.data(), payload.size());
    std::uint64_t block_checksum;
    in.read(&block_checksum, sizeof block_checksum, where.c_str());
    if (block_checksum != block_hash.value())
      in.fail(where + ": checksum mismatch: the file is corrupt");

    const auto rows = static_cast<std::int64_t>(block_header.rows);
    Fnv1a block_counts;
    try {
      RansDecoder count_stream(payload.data() + block_header.latent_bytes,
                               block_header.count_bytes);
      if (model_block)
        model_decoder->start(rows, payload.data(), block_header.latent_bytes, count_stream);
      std::optional<Order0RowCoder> order0_coder;
      if (!model_block) order0_coder.emplace(*tables);
      block.rows = rows;
      block.row_offsets.assign(1, 0);
      block.col_indices.clear();
      block.values.clear();
      for (std::int64_t r = 0; r < rows; ++r) {
        if (model_block)
          model_decoder->get(count_stream, r, row.data());
        else
          order0_coder->get(count_stream, row.data());
        hash_row(row, block_counts);
        for (std::int64_t c = 0; c < cols; ++c)
          if (row[static_cast<std::size_t>(c)] != 0.0f) {
            block.col_indices.push_back(static_cast<ColIndex>(c));
            block.values.push_back(row[static_cast<std::size_t>(c)]);
          }
        block.row_offsets.push_back(static_cast<RowOffset>(block.values.size()));
      }
      count_stream.finish();
    } catch (const Error& error) {
      in.fail(where + ": " + error.what());
    }
    if (block_counts.value() != block_header.counts_hash)
      in.fail(where + ": the decoded counts differ from the ones compressed (another decoder?)");
    visit(first, block);
    first += rows;
    nonzeros += block.nnz();
    ++blocks;
  }
  if (blocks_end < trailer_start) {
    // The tables, read again in order for the file's checksum: the same bytes as before?
    std::vector<std::uint8_t> again(table_section.size());
    in.read(again.data(), again.size(), "the order-0 tables");
    if (again != table_section) in.fail("the order-0 tables changed while being read");
  }
  // The trailer's fields up to its checksum are hashed as they are read; the checksum itself is
  // the one read out of order at the start, the same bytes.
  Trailer read_trailer;
  in.read(&read_trailer, sizeof read_trailer - sizeof read_trailer.checksum, "the trailer");
  if (trailer.checksum != in.checksum())
    in.fail("the file's checksum does not match: the file is corrupt");
  if (read_trailer.blocks != blocks ||
      read_trailer.nonzeros != static_cast<std::uint64_t>(nonzeros) || first != info.rows)
    in.fail("holds " + std::to_string(first) + " rows in " + std::to_string(blocks) +
            " blocks, the header and trailer say otherwise: the file is corrupt");
}

// decompress_rows into a MatrixMarket file, written atomically.
LosslessFileInfo decompress_rows_to_matrix_market(const ModelRef* model, const std::string& path,
                                                  const std::string& out, std::int64_t batch_rows) {
  AtomicFile file(out);
  LosslessFileInfo info;
  std::string text;
  decompress_rows(
      model, path, batch_rows,
      [&](const LosslessFileInfo& found) {
        info = found;
        text = "%%MatrixMarket matrix coordinate integer general\n" + std::to_string(info.rows) +
               " " + std::to_string(info.cols) + " " + std::to_string(info.nonzeros) + "\n";
      },
      [&](std::int64_t first, const HostCsr& block) {
        for (std::int64_t r = 0; r < block.rows; ++r)
          for (RowOffset k = block.row_offsets[r]; k < block.row_offsets[r + 1]; ++k) {
            text += std::to_string(first + r + 1);
            text += ' ';
            text += std::to_string(block.col_indices[k] + 1);
            text += ' ';
            text += std::to_string(static_cast<std::int64_t>(block.values[k]));
            text += '\n';
          }
        file.write(text);
        text.clear();
      });
  file.write(text);
  file.commit();
  return info;
}

// Without a model no decoder batches rows: any batch size will do.
constexpr std::int64_t kModelFreeBatchRows = 1;

}  // namespace

LosslessSizes compress_lossless(Backend& backend, const RunConfig& config,
                                const std::vector<float>& parameters, RowBlockSource& source,
                                const std::string& path, const LosslessOptions& options) {
  const ModelRef model{backend, config, parameters};
  return compress_rows(&model, source, path, options);
}

LosslessSizes compress_lossless(RowBlockSource& source, const std::string& path,
                                const LosslessOptions& options) {
  require(options.codec == LosslessCodec::order0,
          "lossless compression without a model takes the order0 codec only");
  return compress_rows(nullptr, source, path, options);
}

void decompress_lossless(Backend& backend, const RunConfig& config,
                         const std::vector<float>& parameters, const std::string& path,
                         std::int64_t batch_rows,
                         const std::function<void(const LosslessFileInfo&)>& start,
                         const std::function<void(std::int64_t, const HostCsr&)>& visit) {
  const ModelRef model{backend, config, parameters};
  decompress_rows(&model, path, batch_rows, start, visit);
}

void decompress_lossless(const std::string& path,
                         const std::function<void(const LosslessFileInfo&)>& start,
                         const std::function<void(std::int64_t, const HostCsr&)>& visit) {
  decompress_rows(nullptr, path, kModelFreeBatchRows, start, visit);
}

LosslessFileInfo decompress_lossless_to_matrix_market(Backend& backend, const RunConfig& config,
                                                      const std::vector<float>& parameters,
                                                      const std::string& path,
                                                      const std::string& out,
                                                      std::int64_t batch_rows) {
  const ModelRef model{backend, config, parameters};
  return decompress_rows_to_matrix_market(&model, path, out, batch_rows);
}

LosslessFileInfo decompress_lossless_to_matrix_market(const std::string& path,
                                                      const std::string& out) {
  return decompress_rows_to_matrix_market(nullptr, path, out, kModelFreeBatchRows);
}

}  // namespace sparseae
