// NumPy .npz files: a zip archive of .npy members, stored or deflated (np.savez,
// np.savez_compressed), read whole. A scipy.sparse matrix saved by scipy.sparse.save_npz (members
// format, shape, data and indices + indptr for csr and csc, row + col for coo) becomes CSR; an
// archive of one 2-D array (np.savez(path, X)) is read as that dense array. The writers store
// their members uncompressed, as np.savez does.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/atomic_file.hpp"
#include "io/reading.hpp"
#include "sparseae/error.hpp"
#include "sparseae/io.hpp"

namespace sparseae {

using namespace io_detail;

namespace {

// The CRC-32 of size bytes, as zip records it (zlib's crc32 takes at most 4 GiB a call).
std::uint32_t crc32_of(const unsigned char* bytes, std::size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (std::size_t done = 0; done < size;) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(size - done, 1u << 30));
    crc = crc32(crc, bytes + done, chunk);
    done += chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

// The archive's bytes, read whole: a .npz's members are read whole by numpy too.
std::vector<unsigned char> read_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) fail(path, std::string("cannot open: ") + std::strerror(errno));
  const std::int64_t size = file_size_bytes(path);
  const std::string shortfall = memory_shortfall(size);
  if (!shortfall.empty()) fail(path, "reading it whole " + shortfall);
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  if (std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size())
    fail(path, std::string("cannot read: ") + std::strerror(errno));
  return bytes;
}

struct Member {
  std::uint16_t method = 0;  // 0 stored, 8 deflated
  std::uint32_t crc = 0;
  std::uint64_t compressed = 0;
  std::uint64_t uncompressed = 0;
  std::uint64_t local_header = 0;
};

// The zip archive's central directory: its members by name. Zip64 sizes and offsets (numpy
// writes members with force_zip64) are read from the extra fields that hold them.
class ZipArchive {
 public:
  ZipArchive(const std::string& path, std::vector<unsigned char> bytes)
      : path_(path), bytes_(std::move(bytes)) {
    constexpr std::uint32_t kEndSignature = 0x06054b50;
    constexpr std::size_t kEndBytes = 22;
    // The end record sits in the last 22 bytes plus a comment of at most 65535.
    if (bytes_.size() < kEndBytes) corrupt("shorter than a zip archive's end record");
    std::size_t end = bytes_.size() - kEndBytes;
    const std::size_t lowest = bytes_.size() > kEndBytes + 65535 ? end - 65535 : 0;
    while (u32(end) != kEndSignature) {
      if (end == lowest) corrupt("no zip end record: not a .npz (zip) archive");
      --end;
    }
    std::uint64_t entries = u16(end + 10);
    std::uint64_t directory_offset = u32(end + 16);
    if (entries == 0xffff || directory_offset == 0xffffffff) {
      // Zip64: a locator just before the end record points to the zip64 end record.
      if (end < 20 || u32(end - 20) != 0x07064b50) corrupt("zip64 locator missing");
      const std::uint64_t record = u64(end - 20 + 8);
      if (record + 56 > bytes_.size() || u32(record) != 0x06064b50)
        corrupt("zip64 end record missing");
      entries = u64(record + 32);
      directory_offset = u64(record + 48);
    }
    std::uint64_t at = directory_offset;
    for (std::uint64_t i = 0; i < entries; ++i) {
      if (at + 46 > bytes_.size() || u32(at) != 0x02014b50)
        corrupt("central directory entry " + std::to_string(i + 1) + " missing");
      Member member;
      member.method = static_cast<std::uint16_t>(u16(at + 10));
      member.crc = static_cast<std::uint32_t>(u32(at + 16));
      member.compressed = u32(at + 20);
      member.uncompressed = u32(at + 24);
      const std::uint64_t name_bytes = u16(at + 28), extra_bytes = u16(at + 30),
                          comment_bytes = u16(at + 32);
      member.local_header = u32(at + 42);
      if (at + 46 + name_bytes + extra_bytes + comment_bytes > bytes_.size())
        corrupt("central directory entry " + std::to_string(i + 1) + " truncated");
      const std::string name(reinterpret_cast<const char*>(&bytes_[at + 46]), name_bytes);
      read_zip64_extra(at + 46 + name_bytes, extra_bytes, member);
      members_[name] = member;
      at += 46 + name_bytes + extra_bytes + comment_bytes;
    }
  }

