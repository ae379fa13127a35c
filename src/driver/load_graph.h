// Text graphs from files: the graph and the constants beside it (kiln run, load_graph).
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"

namespace kiln {

struct GraphFile {
  Graph graph;                 // constants the file did not provide are undefined
  std::string constants_path;  // the safetensors file read, or "" when there was none
};

// Reads the graph at `path` and its constants from `constants_path`, or else from the path
// with .safetensors in place of its extension when that file exists.
GraphFile read_graph_file(const std::string& path, const std::string& constants_path);

// Throws Error naming the input unless `inputs` fit `graph`'s inputs: their count, and each
// one's dtype, device, rank, static sizes and a consistent size per symbol.
void check_graph_inputs(const Graph& graph, const std::vector<Tensor>& inputs, Device device);

}  // namespace kiln
