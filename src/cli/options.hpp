#pragma once
// Command-line options of one sae subcommand: declared once with their help, parsed by CLI11 from
// "--name value", "--name=value", "--flag" or, for --out, "-o value", and read back typed. Every
// mistake becomes one Error line that names the command and the option.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sparseae/error.hpp"

namespace sparseae::cli {

// A command line that cannot be read: an unknown command or option, an option without its value
// or with a value of the wrong type, a required option missing. sae exits 2 on it, 1 on every
// other Error, so that scripts can tell a mistyped call from a run that failed.
class UsageError : public Error {
 public:
  using Error::Error;
};

// ": did you mean '--epochs'?" for given "epoch", names ["epochs", ...] and lead "--": the names
// that given begins, else those within a typing slip or two of it, each after lead; "" when none
// is close.
std::string did_you_mean(const std::string& given, const std::vector<std::string>& names,
                         const std::string& lead);

class Options {
 public:
  static constexpr std::size_t kHelpWidth = 100;

  Options(std::string command, std::string summary);

  // "sae train", "sae eval", ...: what messages about these options begin with.
  const std::string& command() const { return command_; }

  // A boolean switch.
  Options& flag(const std::string& name, const std::string& help);
  // An option with a value; default_value "" means none.
  Options& value(const std::string& name, const std::string& metavar,
                 const std::string& default_value, const std::string& help);
  // The former name of option current: still read as it, for a release, with one line on stderr
  // that says what it is now.
  Options& renamed(const std::string& former, const std::string& current);
  // The option to suggest when unknown is given: a name no typing slip leads to, as --checkpoint
  // for a command that reads the model with --model.
  Options& suggests(const std::string& unknown, const std::string& meant);

  // Returns false when --help was asked for, after printing help() to stdout. Throws UsageError.
  bool parse(const std::vector<std::string>& args);
  // Every line at most kHelpWidth columns: a description too long for its line wraps, and one
  // beside a name too long for the column starts on the next line.
  std::string help() const;

  bool given(const std::string& name) const;
  // The names of the options given on the command line, in the order they were declared.
  std::vector<std::string> given_names() const;
  bool flag_set(const std::string& name) const;
  std::string text(const std::string& name) const;
  std::int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;
  // A comma-separated list of positive integers ("256,128"); "" gives an empty list.
  std::vector<std::int64_t> integer_list(const std::string& name) const;
  // Throws UsageError unless the option has a value (given or default).
  std::string required(const std::string& name) const;

 private:
  struct Spec {
    std::string name;
    std::string metavar;  // empty for a flag
    std::string default_value;
    std::string help;
  };
  const Spec& spec(const std::string& name) const;
  // "unknown option '-x'" for the option spelled so on the command line (name without its
  // dashes), with the options it may have meant.
  UsageError unknown_option(const std::string& spelled, const std::string& name) const;
  [[noreturn]] void fail(const std::string& name, const std::string& reason) const;

  std::string command_;
  std::string summary_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> renamed_;      // former name -> current name
  std::map<std::string, std::string> suggestions_;  // unknown name -> the option meant
  std::map<std::string, std::string> values_;
};

}  // namespace sparseae::cli
