// Multiplies two small matrices on the cpu backend of the installed library and checks the
// answer: proof that headers, libsparseae.a and its link dependencies all arrive together.
#include <cstdio>
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
  std::printf("consumer: sparseae %s linked, gemm correct\n", sparseae::version());
  return 0;
}
