// lower_graph: an optimized graph → a Program of loop kernels and ext steps.
//
// Pointwise ops fuse: each is inlined into its single consumer and realized (given a buffer)
// only when it is a graph output, has several consumers, or feeds an ext step; a realized
// value whose readers are all in one other pointwise kernel of its shape is stored by that
// kernel, else it gets a kernel of its own. Views are index arithmetic inside kernels, never
// copies; a view that only ext steps read runs as a zero-copy eager view; a view that is a graph
// output gets a copy kernel (outputs never alias inputs). Everything else (reductions, matrix
// products, data movement, integer ops that can fail) runs as an ext step on the eager
// interpreter's kernels for now.
#pragma once

#include "loop/kernel.h"

namespace kiln {

Program lower_graph(const Graph& graph);

}  // namespace kiln
