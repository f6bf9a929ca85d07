#pragma once
// Owning, typed, move-only arrays of a backend's memory: Buffer (the backend's own memory space)
// and PinnedBuffer (host memory its staged uploads read).
#include <cstddef>
#include <utility>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/error.hpp"

namespace sparseae {

namespace detail {

// Owning, typed, move-only array of memory that a backend hands out by Allocate and takes back by
// Release: what Buffer and PinnedBuffer share.
template <typename T, void* (Backend::*Allocate)(std::size_t),
          void (Backend::*Release)(void*) noexcept>
class BackendArray {
 public:
  BackendArray() = default;
  BackendArray(Backend& backend, std::size_t size) : backend_(&backend), size_(size) {
    if (size_ > 0) data_ = static_cast<T*>((backend.*Allocate)(size_ * sizeof(T)));
  }
  ~BackendArray() { release(); }

  BackendArray(BackendArray&& other) noexcept
      : backend_(std::exchange(other.backend_, nullptr)),
        data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  BackendArray& operator=(BackendArray&& other) noexcept {
    if (this != &other) {
      release();
      backend_ = std::exchange(other.backend_, nullptr);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  BackendArray(const BackendArray&) = delete;
  BackendArray& operator=(const BackendArray&) = delete;

  T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 protected:
  Backend& backend() const { return *backend_; }

 private:
  void release() noexcept {
    if (data_ != nullptr) (backend_->*Release)(data_);
    data_ = nullptr;
    size_ = 0;
  }

  Backend* backend_ = nullptr;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detail

// Owning, typed, move-only array in a backend's memory space (host memory for cpu, device memory
// for cuda). Freed when it goes out of scope.
template <typename T>
class Buffer : public detail::BackendArray<T, &Backend::allocate_bytes, &Backend::free_bytes> {
  using Array = detail::BackendArray<T, &Backend::allocate_bytes, &Backend::free_bytes>;

 public:
  using Array::Array;
  Buffer(Backend& backend, const std::vector<T>& host) : Array(backend, host.size()) {
    upload(host);
  }

  // Copies host[0..host.size()) to the start of the buffer; host must not be longer.
  void upload(const std::vector<T>& host) {
    require(host.size() <= this->size(), "Buffer::upload: host data longer than the buffer");
    if (!host.empty())
      this->backend().upload_bytes(this->data(), host.data(), host.size() * sizeof(T));
  }
  // Returns the buffer's contents, waiting for pending ops on it.
  std::vector<T> download() const {
    std::vector<T> host(this->size());
    if (!this->empty())
      this->backend().download_bytes(host.data(), this->data(), this->size() * sizeof(T));
    return host;
  }
  void fill_zero() {
    if (!this->empty()) this->backend().fill_zero_bytes(this->data(), this->size() * sizeof(T));
  }

  // A rows x cols row-major view of the buffer's start.
  MatrixView<T> matrix(std::int64_t rows, std::int64_t cols) const {
    require(static_cast<std::size_t>(rows * cols) <= this->size(),
            "Buffer::matrix: view exceeds buffer");
    return {this->data(), rows, cols};
  }
};

// Owning, typed, move-only array of host memory that the backend's upload_async reads
// (page-locked on cuda). The host reads and writes it directly.
template <typename T>
using PinnedBuffer =
    detail::BackendArray<T, &Backend::allocate_pinned_bytes, &Backend::free_pinned_bytes>;

}  // namespace sparseae
