#pragma once
// The ranks of a data-parallel run and the collectives its trainer needs between them: the sum of
// the flat gradient buffer once a step, and sums, maxima and gathers of host scalars for losses,
// metrics and the data's statistics. One process is a communicator of one rank whose collectives
// return their input; MPI (cpu) and NCCL over MPI (cuda) are made by make_communicator
// (src/backend/communicator_factory.hpp), which knows the backend.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sparseae {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single process", "MPI, 4 ranks", "NCCL over MPI, 8 ranks".
  virtual std::string description() const = 0;

  // Sums count floats of backend memory across the ranks, in place: every rank ends with the sum.
  // The one collective inside a training step.
  virtual void all_reduce_gradients(float* values, std::int64_t count) = 0;
  // Host memory, in place.
  virtual void all_reduce_sum(double* values, std::int64_t count) = 0;
  virtual void all_reduce_max(double* values, std::int64_t count) = 0;
  // Every rank's values, in rank order, on every rank.
  virtual std::vector<double> all_gather(const std::vector<double>& values) = 0;
  // Rank 0's count bytes of host memory, on every rank (in place): how a device collective
  // library's bootstrap id reaches the other ranks.
  virtual void broadcast_bytes(void* bytes, std::int64_t count) = 0;
  // Ends every rank of the job at once: the way out for a rank that failed while the others wait
  // in a collective for it. The caller has printed why.
  [[noreturn]] virtual void abort(int exit_code) = 0;

  // Seconds spent in all_reduce_gradients since construction (measured around the call, so on
  // cuda it counts issuing, not the transfer: bench/data-parallel times the transfer itself).
  double all_reduce_seconds() const { return all_reduce_seconds_; }

 protected:
  double all_reduce_seconds_ = 0.0;
};

// One process alone: every collective leaves its input as it is.
std::unique_ptr<Communicator> make_single_process_communicator();

// True when this process was started by an MPI launcher (mpirun, srun with PMI): the
// environment it sets. A plain `sae train` never initialises MPI.
bool launched_by_mpi();

// The number of ranks the launcher declares (OMPI_COMM_WORLD_SIZE, PMI_SIZE), or 0 when it
// declares none (PMIx alone names the rank, not the size).
int launcher_world_size();

namespace detail {
bool built_with_mpi();
// The MPI library this build calls ("Open MPI v4.1.4"), or "not built".
std::string mpi_build_info();
// MPI_COMM_WORLD over MPI_Allreduce on host memory (the cpu backend's memory is host memory).
// Initialises MPI on first use and finalises it when the last communicator goes. Throws Error in
// a build without MPI.
std::unique_ptr<Communicator> make_mpi_communicator();
}  // namespace detail

}  // namespace sparseae