  bool has(const std::string& name) const { return members_.count(name) > 0; }
  std::vector<std::string> names() const {
    std::vector<std::string> names;
    for (const auto& entry : members_) names.push_back(entry.first);
    return names;
  }

  // The member's bytes, inflated and checked against its CRC-32.
  std::vector<unsigned char> member(const std::string& name) const {
    const auto found = members_.find(name);
    if (found == members_.end()) fail(path_, "no member '" + name + "'");
    const Member& m = found->second;
    const std::string what = path_ + ": " + name;
    const std::uint64_t at = m.local_header;
    if (at + 30 > bytes_.size() || u32(at) != 0x04034b50)
      fail(what, "local header missing: the archive is corrupt");
    const std::uint64_t data = at + 30 + u16(at + 26) + u16(at + 28);
    if (data > bytes_.size() || m.compressed > bytes_.size() - data)
      fail(what, "truncated: the archive ends inside it");
    const std::string shortfall = memory_shortfall(static_cast<std::int64_t>(
        std::min<std::uint64_t>(m.uncompressed, std::numeric_limits<std::int64_t>::max())));
    if (!shortfall.empty()) fail(what, "inflating it " + shortfall);
    std::vector<unsigned char> out(static_cast<std::size_t>(m.uncompressed));
    if (m.method == 0) {
      if (m.compressed != m.uncompressed) fail(what, "stored member's sizes differ: corrupt");
      // An empty member has no bytes to copy (and out.data() may be null).
      if (!out.empty()) std::memcpy(out.data(), bytes_.data() + data, out.size());
    } else if (m.method == 8) {
      inflate_raw(bytes_.data() + data, m.compressed, out, what);
    } else {
      fail(what, "compression method " + std::to_string(m.method) +
                     " (numpy writes 0, stored, or 8, deflate)");
    }
    if (crc32_of(out.data(), out.size()) != m.crc)
      fail(what, "CRC-32 mismatch: the archive is corrupt");
    return out;
  }

 private:
  [[noreturn]] void corrupt(const std::string& why) const { fail(path_, why); }
  std::uint64_t u16(std::uint64_t at) const { return load_little_endian(&bytes_[at], 2); }
  std::uint64_t u32(std::uint64_t at) const { return load_little_endian(&bytes_[at], 4); }
  std::uint64_t u64(std::uint64_t at) const { return load_little_endian(&bytes_[at], 8); }

  // The zip64 extra field (id 1) holds, in this order, those of the uncompressed size, the
  // compressed size and the local header offset whose 32-bit fields are all ones.
  void read_zip64_extra(std::uint64_t at, std::uint64_t bytes, Member& m) const {
    for (std::uint64_t end = at + bytes; at + 4 <= end;) {
      const std::uint64_t id = u16(at), size = u16(at + 2);
      if (at + 4 + size > end) corrupt("extra field truncated");
      if (id == 1) {
        std::uint64_t field = at + 4;
        for (std::uint64_t* value : {&m.uncompressed, &m.compressed, &m.local_header}) {
          if (*value != 0xffffffff) continue;
          if (field + 8 > at + 4 + size) corrupt("zip64 extra field truncated");
          *value = u64(field);
          field += 8;
        }
      }
      at += 4 + size;
    }
  }

