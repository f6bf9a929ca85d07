#include "cli/text_format.hpp"

#include <cstdio>

namespace sparseae::cli {

std::string shell_quoted(const std::string& text, bool always) {
  bool plain = !text.empty();
  for (const char c : text)
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      std::string("-_./=:,+").find(c) != std::string::npos);
  if (plain && !always) return text;
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string command_line(const std::string& command, const std::vector<std::string>& args) {
  std::string line = command;
  for (const std::string& arg : args) line += " " + shell_quoted(arg, false);
  return line;
}

std::string per_row(double bytes, std::int64_t rows) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", rows > 0 ? bytes / static_cast<double>(rows) : 0.0);
  return text;
}

std::string size_breakdown(const LosslessSizes& sizes) {
  const auto part = [&](std::int64_t bytes) {
    return per_row(static_cast<double>(bytes), sizes.rows);
  };
  std::string text;
  if (sizes.order0_blocks < sizes.blocks)
    text = "codes " + part(sizes.latent_bytes) + ", residual " + part(sizes.residual_bytes) + ", ";
  if (sizes.order0_blocks > 0)
    text += "order-0 " + part(sizes.order0_bytes) + " in " + std::to_string(sizes.order0_blocks) +
            " of " + std::to_string(sizes.blocks) + " blocks, ";
  return text + "tables " + part(sizes.table_bytes) + ", framing " + part(sizes.framing_bytes);
}

}  // namespace sparseae::cli
