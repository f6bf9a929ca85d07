#pragma once
// --report of sae compare and sae train: the HTML report of report/html_report.hpp with the
// facts of the run (data, model, backend, training settings) and a few validation rows for the
// image grid.
#include <cstdint>
#include <string>
#include <vector>

#include "cli/data_source.hpp"
#include "report/html_report.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/compare.hpp"

namespace sparseae::cli {

// Validation rows drawn in the report's image grid (image-like data only).
constexpr std::int64_t kReportSampleRows = 6;

// The first count rows of matrix (all of them when it has fewer).
HostCsr first_rows(const HostCsr& matrix, std::int64_t count);

// The lossless size of rows (raw counts) with the model of run and parameters, as sae compress
// stores them by default, what the model's coding alone costs, the order-0 code's, and the raw
// CSR's for scale. Measured in memory: nothing is written.
std::vector<report::LosslessSizeRow> lossless_sizes(Backend& backend, const RunConfig& run,
                                                    const std::vector<float>& parameters,
                                                    const HostCsr& rows);

// Writes the report atomically; samples are the validation rows each run's sample_counts
// reconstructs; sizes, when known, those rows' lossless sizes. The facts start with the data
// and end with the command line (command and args) and the version. Prints
// "sae <command>: wrote PATH" on stderr unless quiet.
void write_run_report(const std::string& path, const std::string& command,
                      const std::vector<std::string>& args, const Counts& counts,
                      const std::vector<std::pair<std::string, std::string>>& facts,
                      const std::vector<ComparisonRow>& runs, const HostCsr& samples,
                      const std::vector<report::LosslessSizeRow>& sizes, bool quiet);

}  // namespace sparseae::cli
