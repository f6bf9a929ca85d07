#pragma once
// --report of sae compare and sae train: the HTML report of report/html_report.hpp with the
// facts of the run (data, model, backend, training settings) and a few validation rows for the
// image grid.
#include <cstdint>
#include <string>
#include <vector>

#include "cli/data_source.hpp"
#include "sparseae/compare.hpp"

namespace sparseae::cli {

// Validation rows drawn in the report's image grid (image-like data only).
constexpr std::int64_t kReportSampleRows = 6;

// The first count rows of matrix (all of them when it has fewer).
HostCsr first_rows(const HostCsr& matrix, std::int64_t count);

// Writes the report atomically; samples are the validation rows each run's sample_counts
// reconstructs. Prints "sae <command>: wrote PATH" on stderr unless quiet.
void write_run_report(const std::string& path, const std::string& command, const Counts& counts,
                      const std::vector<std::pair<std::string, std::string>>& facts,
                      const std::vector<ComparisonRow>& runs, const HostCsr& samples, bool quiet);

}  // namespace sparseae::cli
