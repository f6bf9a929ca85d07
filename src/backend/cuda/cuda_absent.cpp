// The CUDA entry points of a build made without CUDA (SPARSEAE_ENABLE_CUDA=OFF or no nvcc).
#include "backend/backend_factories.hpp"
#include "sparseae/error.hpp"

namespace sparseae::detail {

namespace {
constexpr const char* kNoCuda = "this build of sparseae has no CUDA support";
}

std::unique_ptr<Backend> make_cuda_backend() {
  throw Error(std::string("backend cuda unavailable: ") + kNoCuda +
              " (rebuild with nvcc on the PATH and -DSPARSEAE_ENABLE_CUDA=ON)");
}

bool cuda_runtime_has_device(std::string* reason) {
  if (reason != nullptr) *reason = kNoCuda;
  return false;
}

std::string cuda_build_info() { return "CUDA: not built"; }

}  // namespace sparseae::detail
