// sae: the command-line face of libsparseae.
#include <iostream>
#include <string>
#include <vector>

#include "sparseae/sparseae.hpp"

namespace {

const char* const kUsage =
    "usage: sae <command> [options]\n"
    "\n"
    "commands:\n"
    "  info [--backend auto|cpu|cuda]   build, backends and devices\n"
    "\n"
    "sae <command> --help describes a command.\n";

const char* const kInfoUsage =
    "usage: sae info [--backend auto|cpu|cuda]\n"
    "Prints what this build contains and which backend a run would use. --backend (default auto)\n"
    "names the backend to open; asking for cuda where no device answers is an error.\n";

int run_info(const std::vector<std::string>& args) {
  std::string backend_choice = "auto";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << kInfoUsage;
      return 0;
    }
    if (args[i] == "--backend" && i + 1 < args.size()) {
      backend_choice = args[++i];
    } else {
      throw sparseae::Error("sae info: unexpected argument '" + args[i] + "' (see sae info --help)");
    }
  }
  std::cout << sparseae::build_info() << "\n";
  std::string notice;
  const auto backend = sparseae::make_backend(sparseae::parse_backend_choice(backend_choice), &notice);
  if (!notice.empty()) std::cerr << "sae: " << notice << "\n";
  std::cout << "backend " << sparseae::backend_name(backend->kind()) << ": "
            << backend->description() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "info") return run_info(args);
    std::cerr << "sae: unknown command '" << command << "' (see sae --help)\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "sae: error: " << error.what() << "\n";
    return 1;
  }
}
