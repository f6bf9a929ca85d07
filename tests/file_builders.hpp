#pragma once
// The bytes of small input files, built in the tests: .npy files as numpy writes them, gzip
// streams, little-endian arrays.
#include <zlib.h>

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

// text as a gzip stream, as gzip(1) would write it.
inline std::string gzipped(const std::string& text) {
  z_stream stream{};
  constexpr int kGzipWindowBits = 15 + 16;  // 16: a gzip header and trailer around the deflate data
  if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, kGzipWindowBits, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out(deflateBound(&stream, static_cast<uLong>(text.size())), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  stream.avail_in = static_cast<uInt>(text.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int status = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (status != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
  return out;
}

}  // namespace sparseae::test
