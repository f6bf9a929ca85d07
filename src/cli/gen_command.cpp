// sae gen: write counts of the embedded dataset's generator as .mtx, .npz, .npy or .csv.
#include <iostream>

#include "cli/commands.hpp"
#include "cli/data_source.hpp"
#include "cli/options.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/io.hpp"

namespace sparseae::cli {

int run_gen(const Args& args) {
  const TopicDataConfig defaults;
  Options o("sae gen",
            "Writes counts from the embedded dataset's generator: sparse counts mixed from a few\n"
            "topics per row, a known low-dimensional structure (see\n"
            "include/sparseae/generator.hpp).");
  o.value("out", "PATH", "",
          "output: .mtx, .npz or .h5ad (sparse), .npy or .csv (dense) (required)")
      .value("rows", "N", std::to_string(defaults.rows), "rows")
      .value("cols", "N", std::to_string(defaults.cols), "columns")
      .value("topics", "K", std::to_string(defaults.topics), "topics")
      .value("nnz", "M", "20", "mean non-zeros per row")
      // Every command's seed defaults to 1; the embedded dataset the others read is seed 42's.
      .value("seed", "N", "1",
             "seed (" + std::to_string(defaults.seed) +
                 ": the embedded dataset of the other commands)");
  add_quiet_option(o);
  if (!o.parse(args)) return 0;
  const std::string out = o.required("out");
  const MatrixFormat format = *output_option_format(o, "sae gen", "out", kCountFormats);
  TopicDataConfig config;
  config.rows = o.integer("rows");
  config.cols = o.integer("cols");
  config.topics = static_cast<int>(o.integer("topics"));
  config.mean_nonzeros = o.real("nnz");
  config.seed = static_cast<std::uint64_t>(o.integer("seed"));
  const HostCsr counts = generate_topic_counts(config);
  write_counts(out, format, counts);
  if (!o.flag_set("quiet"))
    std::cerr << "sae gen: wrote " << out << ": " << counts.rows << " rows x " << counts.cols
              << " columns, " << counts.nnz() << " non-zeros\n";
  return 0;
}

}  // namespace sparseae::cli
