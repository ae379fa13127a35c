// The values a joint graph's forward saves for its backward, chosen by a minimum cut on
// bytes (AOTAutograd's min-cut rematerialization): the backward may recompute cheap
// elementwise values, views and random draws (a counter-based draw recomputes bit-identically)
// from what is saved, instead of saving them; reductions, products and the like are computed
// once, in the forward. Primal inputs and constants cost nothing to "save" (the backward
// takes them directly).
#pragma once

#include <vector>

#include "graph/graph.h"

namespace kiln {

// Per node value of `joint`: saved for the backward (inputs and constants are never marked:
// the backward takes those it reads directly). `tangent` marks the values that depend on a
// tangent (the backward's own); `needed` the tangent-free values the backward reads (its
// nodes' inputs and its outputs).
std::vector<bool> min_cut_saved(const Graph& joint, const std::vector<bool>& tangent,
                                const std::vector<bool>& needed);

}  // namespace kiln
