// make_nccl_communicator: the gradients summed by ncclAllReduce on the cuda backend's stream, so
// the all-reduce is ordered between a step's backward and its optimizer without the host waiting;
// the host collectives (losses, metrics) go through the host communicator that bootstrapped NCCL
// (MPI's under a launcher; one process's in the one-rank test, which needs no MPI).
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "backend/communicator_factory.hpp"
#include "backend/cuda/cuda_backend.hpp"
#include "sparseae/error.hpp"

namespace sparseae::detail {

namespace {

void check_nccl(ncclResult_t result, const char* call) {
  if (result != ncclSuccess)
    throw Error(std::string(call) + " failed: " + ncclGetErrorString(result));
}

class NcclWorld final : public Communicator {
 public:
  NcclWorld(CudaBackend& backend, std::unique_ptr<Communicator> host)
      : stream_(backend.compute_stream()), host_(std::move(host)) {
    // Rank 0 makes the id and the host communicator carries it to the others: NCCL's bootstrap
    // needs no other channel than the launcher's.
    ncclUniqueId id{};
    if (host_->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host_->broadcast_bytes(&id, sizeof id);
    check_nccl(ncclCommInitRank(&comm_, host_->size(), id, host_->rank()), "ncclCommInitRank");
  }
  ~NcclWorld() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }
  NcclWorld(const NcclWorld&) = delete;
  NcclWorld& operator=(const NcclWorld&) = delete;

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  std::string description() const override {
    return "NCCL " + std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + " over " +
           host_->description();
  }

  void all_reduce_gradients(float* values, std::int64_t count) override {
    const auto start = std::chrono::steady_clock::now();
    check_nccl(ncclAllReduce(values, values, static_cast<std::size_t>(count), ncclFloat, ncclSum,
                             comm_, stream_),
               "ncclAllReduce");
    all_reduce_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  void all_reduce_sum(double* values, std::int64_t count) override {
    host_->all_reduce_sum(values, count);
  }
  void all_reduce_max(double* values, std::int64_t count) override {
    host_->all_reduce_max(values, count);
  }
  std::vector<double> all_gather(const std::vector<double>& values) override {
    return host_->all_gather(values);
  }
  void broadcast_bytes(void* bytes, std::int64_t count) override {
    host_->broadcast_bytes(bytes, count);
  }
  [[noreturn]] void abort(int exit_code) override {
    // A rank blocked in an NCCL kernel does not see MPI_Abort's signal until its process is
    // killed; ncclCommAbort releases it first.
    ncclCommAbort(comm_);
    comm_ = nullptr;
    host_->abort(exit_code);
    std::_Exit(exit_code);  // not reached: a communicator's abort does not return
  }

 private:
  cudaStream_t stream_;
  std::unique_ptr<Communicator> host_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Backend& backend,
                                                     std::unique_ptr<Communicator> host) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  require(cuda != nullptr, "NCCL needs the cuda backend");
  return std::make_unique<NcclWorld>(*cuda, std::move(host));
}

bool built_with_nccl() { return true; }

}  // namespace sparseae::detail
