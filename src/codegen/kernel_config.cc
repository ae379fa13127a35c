#include "codegen/kernel_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "kiln/error.h"
#include "support/text.h"

namespace kiln {

namespace {

bool valid_field_name(std::string_view name) {
  return !name.empty() && name.size() <= 16 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || c == '_';
  });
}

int64_t parse_value(std::string_view text, const std::string& source) {
  int64_t v = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (error != std::errc() || end != text.data() + text.size() || v < 0 || v > (int64_t{1} << 30))
    throw FormatError(
        fmt::format("{}: '{}' is not a config value (an integer from 0 to 2^30)", source, text));
  return v;
}

}  // namespace

std::string config_text(const KernelConfig& config) {
  std::string text;
  for (const auto& [name, value] : config)
    text += fmt::format("{}{}={}", text.empty() ? "" : ",", name, value);
  return text;
}

KernelConfig parse_config(std::string_view text, const std::string& source) {
  KernelConfig config;
  for (std::string_view item : split_text(text, ',')) {
    size_t eq = item.find('=');
    std::string_view name = item.substr(0, eq);
    if (eq == std::string_view::npos || !valid_field_name(name))
      throw FormatError(fmt::format("{}: '{}' is not NAME=VALUE (NAME in capitals)", source, item));
    if (!config.emplace(std::string(name), parse_value(item.substr(eq + 1), source)).second)
      throw FormatError(fmt::format("{}: field {} given twice", source, name));
  }
  return config;
}

const TuneField* TuneSpace::field(const std::string& name) const {
  for (const TuneField& f : fields)
    if (f.name == name) return &f;
  return nullptr;
}

KernelConfig TuneSpace::complete(const KernelConfig& config) const {
  KernelConfig full = defaults;
  for (const auto& [name, value] : config) full[name] = value;
  return full;
}

bool TuneSpace::admits(const KernelConfig& config) const {
  for (const auto& [name, value] : config) {
    const TuneField* f = field(name);
    if (!f) return false;
    auto d = defaults.find(name);
    bool listed = std::find(f->values.begin(), f->values.end(), value) != f->values.end();
    if (!listed && (d == defaults.end() || d->second != value)) return false;
  }
  return true;
}

std::vector<KernelConfig> TuneSpace::neighbours(const KernelConfig& config) const {
  KernelConfig from = complete(config);
  std::vector<KernelConfig> out;
  auto add = [&](const std::string& name, int64_t value) {
    KernelConfig next = from;
    next[name] = value;
    if (next != from && std::find(out.begin(), out.end(), next) == out.end()) out.push_back(next);
  };
  for (const TuneField& f : fields) {
    auto at = std::find(f.values.begin(), f.values.end(), from[f.name]);
    if (at == f.values.end()) {
      for (int64_t v : f.values) add(f.name, v);
      continue;
    }
    if (at != f.values.begin()) add(f.name, *(at - 1));
    if (at + 1 != f.values.end()) add(f.name, *(at + 1));
  }
  return out;
}

std::string space_text(const TuneSpace& space) {
  std::string fields;
  for (const TuneField& f : space.fields)
    fields += fmt::format("{}{}={}", fields.empty() ? "" : ";", f.name, fmt::join(f.values, "|"));
  std::string tries;
  for (const KernelConfig& c : space.candidates)
    tries += (tries.empty() ? "" : ";") + config_text(c);
  if (space.fields.empty()) return "";
  return fmt::format("{} default {} try {}", fields, config_text(space.defaults), tries);
}

TuneSpace parse_space(std::string_view text, const std::string& source) {
  TuneSpace space;
  if (text.empty()) return space;
  std::vector<std::string_view> words = split_text(text, ' ');
  if (words.size() != 5 || words[1] != "default" || words[3] != "try")
    throw FormatError(fmt::format(
        "{}: '{}' is not a tuning space (FIELDS default CONFIG try CONFIGS)", source, text));
  for (std::string_view item : split_text(words[0], ';')) {
    size_t eq = item.find('=');
    std::string_view name = item.substr(0, eq);
    if (eq == std::string_view::npos || !valid_field_name(name) || space.field(std::string(name)))
      throw FormatError(fmt::format("{}: bad tuning field '{}'", source, item));
    TuneField f{std::string(name), {}};
    for (std::string_view v : split_text(item.substr(eq + 1), '|'))
      f.values.push_back(parse_value(v, source));
    if (f.values.empty())
      throw FormatError(fmt::format("{}: tuning field {} has no values", source, name));
    space.fields.push_back(std::move(f));
  }
  space.defaults = parse_config(words[2], source);
  for (const TuneField& f : space.fields)
    if (!space.defaults.count(f.name))
      throw FormatError(fmt::format("{}: no default for field {}", source, f.name));
  if (space.defaults.size() != space.fields.size() || !space.admits(space.defaults))
    throw FormatError(
        fmt::format("{}: default config {} does not match the fields", source, words[2]));
  for (std::string_view c : split_text(words[4], ';')) {
    KernelConfig candidate = parse_config(c, source);
    if (!space.admits(candidate))
      throw FormatError(fmt::format("{}: candidate {} is outside the tuning space", source, c));
    space.candidates.push_back(std::move(candidate));
  }
  return space;
}

}  // namespace kiln
