#include "backend/communicator_factory.hpp"

#include <cstdlib>
#include <string>

#include "sparseae/error.hpp"

#ifdef SPARSEAE_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace sparseae::detail {

std::unique_ptr<Communicator> make_communicator(Backend& backend) {
  if (!launched_by_mpi()) return make_single_process_communicator();
  // A launcher of one rank (srun under PMIx sets its variables for every task) needs no MPI; a
  // build without it refuses more ranks (make_mpi_communicator says why) rather than let each
  // train the whole matrix.
  if (!built_with_mpi() && launcher_world_size() <= 1) return make_single_process_communicator();
  std::unique_ptr<Communicator> mpi = make_mpi_communicator();
  if (backend.kind() != BackendKind::cuda) return mpi;
  if (!built_with_nccl())
    throw Error(
        "the cuda backend trains across ranks through NCCL, which this build lacks (NCCL's "
        "nccl.h and libnccl were not found): rebuild with NCCL, or train on --backend cpu");
  return make_nccl_communicator(backend, std::move(mpi));
}

void choose_rank_device() {
#ifdef SPARSEAE_HAVE_CUDA
  if (!launched_by_mpi()) return;
  // Open MPI's, then MPICH's and Slurm's name for the rank within its machine.
  const char* local_rank = nullptr;
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if ((local_rank = std::getenv(name)) != nullptr) break;
  int devices = 0;
  if (local_rank == nullptr || cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();  // no device: the backend's own opening says so
    return;
  }
  cudaSetDevice(std::atoi(local_rank) % devices);
#endif
}

}  // namespace sparseae::detail
