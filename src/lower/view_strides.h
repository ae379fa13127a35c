// Which of a graph's views are views at run time. Lowering turns a view read by a kernel into
// index arithmetic, but hands a view read by an ext step (a library call, an eager op) to
// the eager view op, which must copy where strides cannot express the view (a reshape of a
// transposed value): such a reshape is better a generated copy kernel, whose index
// arithmetic divides by constants.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "graph/graph.h"

namespace kiln {

// The strides (in elements) of value `v` over the contiguous value its view chain starts
// from, when every shape on the way is constant and every reshape is a view; nullopt
// otherwise.
std::optional<std::vector<int64_t>> view_strides(const Graph& g, ValueId v);

// A reshape node whose input's layout is known and which no strides can express: the eager
// op would copy.
bool reshape_copies(const Graph& g, const Node& reshape);

// The strides of `to_sizes` viewing a tensor of `sizes` and `strides` without a copy, or
// nullopt where none exist (PyTorch's rule for view/reshape).
std::optional<std::vector<int64_t>> reshaped_strides(const std::vector<int64_t>& sizes,
                                                     const std::vector<int64_t>& strides,
                                                     const std::vector<int64_t>& to_sizes);

}  // namespace kiln
