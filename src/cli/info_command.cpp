// sae info: what this build contains and which backend a run would use.
#include <iostream>

#include "cli/commands.hpp"
#include "cli/data_source.hpp"
#include "cli/options.hpp"
#include "sparseae/backend.hpp"

namespace sparseae::cli {

int run_info(const Args& args) {
  Options o("sae info",
            "Prints what this build contains and which backend a run would use; asking for cuda\n"
            "where no device answers is an error.");
  o.value("backend", "auto|cpu|cuda", "auto", "the backend to open");
  if (!o.parse(args)) return 0;
  std::cout << build_info() << "\n";
  const auto backend = open_backend(o.text("backend"));
  std::cout << "backend " << backend_name(backend->kind()) << ": " << backend->description()
            << "\n";
  return 0;
}

}  // namespace sparseae::cli
