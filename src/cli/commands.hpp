#pragma once
// The sae subcommands. Each takes the arguments after its name and returns the exit status;
// errors are thrown as sparseae::Error and printed by main.
#include <string>
#include <vector>

namespace sparseae::cli {

using Args = std::vector<std::string>;

int run_info(const Args& args);
int run_version(const Args& args);
int run_gen(const Args& args);
int run_train(const Args& args);
int run_encode(const Args& args);
int run_decode(const Args& args);
int run_eval(const Args& args);
int run_compare(const Args& args);
int run_pca(const Args& args);
int run_compress(const Args& args);
int run_decompress(const Args& args);

}  // namespace sparseae::cli
