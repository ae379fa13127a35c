// The graph text format (docs/graph-format.md): print_graph and parse_graph round-trip
// exactly, and the printed text is canonical (nodes renumbered in order, attributes sorted),
// so it serves as the graph's fingerprint.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "graph/graph.h"

namespace kiln {

std::string print_graph(const Graph& graph);
// A value as the text names it: %input, %constant, or %N for node N.
std::string value_name(const Graph& graph, ValueId value);

// Parses `text`; errors are ParseError starting with "filename:line:column:". Constants get
// their values from `constants` by name when given (shapes and dtypes must match).
Graph parse_graph(std::string_view text, std::string_view filename = "<graph>",
                  const std::map<std::string, Tensor>* constants = nullptr);

}  // namespace kiln
