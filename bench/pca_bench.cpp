// Times the PCA fit (pca.hpp) on the embedded dataset's generator, CSR and dense input, on one
// backend, and prints one JSON line per input: the median and every repeat's seconds. With
// --write-dense PATH it also writes the same rows as a dense float32 .npy, so that
// bench/pca_peers.py times scikit-learn and PyTorch on exactly these numbers.
//
//   sae_pca_bench --rows 100000 --k 32 --repeats 3 --backend cpu [--solver auto]
//                 [--write-dense rows.npy]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/io.hpp"
#include "sparseae/pca.hpp"

namespace {

using sparseae::Json;

struct Arguments {
  std::int64_t rows = 100000;
  std::int64_t k = 32;
  int repeats = 3;
  std::string backend = "cpu";
  std::string solver = "auto";
  std::string write_dense;
};

Arguments parse(int argc, char** argv) {
  Arguments a;
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (i + 1 >= argc) throw sparseae::Error("sae_pca_bench: " + name + " needs a value");
    const std::string value = argv[++i];
    if (name == "--rows")
      a.rows = std::stoll(value);
    else if (name == "--k")
      a.k = std::stoll(value);
    else if (name == "--repeats")
      a.repeats = std::stoi(value);
    else if (name == "--backend")
      a.backend = value;
    else if (name == "--solver")
      a.solver = value;
    else if (name == "--write-dense")
      a.write_dense = value;
    else
      throw sparseae::Error("sae_pca_bench: unknown option " + name);
  }
  sparseae::require(a.repeats >= 1, "sae_pca_bench: --repeats must be positive");
  return a;
}

template <typename Matrix>
void time_fits(sparseae::Backend& backend, const Matrix& data, const char* input,
               const Arguments& a, const sparseae::PcaConfig& config, std::int64_t nnz) {
  std::vector<double> seconds;
  sparseae::PcaModel model;
  for (int r = 0; r < a.repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    model = sparseae::fit_pca(backend, data, config);
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const std::vector<double> ratios = model.explained_variance_ratio();
  std::vector<Json> repeats;
  for (const double repeat_seconds : seconds)
    repeats.push_back(Json::number_fixed(repeat_seconds, 6));
  Json line = Json::object();
  line.set("tool", Json::string("sparseae"))
      .set("backend", Json::string(sparseae::backend_name(backend.kind())))
      .set("input", Json::string(input))
      .set("solver", Json::string(sparseae::pca_solver_name(model.solver)))
      .set("rows", Json::integer(data.rows))
      .set("cols", Json::integer(data.cols))
      .set("nnz", Json::integer(nnz))
      .set("k", Json::integer(a.k))
      .set("median_seconds", Json::number_significant(sorted[sorted.size() / 2], 6))
      .set("seconds", Json::array(std::move(repeats)))
      .set("explained_variance_ratio",
           Json::number_significant(std::accumulate(ratios.begin(), ratios.end(), 0.0), 9));
  std::printf("%s\n", line.dump().c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Arguments a = parse(argc, argv);
    sparseae::TopicDataConfig data_config;
    data_config.rows = a.rows;
    const sparseae::HostCsr data = sparseae::generate_topic_counts(data_config);
    const sparseae::HostDense dense = sparseae::to_dense(data);
    if (!a.write_dense.empty()) sparseae::write_npy(a.write_dense, dense);
    const auto backend = sparseae::make_backend(sparseae::parse_backend_choice(a.backend));
    sparseae::PcaConfig config;
    config.components = a.k;
    config.solver = sparseae::parse_pca_solver(a.solver);
    time_fits(*backend, data, "csr", a, config, data.nnz());
    time_fits(*backend, dense, "dense", a, config, data.nnz());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae_pca_bench: %s\n", error.what());
    return 1;
  }
  return 0;
}
