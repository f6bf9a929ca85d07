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
#include <string>

#include "compress/deterministic_decoder.hpp"
#include "compress/entry_coding.hpp"
#include "compress/fnv.hpp"
#include "compress/rans.hpp"
#include "io/atomic_file.hpp"
#include "math/op_math.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the lossless format is written in the host's byte order, little-endian");

namespace sparseae {

using lossless::DeterministicDecoder;
using lossless::Fnv1a;
using lossless::LatentCoder;
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
  std::uint32_t latent_bits;
  std::uint32_t coding;
  std::uint32_t reserved;
  std::uint64_t rows;
  std::uint64_t cols;
  std::uint64_t latent_width;
  std::uint64_t model_identity;
  std::uint64_t probe;
  std::uint64_t block_rows;
  std::uint64_t checksum;
};

struct BlockHeader {
  char magic[8];
  std::uint64_t first_row;
  std::uint64_t rows;
  std::uint64_t latent_bytes;
  std::uint64_t residual_bytes;
  std::uint64_t counts_hash;
};

struct Trailer {
  char magic[8];
  std::uint64_t blocks;
  std::uint64_t nonzeros;
  std::uint64_t checksum;
};

static_assert(sizeof(Header) == 80 && sizeof(BlockHeader) == 48 && sizeof(Trailer) == 32,
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
std::uint64_t decoder_probe(DeterministicDecoder& decoder, const RunConfig& config) {
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
    std::fseek(file_, static_cast<long>(size_ - static_cast<std::int64_t>(sizeof trailer)),
               SEEK_SET);
    if (std::fread(&trailer, 1, sizeof trailer, file_) != sizeof trailer) fail("cannot read");
    std::fseek(file_, static_cast<long>(position_), SEEK_SET);
    return trailer;
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

std::uint64_t lossless_model_identity(const RunConfig& config,
                                      const std::vector<float>& parameters) {
  Fnv1a hash;
  const std::string json = run_config_to_json(config);
  hash.add(json.data(), json.size());
  hash.add(parameters.data(), parameters.size() * sizeof(float));
  return hash.value();
}

LosslessSizes compress_lossless(Backend& backend, const RunConfig& config,
                                const std::vector<float>& parameters, RowBlockSource& source,
                                const std::string& path, const LosslessOptions& options) {
  const LatentCoder latent_coder(options.latent_bits);
  require(options.block_rows > 0 && options.block_rows <= (1 << 24),
          "rows per block " + std::to_string(options.block_rows) + " outside [1, 2^24]");
  require(source.cols() == config.model.input_dim,
          "the data have " + std::to_string(source.cols()) + " columns, the model expects " +
              std::to_string(config.model.input_dim));
  TrainedModel model(backend, config, parameters, options.batch_rows);
  DeterministicDecoder decoder(backend, config, parameters, options.batch_rows);
  const LossKind loss = config.train.loss;
  const ResidualCoding coding = lossless::residual_coding(loss, config.scale);
  const std::int64_t cols = source.cols();
  const std::int64_t width = decoder.latent_width();

  Output out(path);
  Header header{};
  std::memcpy(header.magic, kHeaderMagic, sizeof kHeaderMagic);
  header.version = kLosslessFormatVersion;
  header.latent_bits = static_cast<std::uint32_t>(options.latent_bits);
  header.coding = static_cast<std::uint32_t>(coding);
  header.rows = static_cast<std::uint64_t>(source.rows());
  header.cols = static_cast<std::uint64_t>(cols);
  header.latent_width = static_cast<std::uint64_t>(width);
  header.model_identity = lossless_model_identity(config, parameters);
  header.probe = decoder_probe(decoder, config);
  header.block_rows = static_cast<std::uint64_t>(options.block_rows);
  header.checksum = checksum_before_last_field(header);
  out.write(&header, sizeof header);

  LosslessSizes sizes;
  sizes.rows = source.rows();
  sizes.cols = cols;
  sizes.framing_bytes = sizeof header;
  sizes.nll_bits = coding == ResidualCoding::count_pmf ? 0.0 : std::nan("");
  double nll_nats = 0.0;
  std::uint64_t blocks = 0;
  HostCsr block;
  std::vector<float> outputs, offsets, row(static_cast<std::size_t>(cols));
  std::vector<std::uint32_t> totals;
  for (std::int64_t first = 0;; first += block.rows) {
    source.next(options.block_rows, block);
    if (block.rows == 0) break;
    check_integer_counts(block, first);
    HostDense latents = model.encode(block);
    RansEncoder latent_stream;
    latent_coder.put(latent_stream, block.rows, width, latents.values.data());
    const std::vector<std::uint8_t> latent_bytes = latent_stream.finish();

    RowCoder coder(loss, config.scale, cols);
    RansEncoder residual_stream;
    offsets.assign(static_cast<std::size_t>(block.rows), 0.0f);
    if (decoder.takes_offsets())
      for (std::int64_t r = 0; r < block.rows; ++r) {
        const std::uint32_t total = row_total(block, r);
        coder.put_total(residual_stream, total);
        offsets[static_cast<std::size_t>(r)] = log_offset(total, config);
      }
    outputs.resize(static_cast<std::size_t>(block.rows * decoder.output_width()));
    decoder.decode(latents.values.data(), block.rows, offsets.data(), outputs.data());
    Fnv1a block_counts;
    for (std::int64_t r = 0; r < block.rows; ++r) {
      dense_row(block, r, row);
      hash_row(row, block_counts);
      for (const float v : row) sizes.nonzeros += v != 0.0f;
      nll_nats +=
          coder.put(residual_stream, outputs.data() + r * decoder.output_width(), row.data());
    }
    const std::vector<std::uint8_t> residual_bytes = residual_stream.finish();

    BlockHeader block_header{};
    std::memcpy(block_header.magic, kBlockMagic, sizeof kBlockMagic);
    block_header.first_row = static_cast<std::uint64_t>(first);
    block_header.rows = static_cast<std::uint64_t>(block.rows);
    block_header.latent_bytes = latent_bytes.size();
    block_header.residual_bytes = residual_bytes.size();
    block_header.counts_hash = block_counts.value();
    Fnv1a block_hash;
    block_hash.add(&block_header, sizeof block_header);
    block_hash.add(latent_bytes.data(), latent_bytes.size());
    block_hash.add(residual_bytes.data(), residual_bytes.size());
    const std::uint64_t block_checksum = block_hash.value();
    out.write(&block_header, sizeof block_header);
    out.write(latent_bytes.data(), latent_bytes.size());
    out.write(residual_bytes.data(), residual_bytes.size());
    out.write(&block_checksum, sizeof block_checksum);
    sizes.framing_bytes += sizeof block_header + sizeof block_checksum;
    sizes.latent_bytes += static_cast<std::int64_t>(latent_bytes.size());
    sizes.residual_bytes += static_cast<std::int64_t>(residual_bytes.size());
    ++blocks;
  }
  Trailer trailer{};
  std::memcpy(trailer.magic, kTrailerMagic, sizeof kTrailerMagic);
  trailer.blocks = blocks;
  trailer.nonzeros = static_cast<std::uint64_t>(sizes.nonzeros);
  out.write(&trailer, sizeof trailer - sizeof trailer.checksum);
  trailer.checksum = out.checksum();
  out.write(&trailer.checksum, sizeof trailer.checksum);
  sizes.framing_bytes += sizeof trailer;
  if (coding == ResidualCoding::count_pmf) sizes.nll_bits = nll_nats / std::log(2.0);
  out.commit();
  return sizes;
}

void decompress_lossless(Backend& backend, const RunConfig& config,
                         const std::vector<float>& parameters, const std::string& path,
                         std::int64_t batch_rows,
                         const std::function<void(const LosslessFileInfo&)>& start,
                         const std::function<void(std::int64_t, const HostCsr&)>& visit) {
  Input in(path);
  const Trailer trailer = in.trailer();
  Header header;
  in.read(&header, sizeof header, "the header");
  if (std::memcmp(header.magic, kHeaderMagic, sizeof kHeaderMagic) != 0)
    in.fail("not a file written by sae compress (no SAECOMP header)");
  if (header.checksum != checksum_before_last_field(header))
    in.fail("the header's checksum does not match: the file is corrupt");
  if (header.version != kLosslessFormatVersion)
    in.fail("format version " + std::to_string(header.version) + ", this build reads version " +
            std::to_string(kLosslessFormatVersion));
  if (std::memcmp(trailer.magic, kTrailerMagic, sizeof kTrailerMagic) != 0)
    in.fail("truncated or corrupt: no trailer at the end of the file");
  const std::uint64_t identity = lossless_model_identity(config, parameters);
  if (header.model_identity != identity)
    in.fail("compressed with another model (identity " + hex(header.model_identity) +
            ", the model given is " + hex(identity) + "): decompress with the same --model");
  const LatentCoder latent_coder(static_cast<int>(header.latent_bits));
  DeterministicDecoder decoder(backend, config, parameters, batch_rows);
  const LossKind loss = config.train.loss;
  const std::int64_t cols = config.model.input_dim;
  const std::int64_t width = decoder.latent_width();
  if (header.cols != static_cast<std::uint64_t>(cols) ||
      header.latent_width != static_cast<std::uint64_t>(width) ||
      header.coding != static_cast<std::uint32_t>(lossless::residual_coding(loss, config.scale)))
    in.fail("the header's shape does not match the model's: the file is corrupt");
  const std::uint64_t probe = decoder_probe(decoder, config);
  if (header.probe != probe)
    in.fail(
        "this machine's decoder computes other probabilities than the one that wrote the file "
        "(probe " +
        hex(probe) + ", file " + hex(header.probe) +
        "): decompress where it was compressed, with the same build and C library");
  if (header.rows > static_cast<std::uint64_t>(io_limits::max_rows) || header.block_rows == 0 ||
      header.block_rows > (1u << 24))
    in.fail("the header's row counts are out of range: the file is corrupt");

  LosslessFileInfo info;
  info.rows = static_cast<std::int64_t>(header.rows);
  info.cols = cols;
  info.nonzeros = static_cast<std::int64_t>(trailer.nonzeros);
  info.latent_bits = static_cast<int>(header.latent_bits);
  start(info);

  const auto trailer_start = in.size() - static_cast<std::int64_t>(sizeof(Trailer));
  std::int64_t first = 0, nonzeros = 0;
  std::uint64_t blocks = 0;
  std::vector<std::uint8_t> payload;
  std::vector<float> latents, outputs, offsets, row(static_cast<std::size_t>(cols));
  HostCsr block;
  block.cols = cols;
  while (in.position() < trailer_start) {
    BlockHeader block_header;
    in.read(&block_header, sizeof block_header, "a block header");
    const std::string where =
        "block " + std::to_string(blocks + 1) + " (from row " + std::to_string(first + 1) + ")";
    const std::int64_t left = trailer_start - in.position() - 8;
    if (std::memcmp(block_header.magic, kBlockMagic, sizeof kBlockMagic) != 0 ||
        block_header.first_row != static_cast<std::uint64_t>(first) || block_header.rows == 0 ||
        block_header.rows > header.block_rows ||
        block_header.rows > header.rows - static_cast<std::uint64_t>(first) ||
        block_header.latent_bytes > static_cast<std::uint64_t>(std::max<std::int64_t>(left, 0)) ||
        block_header.residual_bytes >
            static_cast<std::uint64_t>(std::max<std::int64_t>(left, 0)) - block_header.latent_bytes)
      in.fail(where + ": the block header is corrupt or the file truncated");
    Fnv1a block_hash;
    block_hash.add(&block_header, sizeof block_header);
    payload.resize(block_header.latent_bytes + block_header.residual_bytes);
    in.read(payload.data(), payload.size(), where.c_str());
    block_hash.add(payload.data(), payload.size());
    std::uint64_t block_checksum;
    in.read(&block_checksum, sizeof block_checksum, where.c_str());
    if (block_checksum != block_hash.value())
      in.fail(where + ": checksum mismatch: the file is corrupt");

    const auto rows = static_cast<std::int64_t>(block_header.rows);
    Fnv1a block_counts;
    try {
      latents.resize(static_cast<std::size_t>(rows * width));
      RansDecoder latent_stream(payload.data(), block_header.latent_bytes);
      latent_coder.get(latent_stream, rows, width, latents.data());
      latent_stream.finish();
      RansDecoder residual_stream(payload.data() + block_header.latent_bytes,
                                  block_header.residual_bytes);
      RowCoder coder(loss, config.scale, cols);
      offsets.assign(static_cast<std::size_t>(rows), 0.0f);
      if (decoder.takes_offsets())
        for (std::int64_t r = 0; r < rows; ++r)
          offsets[static_cast<std::size_t>(r)] =
              log_offset(coder.get_total(residual_stream), config);
      outputs.resize(static_cast<std::size_t>(rows * decoder.output_width()));
      decoder.decode(latents.data(), rows, offsets.data(), outputs.data());
      block.rows = rows;
      block.row_offsets.assign(1, 0);
      block.col_indices.clear();
      block.values.clear();
      for (std::int64_t r = 0; r < rows; ++r) {
        coder.get(residual_stream, outputs.data() + r * decoder.output_width(), row.data());
        hash_row(row, block_counts);
        for (std::int64_t c = 0; c < cols; ++c)
          if (row[static_cast<std::size_t>(c)] != 0.0f) {
            block.col_indices.push_back(static_cast<ColIndex>(c));
            block.values.push_back(row[static_cast<std::size_t>(c)]);
          }
        block.row_offsets.push_back(static_cast<RowOffset>(block.values.size()));
      }
      residual_stream.finish();
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

LosslessFileInfo decompress_lossless_to_matrix_market(Backend& backend, const RunConfig& config,
                                                      const std::vector<float>& parameters,
                                                      const std::string& path,
                                                      const std::string& out,
                                                      std::int64_t batch_rows) {
  AtomicFile file(out);
  LosslessFileInfo info;
  std::string text;
  decompress_lossless(
      backend, config, parameters, path, batch_rows,
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

}  // namespace sparseae
