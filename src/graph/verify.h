// verify_graph: checks a graph's invariants, throwing kiln::Error naming the first broken
// one: unique, well-formed names (not starting with a digit: those are node numbers); every
// node reads only values defined before it; every stored type equals what infer_type gives;
// constants' tensors match their declared types; at least one output; counts, ranks and
// element counts within kiln's limits (support/limits.h), symbolic dims of a positive
// coefficient; every size symbol bound by an input's shape.
#pragma once

#include "graph/graph.h"

namespace kiln {

void verify_graph(const Graph& graph);

}  // namespace kiln
