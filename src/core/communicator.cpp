#include "core/communicator.hpp"

#include <cstdlib>

namespace sparseae {

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string description() const override { return "single process"; }
  void all_reduce_gradients(float*, std::int64_t) override {}
  void all_reduce_sum(double*, std::int64_t) override {}
  void all_reduce_max(double*, std::int64_t) override {}
  std::vector<double> all_gather(const std::vector<double>& values) override { return values; }
  void broadcast_bytes(void*, std::int64_t) override {}
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcess>();
}

bool launched_by_mpi() {
  // Open MPI's mpirun, then the PMI variables of MPICH's hydra and of Slurm's srun.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* size = std::getenv(name)) return std::atoi(size);
  return 0;
}

}  // namespace sparseae
