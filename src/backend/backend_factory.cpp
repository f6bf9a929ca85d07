#include "backend/backend_factories.hpp"
#include "sparseae/error.hpp"

namespace sparseae {

BackendChoice parse_backend_choice(const std::string& name) {
  if (name == "auto") return BackendChoice::automatic;
  if (name == "cpu") return BackendChoice::cpu;
  if (name == "cuda") return BackendChoice::cuda;
  throw Error("unknown backend '" + name + "': expected auto, cpu or cuda");
}

const char* backend_name(BackendKind kind) { return kind == BackendKind::cuda ? "cuda" : "cpu"; }

bool cuda_device_available(std::string* reason) { return detail::cuda_runtime_has_device(reason); }

std::unique_ptr<Backend> make_backend(BackendChoice choice, std::string* notice) {
  switch (choice) {
    case BackendChoice::cpu:
      return detail::make_cpu_backend();
    case BackendChoice::cuda:
      return detail::make_cuda_backend();
    case BackendChoice::automatic:
    default: {
      std::string reason;
      if (detail::cuda_runtime_has_device(&reason)) return detail::make_cuda_backend();
      if (notice != nullptr) *notice = "backend auto: no CUDA device (" + reason + "), using cpu";
      return detail::make_cpu_backend();
    }
  }
}

}  // namespace sparseae
