#include <cblas.h>

#include <string>

#include "backend/backend_factories.hpp"
#include "backend/communicator_factory.hpp"
#include "core/communicator.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/version.hpp"

namespace sparseae {

const char* version() { return SPARSEAE_VERSION; }

std::string build_info() {
  std::string info = std::string("sparseae ") + version() + " (" + SPARSEAE_BUILD_TYPE + ", " +
                     SPARSEAE_CXX_COMPILER + ")\n";
  info += std::string("BLAS: OpenBLAS ") + openblas_get_config() + "\n";
  info += detail::cuda_build_info();
  info += "\nData-parallel (mpirun): " +
          (detail::built_with_mpi()
               ? detail::mpi_build_info() +
                     (detail::built_with_nccl() ? ", NCCL on cuda" : ", no NCCL (cpu only)")
               : std::string("not built (no MPI)"));
  return info;
}

}  // namespace sparseae
