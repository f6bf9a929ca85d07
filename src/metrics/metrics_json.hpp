#pragma once
// Reconstruction metrics as a JSON object, for the reports that nest them
// (ReconstructionMetrics::to_json writes them alone).
#include "core/json.hpp"
#include "sparseae/metrics.hpp"

namespace sparseae {

// Every field, in the order of to_json; NaN is null.
Json metrics_json(const ReconstructionMetrics& metrics);

}  // namespace sparseae
