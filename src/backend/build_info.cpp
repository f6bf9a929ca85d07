#include <cblas.h>

#include <string>

#include "backend/backend_factories.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/version.hpp"

namespace sparseae {

const char* version() { return SPARSEAE_VERSION; }

std::string build_info() {
  std::string info = std::string("sparseae ") + version() + " (" + SPARSEAE_BUILD_TYPE + ", " +
                     SPARSEAE_CXX_COMPILER + ")\n";
  info += std::string("BLAS: OpenBLAS ") + openblas_get_config() + "\n";
  info += detail::cuda_build_info();
  return info;
}

}  // namespace sparseae
