// sae: the command-line face of libsparseae.
#include <cstring>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/options.hpp"

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
    "  gen         write the embedded dataset's generator's counts: .mtx .npz .h5ad .npy .csv\n"
    "  info        build, backends and devices\n"
    "  version     the version and the backends built in (also sae --version)\n"
    "\n"
    "sae <command> --help describes a command's options.\n"
    "\n"
    "exit status: 0 done; 1 failed (unreadable data, a value a command refuses, ...); 2 the\n"
    "command line could not be read (unknown command or option, a missing or malformed value,\n"
    "a required option missing); 128 + N stopped by signal N (sae train).\n";

struct Command {
  const char* name;
  int (*run)(const sparseae::cli::Args&);
};

constexpr Command kCommands[] = {
    {"train", sparseae::cli::run_train},       {"encode", sparseae::cli::run_encode},
    {"decode", sparseae::cli::run_decode},     {"eval", sparseae::cli::run_eval},
    {"compare", sparseae::cli::run_compare},   {"pca", sparseae::cli::run_pca},
    {"compress", sparseae::cli::run_compress}, {"decompress", sparseae::cli::run_decompress},
    {"gen", sparseae::cli::run_gen},           {"info", sparseae::cli::run_info},
    {"version", sparseae::cli::run_version}};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const sparseae::cli::Args args(argv + 2, argv + argc);
  const char* const name = std::strcmp(argv[1], "--version") == 0 ? "version" : argv[1];
  for (const Command& command : kCommands) {
    if (std::strcmp(name, command.name) != 0) continue;
    try {
      return command.run(args);
    } catch (const sparseae::cli::UsageError& error) {
      std::cerr << "sae: error: " << error.what() << "\n";
      return 2;
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
  std::vector<std::string> names;
  for (const Command& command : kCommands) names.push_back(command.name);
  std::cerr << "sae: error: unknown command '" << argv[1] << "'"
            << sparseae::cli::did_you_mean(argv[1], names, "") << " (see sae --help)\n";
  return 2;
}
