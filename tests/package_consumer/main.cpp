// Multiplies two small matrices on the cpu backend of the installed library and checks the
// answer, writes a generated dataset and reads it back, then trains a model on it in one call
// (fit) and checks that the model decodes as its validation measured: proof that headers,
// libsparseae.a and its link dependencies (OpenBLAS, OpenMP, zlib) all arrive together, and that
// the umbrella header carries the training API.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <sparseae/sparseae.hpp>

int main() {
  auto backend = sparseae::make_backend(sparseae::BackendChoice::cpu);
  sparseae::Buffer<float> a(*backend, std::vector<float>{1, 2, 3, 4});
  sparseae::Buffer<float> b(*backend, std::vector<float>{5, 6, 7, 8});
  sparseae::Buffer<float> c(*backend, 4);
  backend->gemm(sparseae::Transpose::no, sparseae::Transpose::no, 1.0f, a.matrix(2, 2),
                b.matrix(2, 2), 0.0f, c.matrix(2, 2));
  const std::vector<float> expected{19, 22, 43, 50};
  if (c.download() != expected) {
    std::fprintf(stderr, "consumer: wrong product\n");
    return 1;
  }

  sparseae::TopicDataConfig config;
  config.rows = 50;
  const sparseae::HostCsr data = sparseae::generate_topic_counts(config);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparseae-consumer-" + std::to_string(::getpid()) + ".mtx"))
                               .string();
  sparseae::write_matrix_market(path, data, true);
  const bool same = sparseae::read_matrix(path).csr.values == data.values;
  std::filesystem::remove(path);
  if (!same) {
    std::fprintf(stderr, "consumer: dataset changed on its way through %s\n", path.c_str());
    return 1;
  }

  sparseae::FitOptions options;
  options.model.hidden = {16};
  options.model.latent = 4;
  options.train.loss = sparseae::LossKind::poisson;
  options.train.epochs = 2;
  options.train.batch_size = 16;
  const sparseae::FitResult result = sparseae::fit(*backend, data, options);
  sparseae::TrainedModel model = result.model(*backend);
  const sparseae::HostCsr validation = sparseae::select_rows(
      data, sparseae::split_rows(data.rows, options.train.val_fraction, options.train.seed).second);
  if (!result.run.decode || model.evaluate(validation).to_json() != result.validation.to_json()) {
    std::fprintf(stderr, "consumer: the fitted model decodes otherwise than it measured\n");
    return 1;
  }
  std::printf(
      "consumer: sparseae %s linked, gemm correct, dataset read back, fitted (exact-entry F1 "
      "%.3f on %lld validation rows)\n",
      sparseae::version(), result.validation.exact_f1,
      static_cast<long long>(result.validation.rows));
  return 0;
}
