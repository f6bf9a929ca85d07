#pragma once
// A model trained in a test, as the tests that train one and then use it share it.
#include <limits>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::test {

struct TrainedRun {
  // The configuration trained, with the trainer's scale and reference library size: what a
  // TrainedModel of the parameters needs to read its outputs as the trainer did.
  RunConfig run;
  TrainingState state;  // the kept epoch's parameters, and what resumes the run
  std::vector<float> parameters;
  std::vector<EpochReport> reports;
  HostCsr validation;  // the trainer's validation rows
  // Mean loss of the kept parameters on them (NaN without validation rows).
  double validation_loss = std::numeric_limits<double>::quiet_NaN();
};

// Trains run on data to its last epoch.
inline TrainedRun train_run(Backend& backend, RunConfig run, const HostCsr& data) {
  Trainer trainer(backend, run.model, run.train, data);
  TrainedRun result;
  result.reports = trainer.train();
  run.scale = trainer.scale();
  run.reference_library_size = trainer.reference_library_size();
  result.run = run;
  result.state = trainer.state();
  result.parameters = result.state.parameters;
  result.validation = trainer.validation_counts();
  if (trainer.validation_rows() > 0) result.validation_loss = trainer.validation_loss();
  return result;
}

}  // namespace sparseae::test
