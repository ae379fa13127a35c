// The graph interpreter: runs a Graph node by node on the eager reference kernels. It is the
// oracle every compiled backend is checked against, and the executor of graphs before (and
// while) they compile.
#pragma once

#include <vector>

#include "graph/graph.h"

namespace kiln {

// Binds size symbols from the inputs' sizes, checking every input against the graph's
// declared types; returns the bindings (symbol index → size).
std::vector<int64_t> bind_inputs(const Graph& graph, const std::vector<Tensor>& inputs);

// `attrs` with every size symbol replaced by its bound value (reshape and expand targets).
Attrs bind_attrs(const Attrs& attrs, const std::vector<int64_t>& bindings);
bool has_symbolic_attr(const Attrs& attrs);

// Runs `graph` on `inputs`; outputs are contiguous and never alias an input.
std::vector<Tensor> interpret(const Graph& graph, const std::vector<Tensor>& inputs);

}  // namespace kiln
