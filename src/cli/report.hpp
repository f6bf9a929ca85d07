#pragma once
// What sae prints at the end of a run: a table for people, JSON for programs.
#include <string>
#include <vector>

#include "cli/options.hpp"
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

// --decode, shared by sae train, decode and eval: declares it on o.
void add_decode_option(Options& o, const std::string& use);
// The decode mode --decode asks for (default: default_decode(loss)), checked against loss.
DecodeMode decode_option(const Options& o, LossKind loss);

void print_training_summary(const TrainingSummary& summary, bool json);
void print_metrics(const std::string& title, const ReconstructionMetrics& metrics, bool json);
// .mtx: counts decoded by decode from the outputs of a model trained with loss (see
// math::count_from_value); .npy: the values in data units as they are.
void write_reconstruction(const std::string& path, const HostDense& reconstruction, LossKind loss,
                          DecodeMode decode);

}  // namespace sparseae::cli
