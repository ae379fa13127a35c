// The structured trace (KILN_TRACE=DIR, docs/design.md §7): one JSON-lines file per process,
// DIR/kiln_trace_<pid>.jsonl, each line {"artifact": NAME, "ts_us": ..., "pid": ..., ...}.
// Artifacts: graph (as traced), fused_graph (optimized, with its kernels and steps),
// kernel_source (each translation unit, with its file and hash), compile_timings (each
// pipeline stage), graph_runnable (the repro file of a compiled graph), worker_start and
// worker_exit (the pool's processes). Lines are written whole (one append each), so
// threads and processes sharing a directory never interleave within a line.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace kiln {

// KILN_TRACE's directory (created, private), or nullopt when tracing is off.
std::optional<std::string> trace_directory();
bool trace_enabled();
void trace_artifact(std::string_view artifact, nlohmann::json fields);

}  // namespace kiln
