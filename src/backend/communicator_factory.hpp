#pragma once
// The communicator of a run on a backend: one process alone, MPI on cpu, NCCL bootstrapped
// through MPI on cuda (one GPU per rank).
#include <memory>

#include "core/communicator.hpp"
#include "sparseae/backend.hpp"

namespace sparseae::detail {

// Under an MPI launcher (launched_by_mpi), the world's communicator for backend: MPI's for the
// cpu backend, NCCL's for cuda (an Error in a build without NCCL); otherwise one process.
std::unique_ptr<Communicator> make_communicator(Backend& backend);

// Under an MPI launcher in a build with CUDA, makes this rank's GPU the current device, before
// the backend is made: the node-local rank modulo the devices it sees, so several ranks on one
// machine take one GPU each. Does nothing otherwise.
void choose_rank_device();

// The NCCL communicator over the ranks of host (MPI's under a launcher, which bootstraps it and
// carries the host collectives), running on backend's stream. Throws Error in a build without
// CUDA and NCCL (built_with_nccl).
std::unique_ptr<Communicator> make_nccl_communicator(Backend& backend,
                                                     std::unique_ptr<Communicator> host);
bool built_with_nccl();

}  // namespace sparseae::detail
