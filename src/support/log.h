// KILN_LOGS=topic,topic (or "all"): diagnostic logging to stderr, one line per event,
// prefixed "[kiln:topic]". Topics: graph (each traced graph), guards (guard misses),
// passes (the graph after each pass), lowering (the loop program, loop/kernel.h's
// print_program), pipeline (stage timings), output_code (generated
// kernel source), cache (misses, bad entries), workers (starts, exits, failures), autotune
// (candidates and winners), cuda (library loading, and each time the host waits for the GPU,
// naming why), stages (each background stage landing, its trial and whether it took over).
#pragma once

#include <string_view>

namespace kiln {

constexpr std::string_view kLogTopics[] = {"graph",    "guards",      "passes", "lowering",
                                           "pipeline", "output_code", "cache",  "workers",
                                           "autotune", "cuda",        "stages", "all"};

// Throws Error naming KILN_LOGS and the accepted topics when it names an unknown one.
void check_log_topics();

bool log_enabled(std::string_view topic);
void log_line(std::string_view topic, std::string_view message);
// "kiln: warning: MESSAGE" on stderr whatever KILN_LOGS says: something kiln worked around
// (a cache entry it could not write); each distinct `what` once per process.
void warn_once(std::string_view what, std::string_view message);

}  // namespace kiln
