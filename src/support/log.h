// KILN_LOGS=topic,topic (or "all"): diagnostic logging to stderr, one line per event,
// prefixed "[kiln:topic]". Topics: graph (each traced graph), guards (guard misses), passes (the graph after
// each pass), pipeline (stage timings), output_code (generated kernel source).
#pragma once

#include <string_view>

namespace kiln {

bool log_enabled(std::string_view topic);
void log_line(std::string_view topic, std::string_view message);

}  // namespace kiln
