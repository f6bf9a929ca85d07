#pragma once
// A file that appears at its path complete or not at all: bytes go to "<path>.tmp-<pid>", and
// commit() flushes them to disk and renames the temporary over the path. Destroyed without a
// commit (an exception on the way), it removes the temporary and leaves any old file untouched.
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace sparseae {

class AtomicFile {
 public:
  // Creates the temporary file; throws Error when it cannot.
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Makes the file appear at path; throws Error (and removes the temporary) when it cannot.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return temporary_path_; }

 private:
  [[noreturn]] void fail(const std::string& what, int error_number);

  std::string path_;
  std::string temporary_path_;
  std::FILE* stream_ = nullptr;
  bool committed_ = false;
};

}  // namespace sparseae
