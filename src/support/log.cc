#include "support/log.h"

#include <fmt/format.h>

#include <cstdio>
#include <string>

#include "support/env.h"

namespace kiln {

// KILN_LOGS is read on every call (it is consulted per compile stage, never per kernel
// launch), so a program or test that sets it later is heard.
bool log_enabled(std::string_view topic) {
  std::string topics = fmt::format(",{},", env_value("KILN_LOGS").value_or(""));
  return topics.find(",all,") != std::string::npos ||
         topics.find(fmt::format(",{},", topic)) != std::string::npos;
}

void log_line(std::string_view topic, std::string_view message) {
  std::string line = fmt::format("[kiln:{}] {}\n", topic, message);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace kiln
