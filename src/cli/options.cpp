#include "cli/options.hpp"

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "sparseae/error.hpp"

namespace sparseae::cli {

Options::Options(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

Options& Options::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", "", help});
  return *this;
}

Options& Options::value(const std::string& name, const std::string& metavar,
                        const std::string& default_value, const std::string& help) {
  specs_.push_back({name, metavar, default_value, help});
  return *this;
}

const Options::Spec& Options::spec(const std::string& name) const {
  for (const Spec& s : specs_)
    if (s.name == name) return s;
  throw Error(command_ + ": unknown option '--" + name + "' (see " + command_ + " --help)");
}

void Options::fail(const std::string& name, const std::string& reason) const {
  throw Error(command_ + ": --" + name + ": " + reason);
}

bool Options::parse(const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << help();
      return false;
    }
    if (arg.rfind("--", 0) != 0)
      throw Error(command_ + ": unexpected argument '" + arg + "' (see " + command_ + " --help)");
    std::string name = arg.substr(2);
    std::string value;
    const std::size_t equals = name.find('=');
    const bool inline_value = equals != std::string::npos;
    if (inline_value) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    const Spec& s = spec(name);
    if (s.metavar.empty()) {
      if (inline_value) fail(name, "takes no value");
      value = "1";
    } else if (!inline_value) {
      if (i + 1 >= args.size()) fail(name, "needs a value (" + s.metavar + ")");
      value = args[++i];
    }
    values_[name] = value;
  }
  return true;
}

std::string Options::help() const {
  std::ostringstream out;
  out << "usage: " << command_ << " [options]\n" << summary_ << "\n\noptions:\n";
  for (const Spec& s : specs_) {
    std::string left = "  --" + s.name + (s.metavar.empty() ? "" : " " + s.metavar);
    if (left.size() < 28) left.resize(28, ' ');
    out << left << " " << s.help;
    if (!s.default_value.empty()) out << " (default " << s.default_value << ")";
    out << "\n";
  }
  return out.str();
}

bool Options::given(const std::string& name) const {
  spec(name);
  return values_.count(name) > 0;
}

std::vector<std::string> Options::given_names() const {
  std::vector<std::string> names;
  for (const Spec& s : specs_)
    if (values_.count(s.name) > 0) names.push_back(s.name);
  return names;
}

bool Options::flag_set(const std::string& name) const { return given(name); }

std::string Options::text(const std::string& name) const {
  const auto found = values_.find(name);
  return found != values_.end() ? found->second : spec(name).default_value;
}

std::string Options::required(const std::string& name) const {
  const std::string value = text(name);
  if (value.empty()) fail(name, "is required");
  return value;
}

std::int64_t Options::integer(const std::string& name) const {
  const std::string value = text(name);
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno == ERANGE)
    fail(name, "'" + value + "' is not an integer");
  return parsed;
}

double Options::real(const std::string& name) const {
  const std::string value = text(name);
  char* end = nullptr;
  const double parsed = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || parsed != parsed) fail(name, "'" + value + "' is not a number");
  return parsed;
}

std::vector<std::int64_t> Options::integer_list(const std::string& name) const {
  std::vector<std::int64_t> list;
  const std::string value = text(name);
  std::size_t start = 0;
  while (start < value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    const std::string item = value.substr(start, comma - start);
    char* end = nullptr;
    const long long parsed = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || parsed <= 0)
      fail(name, "'" + value + "' is not a comma-separated list of positive integers");
    list.push_back(parsed);
    start = comma + 1;
  }
  return list;
}

}  // namespace sparseae::cli
