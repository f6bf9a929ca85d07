#include "cli/html_output.hpp"

#include <algorithm>
#include <iostream>

#include "report/html_report.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::cli {

HostCsr first_rows(const HostCsr& matrix, std::int64_t count) {
  std::vector<std::int64_t> rows;
  for (std::int64_t r = 0; r < std::min(count, matrix.rows); ++r) rows.push_back(r);
  return select_rows(matrix, rows);
}

void write_run_report(const std::string& path, const std::string& command, const Counts& counts,
                      const std::vector<std::pair<std::string, std::string>>& facts,
                      const std::vector<ComparisonRow>& runs, const HostCsr& samples, bool quiet) {
  report::HtmlReport html;
  html.title = command + ": " + counts.source;
  const std::string data = describe(counts);
  html.facts.emplace_back("data", data.rfind("data: ", 0) == 0 ? data.substr(6) : data);
  html.facts.insert(html.facts.end(), facts.begin(), facts.end());
  html.runs = runs;
  html.sample_originals = samples;
  report::write_html_report(path, html);
  if (!quiet) std::cerr << command << ": wrote " << path << "\n";
}

}  // namespace sparseae::cli
