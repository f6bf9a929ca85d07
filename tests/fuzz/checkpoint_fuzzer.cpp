// libFuzzer harness of the checkpoint loader. The last 8 bytes of each input are overwritten with
// the checksum of the rest, so that mutations reach the configuration's JSON and the fields
// behind it instead of stopping at a checksum mismatch (which trainer_test covers). What the
// loader accepts holds four state arrays of the size its model configuration needs.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "checkpoint/checksum.hpp"
#include "fuzz_input.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/error.hpp"
#include "sparseae/model.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sparseae::fuzz::cap_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  if (bytes.size() >= sizeof(std::uint64_t)) {
    const std::size_t body = bytes.size() - sizeof(std::uint64_t);
    const std::uint64_t checksum = sparseae::checkpoint_checksum(bytes.data(), body);
    std::memcpy(bytes.data() + body, &checksum, sizeof checksum);
  }
  const std::string path = sparseae::fuzz::write_input(bytes.data(), bytes.size(), ".ckpt");
  sparseae::Checkpoint checkpoint;
  try {
    checkpoint = sparseae::load_checkpoint(path);
  } catch (const sparseae::Error&) {
    return 0;
  }
  const auto& state = checkpoint.state;
  const auto needed =
      static_cast<std::size_t>(sparseae::ModelLayout(checkpoint.config.model).parameter_count());
  for (const auto* values :
       {&state.parameters, &state.first_moment, &state.second_moment, &state.best_parameters})
    sparseae::fuzz::require_invariant(values->size() == needed,
                                      "each state array holds the model's parameters");
  return 0;
}
