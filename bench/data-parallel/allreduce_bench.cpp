// The all-reduce of one data-parallel step, alone: Communicator::all_reduce_gradients (MPI on cpu
// buffers) of the flat gradient of a model with --floats parameters, timed --reps times after
// --warmup untimed ones. Run under mpirun; rank 0 prints one JSON line: the bytes a step reduces
// and the median and mean seconds per all-reduce.
//   mpirun -np 2 build/bench/sae-allreduce-bench --floats 337184
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/communicator.hpp"

int main(int argc, char** argv) {
  std::int64_t floats = 337184;  // the users' 512-256-128-32 model, mirrored decoder
  int reps = 200;
  int warmup = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--floats") == 0) floats = std::atoll(argv[i + 1]);
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--warmup") == 0) warmup = std::atoi(argv[i + 1]);
  }
  auto ranks = sparseae::launched_by_mpi() ? sparseae::detail::make_mpi_communicator()
                                           : sparseae::make_single_process_communicator();
  std::vector<float> gradient(static_cast<std::size_t>(floats), 1.0f);
  std::vector<double> seconds;
  for (int r = 0; r < warmup + reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    ranks->all_reduce_gradients(gradient.data(), floats);
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r >= warmup) seconds.push_back(elapsed);
  }
  // Rank 0's times include waiting for the last rank to arrive: every rank's longest is kept.
  ranks->all_reduce_max(seconds.data(), static_cast<std::int64_t>(seconds.size()));
  double mean = 0.0;
  for (const double s : seconds) mean += s / static_cast<double>(seconds.size());
  std::sort(seconds.begin(), seconds.end());
  if (ranks->rank() == 0)
    std::printf(
        "{\"ranks\": %d, \"floats\": %lld, \"bytes\": %lld, \"median_seconds\": %.9f, "
        "\"mean_seconds\": %.9f}\n",
        ranks->size(), static_cast<long long>(floats), static_cast<long long>(floats * 4),
        seconds[seconds.size() / 2], mean);
  return 0;
}
