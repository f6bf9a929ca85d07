// sae info: what this build contains and which backend a run would use; with --model, how a
// checkpoint's model is built and decodes. sae version (and sae --version): the build alone.
#include <iostream>

#include "cli/commands.hpp"
#include "cli/data_source.hpp"
#include "cli/options.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/metrics.hpp"

namespace sparseae::cli {

namespace {

// The model in the checkpoint at path: its layers, its loss and the decode eval and decode use
// without --decode.
void print_model(const std::string& path) {
  const RunConfig config = load_checkpoint(path).config;
  const LossKind loss = config.train.loss;
  std::cout << "model " << path << ": " << ModelLayout(config.model).describe() << "\n"
            << "loss " << loss_name(loss) << ", decode "
            << (config.decode ? std::string(decode_mode_name(*config.decode)) + " (stored)"
                              : std::string(decode_mode_name(default_decode(loss))) +
                                    " (the loss's default; the checkpoint stores none)")
            << "\n";
  if (has_support_head(loss))
    std::cout << "hurdle support threshold " << config.hurdle_threshold << "\n";
}

}  // namespace

int run_info(const Args& args) {
  Options o("sae info",
            "Prints what this build contains and which backend a run would use; asking for cuda\n"
            "where no device answers is an error. With --model, also the checkpoint's model.");
  o.value("backend", "auto|cpu|cuda", "auto", "the backend to open")
      .value("model", "PATH", "",
             "a checkpoint: print its layers, loss and the decode eval and decode use")
      .suggests("checkpoint", "model");
  add_quiet_option(o);
  if (!o.parse(args)) return 0;
  std::cout << build_info() << "\n";
  const auto backend = open_backend(o);
  std::cout << "backend " << backend_name(backend->kind()) << ": " << backend->description()
            << "\n";
  if (o.given("model")) print_model(o.text("model"));
  return 0;
}

int run_version(const Args& args) {
  Options o("sae version",
            "Prints the version of sparseae and what this build contains: its BLAS, and its CUDA\n"
            "backend when built with one. sae --version prints the same.");
  if (!o.parse(args)) return 0;
  std::cout << build_info() << "\n";
  return 0;
}

}  // namespace sparseae::cli
