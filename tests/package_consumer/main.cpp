// Multiplies two small matrices on the cpu backend of the installed library and checks the
// answer, then writes a generated dataset and reads it back: proof that headers, libsparseae.a
// and its link dependencies (OpenBLAS, OpenMP, zlib) all arrive together.
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
  std::printf("consumer: sparseae %s linked, gemm correct, dataset read back\n",
              sparseae::version());
  return 0;
}
