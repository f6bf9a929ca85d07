#include "io/atomic_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "sparseae/error.hpp"

namespace sparseae {

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), temporary_path_(path_ + ".tmp-" + std::to_string(::getpid())) {
  stream_ = std::fopen(temporary_path_.c_str(), "wb");
  if (stream_ == nullptr)
    throw Error(path_ + ": cannot create " + temporary_path_ + ": " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (stream_ != nullptr) std::fclose(stream_);
  if (!committed_) std::remove(temporary_path_.c_str());
}

void AtomicFile::write(const void* data, std::size_t bytes) {
  if (bytes > 0 && std::fwrite(data, 1, bytes, stream_) != bytes) fail("cannot write", errno);
}

void AtomicFile::commit() {
  // fsync before rename: otherwise a crash soon after could leave the new name on empty blocks.
  if (std::fflush(stream_) != 0 || ::fsync(::fileno(stream_)) != 0) fail("cannot write", errno);
  const int close_result = std::fclose(stream_);
  stream_ = nullptr;
  if (close_result != 0) fail("cannot write", errno);
  if (std::rename(temporary_path_.c_str(), path_.c_str()) != 0)
    fail("cannot rename " + temporary_path_ + " to it", errno);
  committed_ = true;
}

void AtomicFile::fail(const std::string& what, int error_number) {
  throw Error(path_ + ": " + what + ": " + std::strerror(error_number));
}

}  // namespace sparseae