  static void inflate_raw(const unsigned char* in, std::uint64_t in_bytes,
                          std::vector<unsigned char>& out, const std::string& what) {
    z_stream stream{};
    if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) fail(what, "cannot start inflating");
    const std::unique_ptr<z_stream, int (*)(z_stream*)> end(&stream, &inflateEnd);
    std::uint64_t in_done = 0, out_done = 0;
    int status = Z_OK;
    // Once out is full, inflate writes into one spare byte: the stream's end still has to be
    // reached (an empty member's too), and a byte there means more data than its size says.
    unsigned char spare = 0;
    while (status != Z_STREAM_END) {
      const auto in_chunk =
          static_cast<uInt>(std::min<std::uint64_t>(in_bytes - in_done, 1u << 30));
      const bool full = out_done == out.size();
      const auto out_chunk =
          full ? 1u : static_cast<uInt>(std::min<std::uint64_t>(out.size() - out_done, 1u << 30));
      stream.next_in = const_cast<Bytef*>(in + in_done);
      stream.avail_in = in_chunk;
      stream.next_out = full ? &spare : out.data() + out_done;
      stream.avail_out = out_chunk;
      status = inflate(&stream, Z_NO_FLUSH);
      in_done += in_chunk - stream.avail_in;
      if (full && stream.avail_out == 0)
        fail(what, "inflates to more bytes than its size says: the archive is corrupt");
      if (!full) out_done += out_chunk - stream.avail_out;
      if (status == Z_STREAM_END) break;
      if (status != Z_OK || (stream.avail_in == in_chunk && stream.avail_out == out_chunk))
        fail(what, std::string("deflate data corrupt or truncated") +
                       (stream.msg != nullptr ? std::string(" (") + stream.msg + ")" : ""));
    }
    if (out_done != out.size()) fail(what, "inflates to fewer bytes than its size says");
  }

  std::string path_;
  std::vector<unsigned char> bytes_;
  std::map<std::string, Member> members_;
};

// A scipy.sparse matrix saved by save_npz, as CSR (transposed when orientation says so).
HostCsr sparse_from(const ZipArchive& zip, const std::string& path, Orientation orientation) {
  const auto read = [&](const std::string& name, std::vector<unsigned char>& keep) {
    keep = zip.member(name + ".npy");
    return parse_npy(keep, path + ": " + name + ".npy");
  };
  std::vector<unsigned char> format_bytes, shape_bytes, data_bytes, first_bytes, second_bytes;
  SparseArrays arrays;
  arrays.format = npy_text(read("format", format_bytes), path + ": format.npy");
  arrays.shape = npy_integers(read("shape", shape_bytes), path + ": shape.npy");
  arrays.values = npy_counts(read("data", data_bytes), path + ": data.npy", arrays.integer);
  const bool compressed = arrays.format == "csr" || arrays.format == "csc";
  if (compressed || arrays.format == "coo") {
    const std::string first = compressed ? "indices" : "row";
    const std::string second = compressed ? "indptr" : "col";
    arrays.first = npy_integers(read(first, first_bytes), path + ": " + first + ".npy");
    arrays.second = npy_integers(read(second, second_bytes), path + ": " + second + ".npy");
  }
  return sparse_arrays_to_csr(path, arrays, orientation);
}

// A zip archive written whole: members stored (method 0), each with its CRC-32, then the central
// directory. Members and the archive stay below 4 GiB (no zip64), which the writers check.
class ZipWriter {
 public:
  void add(const std::string& name, const std::string& data) {
    const std::uint64_t offset = archive_.size();
    const std::uint32_t crc =
        crc32_of(reinterpret_cast<const unsigned char*>(data.data()), data.size());
    // Local header: signature, version 2.0, flags, method 0, time and date 0, CRC, sizes, name.
    put(archive_, 0x04034b50, 4);
    put(archive_, 20, 2);
    put(archive_, 0, 2);
    put(archive_, 0, 2);
    put(archive_, 0, 4);
    put(archive_, crc, 4);
    put(archive_, data.size(), 4);
    put(archive_, data.size(), 4);
    put(archive_, name.size(), 2);
    put(archive_, 0, 2);
    archive_ += name;
    archive_ += data;
    // Its central directory entry: made by 2.0, the same fields, no comment or attributes.
    put(directory_, 0x02014b50, 4);
    put(directory_, 20, 2);
    put(directory_, 20, 2);
    put(directory_, 0, 2);
    put(directory_, 0, 2);
    put(directory_, 0, 4);
    put(directory_, crc, 4);
    put(directory_, data.size(), 4);
    put(directory_, data.size(), 4);
    put(directory_, name.size(), 2);
    put(directory_, 0, 2);
    put(directory_, 0, 2);
    put(directory_, 0, 4);
    put(directory_, 0, 4);
    put(directory_, offset, 4);
    directory_ += name;
    ++members_;
  }

