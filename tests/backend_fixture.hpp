#pragma once
// A fixture that runs each test once per backend: "cpu" everywhere, "cuda" wherever a CUDA device
// answers. Where none does, the cuda instantiation skips and says why, so a CPU-only run reports
// the GPU tests as skipped rather than passed.
//
//   class GemmConformance : public sparseae::test::BackendTest {};
//   TEST_P(GemmConformance, ...) { ... backend() ... }
//   SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(GemmConformance);
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "reference.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/matrix.hpp"

namespace sparseae::test {

// A dense matrix in a backend's memory, padding included, laid out like the host matrix it came
// from.
struct BackendMatrix {
  Buffer<float> buffer;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t ld = 0;

  DenseView view() const { return {buffer.data(), rows, cols, ld}; }
  ConstDenseView const_view() const { return view(); }
};

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& name = GetParam();
    if (name == "cuda") {
      std::string reason;
      if (!cuda_device_available(&reason))
        GTEST_SKIP() << "cuda backend: no device answers (" << reason << ")";
      backend_ = make_backend(BackendChoice::cuda);
    } else if (name == "cpu") {
      backend_ = make_backend(BackendChoice::cpu);
    } else {
      FAIL() << "unknown backend parameter '" << name << "'";
    }
  }

  Backend& backend() { return *backend_; }
  bool is_cpu() const { return backend_->kind() == BackendKind::cpu; }

  template <typename T>
  Buffer<T> upload(const std::vector<T>& host) {
    return Buffer<T>(backend(), host);
  }
  template <typename T>
  std::vector<T> download(const Buffer<T>& buffer) {
    return buffer.download();
  }

  BackendMatrix upload(const reference::FloatMatrix& host) {
    return {Buffer<float>(backend(), host.data), host.rows, host.cols, host.ld};
  }
  reference::FloatMatrix download(const BackendMatrix& matrix) {
    reference::FloatMatrix host(matrix.rows, matrix.cols, matrix.ld, 0.0f);
    host.data = matrix.buffer.download();
    return host;
  }

 private:
  std::unique_ptr<Backend> backend_;
};

inline std::string backend_param_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace sparseae::test

#define SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(suite)                                     \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values("cpu", "cuda"), \
                           ::sparseae::test::backend_param_name)
