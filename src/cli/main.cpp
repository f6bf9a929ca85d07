// sae: the command-line face of libsparseae.
#include <cstring>
#include <iostream>
#include <new>

#include "cli/commands.hpp"

namespace {

const char* const kUsage =
    "usage: sae <command> [options]\n"
    "\n"
    "commands:\n"
    "  train       train an autoencoder (default: the embedded dataset) and report metrics\n"
    "  encode      write the latent codes of a count matrix\n"
    "  decode      reconstruct counts from codes, or from counts\n"
    "  eval        how exactly a trained model reproduces counts\n"
    "  compare     train several losses on the same data and split, one table of metrics\n"
    "  pca         fit the PCA baseline and report it as eval does; writes a model file\n"
    "  compress    store counts losslessly: latent codes + entropy-coded residual\n"
    "  decompress  rebuild the exact counts from sae compress's file\n"
    "  gen         write the embedded dataset as .mtx, .npy or .csv\n"
    "  info        build, backends and devices\n"
    "\n"
    "sae <command> --help describes a command's options.\n";

struct Command {
  const char* name;
  int (*run)(const sparseae::cli::Args&);
};

constexpr Command kCommands[] = {
    {"train", sparseae::cli::run_train},   {"encode", sparseae::cli::run_encode},
    {"decode", sparseae::cli::run_decode}, {"eval", sparseae::cli::run_eval},
    {"compare", sparseae::cli::run_compare},
    {"pca", sparseae::cli::run_pca},
    {"compress", sparseae::cli::run_compress},
    {"decompress", sparseae::cli::run_decompress},
    {"gen", sparseae::cli::run_gen},       {"info", sparseae::cli::run_info}};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const sparseae::cli::Args args(argv + 2, argv + argc);
  for (const Command& command : kCommands) {
    if (std::strcmp(argv[1], command.name) != 0) continue;
    try {
      return command.run(args);
    } catch (const std::bad_alloc&) {
      // The readers refuse declared sizes beyond memory before allocating; what remains is a
      // model, or data as large as it says, that does not fit.
      std::cerr << "sae: error: out of memory: the data or the model does not fit in this "
                   "machine's memory\n";
      return 1;
    } catch (const std::exception& error) {
      std::cerr << "sae: error: " << error.what() << "\n";
      return 1;
    }
  }
  std::cerr << "sae: unknown command '" << argv[1] << "' (see sae --help)\n";
  return 2;
}
