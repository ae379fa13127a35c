#include "autotune/lookup_table.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cache/cache.h"
#include "kiln/error.h"
#include "support/env.h"
#include "support/files.h"
#include "support/limits.h"

namespace kiln {

namespace {

constexpr const char* kVariable = "KILN_AUTOTUNE_LOOKUP_TABLE";

bool is_hash(const std::string& s) {
  return s.size() == 32 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

LookupTable LookupTable::parse(std::string_view text, const std::string& source) {
  LookupTable table;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("{}: not JSON: {}", source, e.what()));
  }
  if (!j.is_object())
    throw FormatError(fmt::format("{}: the lookup table must be a JSON object", source));
  for (const auto& [hash, value] : j.items()) {
    if (!is_hash(hash))
      throw FormatError(
          fmt::format("{}: '{}' is not a kernel tuning hash (32 hex digits)", source, hash));
    const nlohmann::json* config = &value;
    if (value.is_object()) {
      if (!value.contains("config"))
        throw FormatError(fmt::format("{}: entry {} has no \"config\"", source, hash));
      config = &value.at("config");
    }
    if (!config->is_string())
      throw FormatError(fmt::format("{}: entry {}'s config is not a string", source, hash));
    table.entries_[hash] =
        parse_config(config->get<std::string>(), fmt::format("{} (entry {})", source, hash));
  }
  table.digest_ = content_key(text);
  return table;
}

std::shared_ptr<const LookupTable> LookupTable::from_environment() {
  std::optional<std::string> path = env_value(kVariable);
  if (!path) return nullptr;
  std::string text;
  try {
    text = read_regular_file(*path, limits::kMaxTextFileBytes);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", kVariable, e.what()));
  }
  return std::make_shared<const LookupTable>(parse(text, fmt::format("{}={}", kVariable, *path)));
}

const KernelConfig* LookupTable::find(const std::string& hash) const {
  auto it = entries_.find(hash);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace kiln
