#include "cli/html_output.hpp"

#include <algorithm>
#include <iostream>

#include "cli/text_format.hpp"
#include "report/html_report.hpp"
#include "sparseae/lossless.hpp"
#include "sparseae/trainer.hpp"
#include "sparseae/version.hpp"

namespace sparseae::cli {

HostCsr first_rows(const HostCsr& matrix, std::int64_t count) {
  std::vector<std::int64_t> rows;
  for (std::int64_t r = 0; r < std::min(count, matrix.rows); ++r) rows.push_back(r);
  return select_rows(matrix, rows);
}

std::vector<report::LosslessSizeRow> lossless_sizes(Backend& backend, const RunConfig& run,
                                                    const std::vector<float>& parameters,
                                                    const HostCsr& rows) {
  LosslessOptions options;
  options.latent_bits = default_latent_bits(run.model);
  CsrRowSource model_source(rows);
  const LosslessSizes model =
      compress_lossless(backend, run, parameters, model_source, "", options);
  options.codec = LosslessCodec::order0;
  CsrRowSource order0_source(rows);
  const LosslessSizes order0 = compress_lossless(order0_source, "", options);
  const auto bytes_per_row = [&](double bytes) {
    return rows.rows > 0 ? bytes / static_cast<double>(rows.rows) : 0.0;
  };
  const std::string bits = options.latent_bits == kPriorLatentBits
                               ? "integer codes under the model's prior"
                               : std::to_string(options.latent_bits) + "-bit codes";
  return {
      {"sae compress with this model", bytes_per_row(static_cast<double>(model.total())),
       bits + "; each block the smaller of the model and order-0 coding; " + size_breakdown(model)},
      {"this model's coding of every block",
       bytes_per_row(
           static_cast<double>(model.model_coding_bytes + model.table_bytes + model.framing_bytes)),
       "codes + residual, without the per-block choice of order-0"},
      {"order-0 per column", bytes_per_row(static_cast<double>(order0.total())),
       size_breakdown(order0)},
      {"raw CSR (int32 index + value)",
       bytes_per_row(8.0 * static_cast<double>(rows.nnz()) + 4.0 * static_cast<double>(rows.rows)),
       "4 + 8 per non-zero"}};
}

void write_run_report(const std::string& path, const std::string& command,
                      const std::vector<std::string>& args, const Counts& counts,
                      const std::vector<std::pair<std::string, std::string>>& facts,
                      const std::vector<ComparisonRow>& runs, const HostCsr& samples,
                      const std::vector<report::LosslessSizeRow>& sizes, bool quiet) {
  report::HtmlReport html;
  html.title = command + ": " + counts.source;
  const std::string data = describe(counts);
  html.facts.emplace_back("data", data.rfind("data: ", 0) == 0 ? data.substr(6) : data);
  html.facts.insert(html.facts.end(), facts.begin(), facts.end());
  html.facts.emplace_back("command", command_line(command, args));
  html.facts.emplace_back("sparseae", version());
  html.runs = runs;
  html.sample_originals = samples;
  html.sizes = sizes;
  report::write_html_report(path, html);
  if (!quiet) std::cerr << command << ": wrote " << path << "\n";
}

}  // namespace sparseae::cli
