// detail::make_mpi_communicator: MPI_COMM_WORLD, or an error in a build without MPI.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "core/communicator.hpp"
#include "sparseae/error.hpp"

#ifdef SPARSEAE_HAVE_MPI
#include <mpi.h>
#endif

namespace sparseae::detail {

#ifdef SPARSEAE_HAVE_MPI

namespace {

void check_mpi(int result, const char* call) {
  if (result == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(result, text, &length);
  throw Error(std::string(call) +
              " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

int world_rank() {
  int rank = 0;
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
  return rank;
}

int world_size() {
  int size = 0;
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  return size;
}

// MPI is initialised once a process and finalised after its last communicator: MPI_Init may not
// be called again after MPI_Finalize.
int live_communicators = 0;

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      // Errors come back as codes, so that a failed collective is an Error naming the call
      // rather than MPI's default abort without a word about which rank or why.
      check_mpi(MPI_Init(nullptr, nullptr), "MPI_Init");
      MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    ++live_communicators;
    rank_ = world_rank();
    size_ = world_size();
  }
  ~MpiWorld() override {
    if (--live_communicators == 0) {
      int finalised = 0;
      MPI_Finalized(&finalised);
      if (!finalised) MPI_Finalize();
    }
  }
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string description() const override {
    return "MPI, " + std::to_string(size_) + (size_ == 1 ? " rank" : " ranks");
  }

  void all_reduce_gradients(float* values, std::int64_t count) override {
    const auto start = std::chrono::steady_clock::now();
    reduce(values, count, MPI_FLOAT, MPI_SUM, "MPI_Allreduce (gradients)");
    all_reduce_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  void all_reduce_sum(double* values, std::int64_t count) override {
    reduce(values, count, MPI_DOUBLE, MPI_SUM, "MPI_Allreduce (sum)");
  }
  void all_reduce_max(double* values, std::int64_t count) override {
    reduce(values, count, MPI_DOUBLE, MPI_MAX, "MPI_Allreduce (max)");
  }

  std::vector<double> all_gather(const std::vector<double>& values) override {
    const int count = narrow(static_cast<std::int64_t>(values.size()));
    std::vector<int> counts(static_cast<std::size_t>(size_));
    check_mpi(MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD),
              "MPI_Allgather");
    std::vector<int> displacements(counts.size(), 0);
    std::int64_t total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      displacements[r] = narrow(total);
      total += counts[r];
    }
    std::vector<double> gathered(static_cast<std::size_t>(narrow(total)));
    check_mpi(MPI_Allgatherv(values.data(), count, MPI_DOUBLE, gathered.data(), counts.data(),
                             displacements.data(), MPI_DOUBLE, MPI_COMM_WORLD),
              "MPI_Allgatherv");
    return gathered;
  }

  void broadcast_bytes(void* bytes, std::int64_t count) override {
    check_mpi(MPI_Bcast(bytes, narrow(count), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
  }

  [[noreturn]] void abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; should it, the rank still ends
  }

 private:
  // MPI counts are ints: larger reductions go in pieces.
  static int narrow(std::int64_t count) {
    require(count <= 0x7fffffff,
            "MPI: a collective of " + std::to_string(count) + " values exceeds MPI's int count");
    return static_cast<int>(count);
  }

  template <typename Value>
  void reduce(Value* values, std::int64_t count, MPI_Datatype type, MPI_Op op, const char* what) {
    constexpr std::int64_t kPiece = 1 << 30;
    for (std::int64_t done = 0; done < count; done += kPiece) {
      const int piece = static_cast<int>(std::min(kPiece, count - done));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, values + done, piece, type, op, MPI_COMM_WORLD), what);
    }
  }

  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiWorld>(); }

bool built_with_mpi() { return true; }

std::string mpi_build_info() {
  // Callable before MPI_Init (MPI 3.0): "Open MPI v4.1.4, package: ...", up to its first comma.
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "MPI";
  const std::string library(text, static_cast<std::size_t>(length));
  return library.substr(0, library.find_first_of(",\n"));
}

#else

std::unique_ptr<Communicator> make_mpi_communicator() {
  throw Error(
      "this sae was built without MPI: install libopenmpi-dev (scripts/ensure-deps.sh) and "
      "rebuild with -DSPARSEAE_WITH_MPI=ON to train across ranks");
}

bool built_with_mpi() { return false; }

std::string mpi_build_info() { return "not built"; }

#endif

}  // namespace sparseae::detail