  void write(const std::string& path) {
    constexpr std::uint64_t kLimit = 0xffffffff;
    if (archive_.size() + directory_.size() >= kLimit || members_ >= 0xffff)
      fail(path, "a .npz of " + std::to_string(archive_.size() + directory_.size()) +
                     " bytes needs zip64, which this writer does not write: write .npy or .mtx");
    // The end record: disk numbers 0, the member count twice, the directory's size and offset.
    std::string end;
    put(end, 0x06054b50, 4);
    put(end, 0, 4);
    put(end, members_, 2);
    put(end, members_, 2);
    put(end, directory_.size(), 4);
    put(end, archive_.size(), 4);
    put(end, 0, 2);
    AtomicFile file(path);
    file.write(archive_);
    file.write(directory_);
    file.write(end);
    file.commit();
  }

 private:
  static void put(std::string& out, std::uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
  }

  std::string archive_, directory_;
  std::uint64_t members_ = 0;
};

template <typename T>
std::string npy_member(const std::string& descr, const std::vector<T>& values,
                       const std::vector<std::int64_t>& shape) {
  std::string bytes = npy_prefix(descr, shape);
  const std::size_t start = bytes.size();
  bytes.resize(start + values.size() * sizeof(T));
  // The host is little-endian (the formats assume it throughout), as '<' declares.
  if (!values.empty()) std::memcpy(&bytes[start], values.data(), values.size() * sizeof(T));
  return bytes;
}

}  // namespace

namespace io_detail {

HostCsr sparse_arrays_to_csr(const std::string& path, const SparseArrays& arrays,
                             Orientation orientation) {
  const std::string& format = arrays.format;
  const std::vector<std::int64_t>& shape = arrays.shape;
  if (format != "csr" && format != "csc" && format != "coo")
    fail(path, "scipy.sparse format '" + format + "' (this reader takes csr, csc and coo)");
  if (shape.size() != 2 || shape[0] < 0 || shape[1] < 0) fail(path, "shape is not a 2-D shape");
  if (shape[0] > io_limits::max_rows || shape[1] > io_limits::max_cols)
    fail(path, "shape (" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) +
                   ") exceeds the row or column limit");
  const auto count = static_cast<std::int64_t>(arrays.values.size());
  // Each stored entry's row and column, as scipy holds them.
  std::vector<std::int64_t> rows(static_cast<std::size_t>(count)),
      cols(static_cast<std::size_t>(count));
  if (format == "csr" || format == "csc") {
    const std::vector<std::int64_t>& indices = arrays.first;
    const std::vector<std::int64_t>& indptr = arrays.second;
    const bool by_row = format == "csr";
    const std::int64_t major = by_row ? shape[0] : shape[1];
    const std::int64_t minor = by_row ? shape[1] : shape[0];
    if (static_cast<std::int64_t>(indptr.size()) != major + 1 || indptr.front() != 0 ||
        indptr.back() != count || static_cast<std::int64_t>(indices.size()) != count)
      fail(path, format + " arrays disagree: indptr has " + std::to_string(indptr.size()) +
                     " entries (expected " + std::to_string(major + 1) + ", from 0 to " +
                     std::to_string(count) + "), indices " + std::to_string(indices.size()) +
                     ", data " + std::to_string(count));
    for (std::int64_t m = 0; m < major; ++m) {
      const std::int64_t begin = indptr[static_cast<std::size_t>(m)];
      const std::int64_t end = indptr[static_cast<std::size_t>(m) + 1];
      if (begin > end) fail(path, "indptr decreases at " + std::to_string(m));
      for (std::int64_t k = begin; k < end; ++k) {
        const std::int64_t index = indices[static_cast<std::size_t>(k)];
        if (index < 0 || index >= minor)
          fail(path, "indices[" + std::to_string(k) + "] = " + std::to_string(index) +
                         " outside [0, " + std::to_string(minor) + ")");
        rows[static_cast<std::size_t>(k)] = by_row ? m : index;
        cols[static_cast<std::size_t>(k)] = by_row ? index : m;
      }
    }
  } else {
    rows = arrays.first;
    cols = arrays.second;
    if (static_cast<std::int64_t>(rows.size()) != count ||
        static_cast<std::int64_t>(cols.size()) != count)
      fail(path, "coo arrays disagree: row " + std::to_string(rows.size()) + ", col " +
                     std::to_string(cols.size()) + ", data " + std::to_string(count));
    for (std::int64_t k = 0; k < count; ++k)
      if (rows[static_cast<std::size_t>(k)] < 0 || rows[static_cast<std::size_t>(k)] >= shape[0] ||
          cols[static_cast<std::size_t>(k)] < 0 || cols[static_cast<std::size_t>(k)] >= shape[1])
        fail(path, "entry " + std::to_string(k) + " at (" +
                       std::to_string(rows[static_cast<std::size_t>(k)]) + ", " +
                       std::to_string(cols[static_cast<std::size_t>(k)]) +
                       ") lies outside shape (" + std::to_string(shape[0]) + ", " +
                       std::to_string(shape[1]) + ")");
  }
  const bool transposed = orientation == Orientation::transposed;
  std::vector<std::int32_t> entry_rows(static_cast<std::size_t>(count));
  std::vector<ColIndex> entry_cols(static_cast<std::size_t>(count));
  for (std::size_t k = 0; k < rows.size(); ++k) {
    entry_rows[k] = static_cast<std::int32_t>(transposed ? cols[k] : rows[k]);
    entry_cols[k] = static_cast<ColIndex>(transposed ? rows[k] : cols[k]);
  }
  return assemble_entries(path, arrays.integer, transposed ? shape[1] : shape[0],
                          transposed ? shape[0] : shape[1], orientation, entry_rows, entry_cols,
                          arrays.values);
}

}  // namespace io_detail

