#include "support/log.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <mutex>
#include <set>
#include <string>

#include "kiln/error.h"
#include "support/env.h"

namespace kiln {

// KILN_LOGS is read on every call (it is consulted per compile stage, never per kernel
// launch), so a program or test that sets it later is heard.
bool log_enabled(std::string_view topic) {
  std::string topics = fmt::format(",{},", env_value("KILN_LOGS").value_or(""));
  return topics.find(",all,") != std::string::npos ||
         topics.find(fmt::format(",{},", topic)) != std::string::npos;
}

void check_log_topics() {
  std::optional<std::string> value = env_value("KILN_LOGS");
  if (!value) return;
  std::string_view rest = *value;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view topic = rest.substr(0, comma);
    bool known = topic.empty();  // "a,,b" and a trailing comma are harmless
    for (std::string_view t : kLogTopics) known |= topic == t;
    if (!known)
      throw Error(fmt::format(
          "KILN_LOGS: unknown topic '{}' in '{}' (accepted: a comma-separated list of {})", topic,
          *value, fmt::join(kLogTopics, ", ")));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
}

void log_line(std::string_view topic, std::string_view message) {
  std::string line = fmt::format("[kiln:{}] {}\n", topic, message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void warn_once(std::string_view what, std::string_view message) {
  static std::mutex mutex;
  static auto* warned = new std::set<std::string, std::less<>>();  // immortal: exit-safe
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!warned->emplace(what).second) return;
  }
  std::string line = fmt::format("kiln: warning: {}\n", message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace kiln
