#pragma once
// A self-contained HTML report of one or more training runs: the metrics table and inline SVG
// charts drawn by this code (no scripts, stylesheets, fonts or images from anywhere else), so
// the file opens offline in any browser:
//   - training curves: train and validation loss per epoch, a chart per run (each loss in its
//     own units, so each has its own axis)
//   - exactness per column: the fraction of each column's non-zeros reproduced exactly, columns
//     ranked by how often they are non-zero and binned, a line per run
//   - true and decoded counts: a table per run of the entries by true and decoded count
//   - hurdle threshold: per hurdle run, exact F1, precision and recall at each support threshold
//   - wrong entries per row: a histogram of how many entries of a row come back wrong, a line
//     per run
//   - latent firing frequencies, and the latent codes of validation rows on their first two
//     principal axes, a scatter per run
//   - lossless size: the validation rows' bytes per row by each coder measured, when known
//   - for image-like data (the number of columns a perfect square): a few validation rows next
//     to each run's reconstruction, as grey squares
#include <string>
#include <utility>
#include <vector>

#include "sparseae/compare.hpp"
#include "sparseae/csr.hpp"

namespace sparseae::report {

struct LosslessSizeRow {
  std::string coder;
  double bytes_per_row = 0;
  std::string detail;  // where the bytes go, or how the coder was set
};

struct HtmlReport {
  std::string title;
  // Lines shown under the title as "name: value" (data, model, backend, ...).
  std::vector<std::pair<std::string, std::string>> facts;
  std::vector<ComparisonRow> runs;  // a row of the table and a line in each chart per run
  // The validation rows that each run's sample_counts reconstructs (raw counts); the image grid
  // is drawn when its column count is a perfect square and it has rows.
  HostCsr sample_originals;
  // The lossless size of the validation rows by each coder measured, when known: a table.
  std::vector<LosslessSizeRow> sizes;
};

// &, <, >, " and ' as entities.
std::string html_escape(const std::string& text);

// The side of the square image a row of cols values is (28 for 784), or 0 when cols is not a
// perfect square larger than 1.
std::int64_t image_side(std::int64_t cols);

// The whole document, starting with <!DOCTYPE html>.
std::string render_html_report(const HtmlReport& report);

// Writes render_html_report(report) to path through AtomicFile: the file appears complete or not
// at all. Throws Error when it cannot.
void write_html_report(const std::string& path, const HtmlReport& report);

}  // namespace sparseae::report
