#pragma once
// What sae prints at the end of a run: a table for people, JSON for programs.
#include <string>
#include <vector>

#include "sparseae/io.hpp"
#include "sparseae/metrics.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::cli {

struct TrainingSummary {
  std::string backend;
  std::string model;
  int epochs = 0;
  std::vector<EpochReport> reports;  // the epochs this run trained
  double validation_loss = 0;
  ReconstructionMetrics metrics;
  std::string checkpoint;
};

void print_training_summary(const TrainingSummary& summary, bool json);
void print_metrics(const std::string& title, const ReconstructionMetrics& metrics, bool json);
// .mtx: counts rounded to the nearest non-negative integer; .npy: the values as they are.
void write_reconstruction(const std::string& path, const HostDense& reconstruction);

}  // namespace sparseae::cli