LoadedMatrix read_npz(const std::string& path, Orientation orientation) {
  const ZipArchive zip(path, read_file(path));
  LoadedMatrix loaded;
  if (zip.has("format.npy")) {
    loaded.sparse = true;
    loaded.csr = sparse_from(zip, path, orientation);
    return loaded;
  }
  const std::vector<std::string> names = zip.names();
  if (names.size() != 1)
    fail(path, "neither a scipy.sparse matrix (no format.npy) nor one array (" +
                   std::to_string(names.size()) + " members)");
  const std::vector<unsigned char> bytes = zip.member(names.front());
  loaded.dense =
      npy_dense(parse_npy(bytes, path + ": " + names.front()), path + ": " + names.front());
  return loaded;
}

void write_npz(const std::string& path, const HostCsr& counts) {
  counts.validate();
  ZipWriter zip;
  const auto with_width = [&](const std::string& name, const auto& values) {
    // int32 as scipy uses for indices that fit; int64 beyond.
    const bool wide = counts.nnz() > INT32_MAX;
    if (wide)
      zip.add(name, npy_member("<i8", std::vector<std::int64_t>(values.begin(), values.end()),
                               {static_cast<std::int64_t>(values.size())}));
    else
      zip.add(name, npy_member("<i4", std::vector<std::int32_t>(values.begin(), values.end()),
                               {static_cast<std::int64_t>(values.size())}));
  };
  with_width("indices.npy", counts.col_indices);
  with_width("indptr.npy", counts.row_offsets);
  zip.add("format.npy", npy_prefix("|S3", {}) + "csr");
  zip.add("shape.npy", npy_member("<i8", std::vector<std::int64_t>{counts.rows, counts.cols}, {2}));
  zip.add("data.npy", npy_member("<f4", counts.values, {counts.nnz()}));
  zip.write(path);
}

void write_npz(const std::string& path, const HostDense& matrix) {
  require_dense_shape(path, matrix);
  ZipWriter zip;
  zip.add("arr_0.npy", npy_member("<f4", matrix.values, {matrix.rows, matrix.cols}));
  zip.write(path);
}

}  // namespace sparseae
