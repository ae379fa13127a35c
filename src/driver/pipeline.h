// The compile pipeline, stage by stage: the map of kiln. Read pipeline.cc first.
#pragma once

#include <memory>

#include "graph/graph.h"
#include "runtime/executable.h"
#include "support/env.h"

namespace kiln {

// Verifies `graph` and builds its executable under `options`. Stages so far: verify →
// backend (the interpreter). Graph passes, lowering, codegen and the toolchains slot in
// between as they land.
std::unique_ptr<Executable> compile_graph(const Graph& graph, const ResolvedOptions& options);

}  // namespace kiln
