// The background modes (docs/design.md §5): Async, Progressive and AsyncProgressive. Their
// executable launches its stages (compiles in workers, one after another, each through
// the caches) and serves every call from the newest one that has landed: the eager
// interpreter before any (Async, AsyncProgressive), or the first stage, waited for
// (Progressive). Picking a newly landed stage never blocks. A stage that fails is reported
// once (stderr, async.bg_failed, compile_errors()) and the calls go on with what they had.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "runtime/executable.h"
#include "support/env.h"

namespace kiln {

// The stage list of `options`' mode: Async: optimized; Progressive and AsyncProgressive:
// options.stages, default fast then optimized.
std::vector<std::string> stage_names(const ResolvedOptions& options);

std::unique_ptr<Executable> make_staged_executable(const Graph& graph,
                                                   const ResolvedOptions& options);

}  // namespace kiln
