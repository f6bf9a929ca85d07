#pragma once
// Constructors of the concrete backends, kept out of the public headers. A build without CUDA
// links src/backend/cuda/cuda_absent.cpp, whose versions say so.
#include <memory>
#include <string>

#include "sparseae/backend.hpp"

namespace sparseae::detail {

std::unique_ptr<Backend> make_cpu_backend();

// Throws Error when no CUDA device answers (or the build has no CUDA).
std::unique_ptr<Backend> make_cuda_backend();
bool cuda_runtime_has_device(std::string* reason);
// One line on the CUDA side of this build and of the machine ("CUDA 13.0, sm_90; driver ...").
std::string cuda_build_info();

}  // namespace sparseae::detail
