#include "cli/options.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

namespace sparseae::cli {

namespace {

// Where an option's description starts in help(): after "  --name METAVAR" padded to it.
constexpr std::size_t kDescriptionColumn = 29;

// The one-letter spelling of an option, "" for none: -o for --out, the output of every command
// that writes one, as the usual compressors and converters take it.
std::string short_spelling(const std::string& name) { return name == "out" ? "-o" : ""; }

// The edits (insertions, deletions, substitutions, swaps of neighbours) between a and b.
std::size_t typing_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// text's words, wrapped into lines of at most width characters (a longer word keeps its line).
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::istringstream words(text);
  std::string line;
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace

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

Options& Options::renamed(const std::string& former, const std::string& current) {
  renamed_[former] = current;
  return *this;
}

Options& Options::suggests(const std::string& unknown, const std::string& meant) {
  suggestions_[unknown] = meant;
  return *this;
}

const Options::Spec& Options::spec(const std::string& name) const {
  for (const Spec& s : specs_)
    if (s.name == name) return s;
  throw unknown_option("--" + name, name);
}

UsageError Options::unknown_option(const std::string& spelled, const std::string& name) const {
  std::vector<std::string> names;
  for (const Spec& s : specs_) names.push_back(s.name);
  const auto meant = suggestions_.find(name);
  return UsageError(command_ + ": unknown option '" + spelled + "'" +
                    (meant != suggestions_.end()
                         ? did_you_mean(meant->second, {meant->second}, "--")
                         : did_you_mean(name, names, "--")) +
                    " (see " + command_ + " --help)");
}

std::string did_you_mean(const std::string& given, const std::vector<std::string>& names,
                         const std::string& lead) {
  // A prefix names what was meant more surely than a slip: --epoch is --epochs cut short.
  std::vector<std::string> close;
  if (!given.empty())
    for (const std::string& name : names)
      if (name.rfind(given, 0) == 0) close.push_back(name);
  if (close.empty()) {
    // One slip in a short name, two in a longer one; beyond that a suggestion is a guess.
    std::size_t best = given.size() < 5 ? 1 : 2;
    for (const std::string& name : names) {
      const std::size_t distance = typing_distance(given, name);
      if (distance < best) close.clear();
      if (distance <= best) {
        best = distance;
        close.push_back(name);
      }
    }
  }
  if (close.empty()) return "";
  std::string text = ": did you mean ";
  for (std::size_t i = 0; i < close.size(); ++i)
    text += (i == 0 ? "" : i + 1 == close.size() ? " or " : ", ") + ("'" + lead + close[i] + "'");
  return text + "?";
}

void Options::fail(const std::string& name, const std::string& reason) const {
  throw UsageError(command_ + ": --" + name + ": " + reason);
}

bool Options::parse(const std::vector<std::string>& args) {
  // CLI11 reads the words (--name value, --name=value, -o value, flags, -h/--help); the specs,
  // the help text and every message stay this class's, so that each command reads as before.
  CLI::App app{summary_, command_};
  app.set_help_flag("-h,--help");
  app.allow_extras();
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::vector<CLI::Option*> declared;
  for (const Spec& s : specs_) {
    const std::string letter = short_spelling(s.name);
    const std::string spelling = (letter.empty() ? "" : letter + ",") + "--" + s.name;
    declared.push_back(s.metavar.empty() ? app.add_flag(spelling, s.help)
                                         : app.add_option(spelling, s.help)->type_name(s.metavar));
  }
  std::vector<std::pair<CLI::Option*, std::string>> former_names;
  for (const auto& [former, current] : renamed_) {
    const bool is_flag = spec(current).metavar.empty();
    former_names.emplace_back(is_flag ? app.add_flag("--" + former) : app.add_option("--" + former),
                              current);
  }

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 reads from the back
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << help();
    return false;
  } catch (const CLI::ArgumentMismatch& error) {
    // "--epochs: 1 required N missing": the option came last, or as "--name=" with nothing.
    const std::string what = error.what();
    const std::string name = what.substr(0, what.find(':'));
    for (const Spec& s : specs_)
      if (name == "--" + s.name) fail(s.name, "needs a value (" + s.metavar + ")");
    for (const auto& [former, current] : renamed_)
      if (name == "--" + former) fail(former, "needs a value (" + spec(current).metavar + ")");
    throw UsageError(command_ + ": " + what);
  } catch (const CLI::ParseError& error) {
    throw UsageError(command_ + ": " + error.what());
  }
  // The first word CLI11 left: an option no spec names, or an argument that is no option's value.
  if (!app.remaining().empty()) {
    const std::string leftover = app.remaining().front();
    const std::size_t name_start = leftover.find_first_not_of('-');
    if (name_start == 0 || name_start == std::string::npos)
      throw UsageError(command_ + ": unexpected argument '" + leftover + "' (see " + command_ +
                       " --help)");
    const std::string spelled = leftover.substr(0, leftover.find('='));
    throw unknown_option(spelled, spelled.substr(name_start));
  }

  // A flag's value is "1" (CLI11 records "true" for the flag alone), an option's the last given.
  const auto value_of = [this](const CLI::Option& option, const std::string& given_as,
                               const Spec& s) {
    const std::string given = option.results().back();
    if (s.metavar.empty() && given != "true") fail(given_as, "takes no value");
    return s.metavar.empty() ? std::string("1") : given;
  };
  for (std::size_t i = 0; i < specs_.size(); ++i)
    if (declared[i]->count() > 0) values_[specs_[i].name] = value_of(*declared[i], specs_[i].name, specs_[i]);
  for (const auto& [option, current] : former_names) {
    if (option->count() == 0) continue;
    const std::string former = option->get_name().substr(2);
    std::cerr << command_ << ": --" << former << " is now --" << current
              << "; the old name works until the next release\n";
    const std::string value = value_of(*option, former, spec(current));
    if (values_.count(current) == 0) values_[current] = value;
  }
  return true;
}

std::string Options::help() const {
  std::ostringstream out;
  out << "usage: " << command_ << " [options]\n" << summary_ << "\n\noptions:\n";
  const std::string indent(kDescriptionColumn, ' ');
  for (const Spec& s : specs_) {
    const std::string letter = short_spelling(s.name);
    std::string left = "  " + (letter.empty() ? "" : letter + ", ") + "--" + s.name +
                       (s.metavar.empty() ? "" : " " + s.metavar);
    std::string description = s.help;
    std::replace(description.begin(), description.end(), '\n', ' ');
    if (!s.default_value.empty()) description += " (default " + s.default_value + ")";
    const std::vector<std::string> lines = wrap(description, kHelpWidth - kDescriptionColumn);
    if (left.size() + 1 > kDescriptionColumn) {
      out << left << "\n";
      left = indent;
    } else {
      left.resize(kDescriptionColumn, ' ');
    }
    for (const std::string& line : lines) {
      out << left << line << "\n";
      left = indent;
    }
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
