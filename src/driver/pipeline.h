// The compile pipeline, stage by stage: the map of kiln. Read pipeline.cc first.
#pragma once

#include <memory>

#include "graph/graph.h"
#include "runtime/executable.h"
#include "support/env.h"

namespace kiln {

// The graph passes for a plan on `device`, in the order of the one list in pipeline.cc:
// (cuda: fuse_attention → fuse_gemm_activations →) decompose → simplify views → fold
// constants → CSE → DCE (→ cuda: fuse_gemm_epilogues). Each runs through run_pass: timed,
// logged, and the graph verified after every change.
Graph optimize_graph(const Graph& graph, Device device = Device::cpu);

// Verifies `graph` and builds its executable under `options`: InProcess runs
// optimize_graph → lower → codegen → toolchain here, Subprocess in compile workers, both
// through the caches (graph_compiler.h); the async and progressive modes get the graph
// interpreter until their stages exist.
std::unique_ptr<Executable> compile_graph(const Graph& graph, const ResolvedOptions& options);

}  // namespace kiln
