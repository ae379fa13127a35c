// The graph interpreter: runs a Graph node by node on the eager reference kernels. It is the
// oracle every compiled backend is checked against, and the executor of graphs before (and
// while) they compile.
#pragma once

#include <vector>

#include "graph/graph.h"

namespace kiln {

// The largest binding of each size symbol that keeps every value of `graph` within
// kiln's element limit (limits::kMaxElements); computed once per executable.
std::vector<int64_t> symbol_limits(const Graph& graph);
// Binds size symbols from the inputs' sizes, checking every input against the graph's
// declared types and every binding against `limits` (symbol_limits; computed here when
// null); returns the bindings (symbol index → size). Throws ShapeError naming the symbol,
// the input and the limit.
std::vector<int64_t> bind_inputs(const Graph& graph, const std::vector<Tensor>& inputs,
                                 const std::vector<int64_t>* limits = nullptr);

// `attrs` with every size symbol in its Dim lists bound (reshape targets, slice bounds).
Attrs bind_attrs(const Attrs& attrs, const std::vector<int64_t>& bindings);
// Runs one node eagerly, its attributes' size symbols (reshape and expand targets) bound.
Tensor run_node(const Node& node, const std::vector<Tensor>& args,
                const std::vector<int64_t>& bindings);

// `value` as a graph output: itself, or a contiguous copy when it is strided or shares
// storage with an input or a constant (outputs never alias them).
Tensor owned_output(const Graph& graph, const Tensor& value, const std::vector<Tensor>& inputs);

// Runs `graph` on `inputs`; outputs are contiguous and never alias an input.
std::vector<Tensor> interpret(const Graph& graph, const std::vector<Tensor>& inputs);

}  // namespace kiln
