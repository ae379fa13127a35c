// KILN_LOGS=topic,topic (or "all"): diagnostic logging to stderr, one line per event,
// prefixed "[kiln:topic]". Topics so far: graph (each traced graph), guards (guard misses).
#pragma once

#include <string_view>

namespace kiln {

bool log_enabled(std::string_view topic);
void log_line(std::string_view topic, std::string_view message);

}  // namespace kiln
