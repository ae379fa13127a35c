// Splits a joint forward+backward graph (a compiled function traced with its backward: the
// primal inputs, then one tangent per result that requires grad; outputs: the forward's,
// then the gradients) into a forward graph and a backward graph, as AOTAutograd's default
// partition does: every value that does not depend on a tangent is computed by the forward,
// and those the backward reads are saved (forward outputs after its own) or, when they are
// primal inputs, passed to the backward directly.
#pragma once

#include <vector>

#include "graph/graph.h"

namespace kiln {

struct JointPartition {
  // Inputs: the primal inputs. Outputs: the joint forward outputs, then the saved values.
  Graph forward;
  // Inputs: the saved values, then the primal inputs it reads (saved_inputs), then the
  // tangents. Outputs: the gradients.
  Graph backward;
  size_t num_saved = 0;              // forward outputs past the joint forward's
  std::vector<size_t> saved_inputs;  // primal input indices the backward takes
};

// `joint` has `num_primals` primal inputs (the rest are tangents) and `num_forward_outputs`
// forward outputs (the rest are gradients).
JointPartition partition_joint(const Graph& joint, size_t num_primals, size_t num_forward_outputs);

}  // namespace kiln
