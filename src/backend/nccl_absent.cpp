// make_nccl_communicator in a build without CUDA or NCCL: the factory never calls it
// (built_with_nccl is false), and says why instead.
#include "backend/communicator_factory.hpp"
#include "sparseae/error.hpp"

namespace sparseae::detail {

std::unique_ptr<Communicator> make_nccl_communicator(Backend&, std::unique_ptr<Communicator>) {
  throw Error("this build has no NCCL");
}

bool built_with_nccl() { return false; }

}  // namespace sparseae::detail
