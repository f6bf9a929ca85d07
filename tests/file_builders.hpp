#pragma once
// The bytes of small input files, built in the tests: .npy files as numpy writes them, gzip
// streams, little-endian arrays, and zip archives (.npz) as numpy's zipfile writes them.
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace sparseae::test {

// A .npy file as numpy writes it: magic, version, header length, the dict padded with spaces to
// a 64-byte boundary and ended by a newline, then the data.
inline std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  header.append(63 - (8 + length_bytes + header.size()) % 64, ' ');
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(major);
  bytes += '\0';
  for (std::size_t i = 0; i < length_bytes; ++i)
    bytes += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return bytes + header + data;
}

inline std::string npy_dict(const std::string& descr, const std::string& shape,
                            const std::string& fortran_order = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran_order + ", 'shape': " + shape +
         ", }";
}

// The little-endian bytes of values, each stored as a T.
template <typename T>
std::string little_endian(const std::vector<T>& values) {
  std::string bytes;
  for (const T value : values) {
    unsigned char raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));  // the tests run on little-endian machines
    bytes.append(reinterpret_cast<const char*>(raw), sizeof(T));
  }
  return bytes;
}

// data deflated at the best compression, wrapped as window_bits says (zlib's deflateInit2).
inline std::string deflate_stream(const std::string& data, int window_bits) {
  z_stream stream{};
  if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out(deflateBound(&stream, static_cast<uLong>(data.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int status = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (status != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
  return out;
}

// text as a gzip stream, as gzip(1) would write it: 16 above the window's 15 bits asks for a
// gzip header and trailer around the deflate data.
inline std::string gzipped(const std::string& text) { return deflate_stream(text, 15 + 16); }

// data as raw deflate (no header), what a zip member's method 8 holds.
inline std::string deflated(const std::string& data) { return deflate_stream(data, -MAX_WBITS); }

struct ZipMember {
  std::string name;
  std::string data;
};

// A zip archive of members, stored (np.savez) or deflated (np.savez_compressed). With zip64, each
// local header carries its sizes in a zip64 extra field (all ones in the 32-bit fields), as
// numpy's force_zip64 writes, and the end of the archive has zip64 records.
inline std::string zip_archive(const std::vector<ZipMember>& members, bool deflate,
                               bool zip64 = false) {
  const auto put = [](std::string& out, std::uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
  };
  std::string archive, directory;
  for (const ZipMember& member : members) {
    const std::string stored = deflate ? deflated(member.data) : member.data;
    const auto crc =
        static_cast<std::uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(member.data.data()),
                                         static_cast<uInt>(member.data.size())));
    const std::uint64_t offset = archive.size();
    const std::uint32_t method = deflate ? 8 : 0;
    std::string local;
    put(local, 0x04034b50, 4);
    put(local, zip64 ? 45 : 20, 2);
    put(local, 0, 2);
    put(local, method, 2);
    put(local, 0, 4);  // time and date
    put(local, crc, 4);
    put(local, zip64 ? 0xffffffff : stored.size(), 4);
    put(local, zip64 ? 0xffffffff : member.data.size(), 4);
    put(local, member.name.size(), 2);
    put(local, zip64 ? 20 : 0, 2);
    local += member.name;
    if (zip64) {
      put(local, 1, 2);
      put(local, 16, 2);
      put(local, member.data.size(), 8);
      put(local, stored.size(), 8);
    }
    archive += local + stored;
    put(directory, 0x02014b50, 4);
    put(directory, 45, 2);
    put(directory, 20, 2);
    put(directory, 0, 2);
    put(directory, method, 2);
    put(directory, 0, 4);
    put(directory, crc, 4);
    put(directory, stored.size(), 4);
    put(directory, member.data.size(), 4);
    put(directory, member.name.size(), 2);
    put(directory, zip64 ? 12 : 0, 2);
    put(directory, 0, 2);  // comment
    put(directory, 0, 4);  // disk, internal attributes
    put(directory, 0, 4);  // external attributes
    put(directory, zip64 ? 0xffffffff : offset, 4);
    directory += member.name;
    if (zip64) {
      put(directory, 1, 2);
      put(directory, 8, 2);
      put(directory, offset, 8);
    }
  }
  const std::uint64_t directory_offset = archive.size();
  archive += directory;
  if (zip64) {
    const std::uint64_t record = archive.size();
    put(archive, 0x06064b50, 4);
    put(archive, 44, 8);
    put(archive, 45, 2);
    put(archive, 45, 2);
    put(archive, 0, 8);
    put(archive, members.size(), 8);
    put(archive, members.size(), 8);
    put(archive, directory.size(), 8);
    put(archive, directory_offset, 8);
    put(archive, 0x07064b50, 4);
    put(archive, 0, 4);
    put(archive, record, 8);
    put(archive, 1, 4);
  }
  put(archive, 0x06054b50, 4);
  put(archive, 0, 4);
  put(archive, zip64 ? 0xffff : members.size(), 2);
  put(archive, zip64 ? 0xffff : members.size(), 2);
  put(archive, directory.size(), 4);
  put(archive, zip64 ? 0xffffffff : directory_offset, 4);
  put(archive, 0, 2);
  return archive;
}

}  // namespace sparseae::test
