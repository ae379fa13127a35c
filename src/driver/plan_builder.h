// The compile proper, wherever it runs (in the host for InProcess, in a worker otherwise):
// a verified graph → optimize_graph → lower → kernels grouped into translation units →
// C source → a CompiledPlan whose units name their objects by kernel-cache key. Compiling
// the units' source to objects is the separate, parallel step (object_store.h).
#pragma once

#include "compile/toolchain.h"
#include "runtime/plan.h"

namespace kiln {

// At most this many kernels share a translation unit: one compiler run for a small graph,
// several that run in parallel (in workers) for a large one. Fixed, so that every mode
// produces the same units and shares cache entries.
constexpr size_t kKernelsPerUnit = 8;

CompiledPlan build_plan(const Graph& graph, const Toolchain& toolchain);

}  // namespace kiln
