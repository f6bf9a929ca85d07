#pragma once
// Text that more than one command prints or reports: a command line a shell takes back, and a
// lossless file's sizes per row.
#include <cstdint>
#include <string>
#include <vector>

#include "sparseae/lossless.hpp"

namespace sparseae::cli {

// text in single quotes, for bash, when it holds anything but letters, digits and -_./=:,+
// (always quoted when always is true: what a command built for bash -c needs).
std::string shell_quoted(const std::string& text, bool always = true);

// "sae train --data 'my file.mtx' ...": the command and its arguments as a shell takes them back.
std::string command_line(const std::string& command, const std::vector<std::string>& args);

// bytes / rows with two decimals ("0.00" without rows).
std::string per_row(double bytes, std::int64_t rows);

// Where a file's bytes go, per row: "codes 3.10, residual 5.02, tables 0.40, framing 0.11".
std::string size_breakdown(const LosslessSizes& sizes);

}  // namespace sparseae::cli
