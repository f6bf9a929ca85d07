#pragma once
// Training progress on stderr: a live bar redrawn in place on a terminal (epoch, step, loss,
// samples/s, ETA), otherwise nothing until each epoch's one line.
#include <chrono>
#include <cstdint>

#include "sparseae/trainer.hpp"

namespace sparseae::cli {

class Progress {
 public:
  // live: draw the bar (stderr is a terminal and the user did not ask for quiet).
  Progress(bool live, int epochs) : live_(live), epochs_(epochs) {}

  void step(int epoch, std::int64_t step, std::int64_t steps, double samples_per_second,
            double loss);
  void epoch(const EpochReport& report);

 private:
  bool live_;
  int epochs_;
  std::int64_t last_drawn_step_ = -1;
  std::chrono::steady_clock::time_point epoch_start_;
};

}  // namespace sparseae::cli
