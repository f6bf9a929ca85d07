#pragma once
// Owning, typed, move-only array in a backend's memory space (host memory for cpu, device memory
// for cuda). Freed when it goes out of scope.
#include <cstddef>
#include <utility>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/error.hpp"

namespace sparseae {

template <typename T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(Backend& backend, std::size_t size) : backend_(&backend), size_(size) {
    if (size_ > 0) data_ = static_cast<T*>(backend.allocate_bytes(size_ * sizeof(T)));
  }
  Buffer(Backend& backend, const std::vector<T>& host) : Buffer(backend, host.size()) {
    upload(host);
  }
  ~Buffer() { release(); }

  Buffer(Buffer&& other) noexcept
      : backend_(std::exchange(other.backend_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      release();
      backend_ = std::exchange(other.backend_, nullptr);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Copies host[0..host.size()) to the start of the buffer; host must not be longer.
  void upload(const std::vector<T>& host) {
    require(host.size() <= size_, "Buffer::upload: host data longer than the buffer");
    if (!host.empty()) backend_->upload_bytes(data_, host.data(), host.size() * sizeof(T));
  }
  // Returns the buffer's contents, waiting for pending ops on it.
  std::vector<T> download() const {
    std::vector<T> host(size_);
    if (size_ > 0) backend_->download_bytes(host.data(), data_, size_ * sizeof(T));
    return host;
  }
  void fill_zero() {
    if (size_ > 0) backend_->fill_zero_bytes(data_, size_ * sizeof(T));
  }

  // A rows x cols row-major view of the buffer's start.
  MatrixView<T> matrix(std::int64_t rows, std::int64_t cols) const {
    require(static_cast<std::size_t>(rows * cols) <= size_, "Buffer::matrix: view exceeds buffer");
    return {data_, rows, cols};
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) backend_->free_bytes(data_);
    data_ = nullptr;
    size_ = 0;
  }

  Backend* backend_ = nullptr;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// Owning, typed, move-only array of host memory that the backend's upload_async reads
// (page-locked on cuda). The host reads and writes it directly.
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(Backend& backend, std::size_t size) : backend_(&backend), size_(size) {
    if (size_ > 0) data_ = static_cast<T*>(backend.allocate_pinned_bytes(size_ * sizeof(T)));
  }
  ~PinnedBuffer() { release(); }

  PinnedBuffer(PinnedBuffer&& other) noexcept
      : backend_(std::exchange(other.backend_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
      release();
      backend_ = std::exchange(other.backend_, nullptr);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  T* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void release() noexcept {
    if (data_ != nullptr) backend_->free_pinned_bytes(data_);
    data_ = nullptr;
    size_ = 0;
  }

  Backend* backend_ = nullptr;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace sparseae
