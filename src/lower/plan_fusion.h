// Fusion planning, the first half of lowering (lower.h): which node runs how, before any
// kernel is built. Pointwise nodes inline into their single consumer or become kernel
// roots; a root whose readers all inline into one other pointwise kernel of its shape is
// stored by that kernel (a multi-output kernel); views are index arithmetic; reductions
// over one domain and dims, with the pointwise nodes between and after them, form row
// groups (one row kernel each); the rest are ext steps. lower.cc then builds the kernels
// the plan names.
#pragma once

#include <algorithm>
#include <set>
#include <vector>

#include "graph/graph.h"

namespace kiln {

enum class Role { Pointwise, View, Ext };
// StoredWith: a pointwise value computed and stored by the kernel of another root
// (FusionPlan::stored_by), which would otherwise have loaded it back.
enum class State { Inline, KernelRoot, ExtStep, InGroup, StoredWith };

// A row group: reductions over the same dims of the same domain, and the pointwise nodes
// between and after them, computed by one row kernel (softmax and layer_norm each become
// one kernel).
struct Group {
  SymShape domain;
  std::vector<int64_t> dims;  // reduced, sorted
  bool open = true;
  std::vector<size_t> members;  // node indices, in order
  SymShape keep_shape() const {
    SymShape s = domain;
    for (int64_t d : dims) s[static_cast<size_t>(d)] = Dim::constant(1);
    return s;
  }
  SymShape flat_shape() const {
    SymShape s;
    for (size_t d = 0; d < domain.size(); ++d)
      if (std::find(dims.begin(), dims.end(), static_cast<int64_t>(d)) == dims.end())
        s.push_back(domain[d]);
    return s;
  }
};

bool is_row_reduction(const Graph& g, const Node& node);
Role role_of(const Graph& g, const Node& node);

struct FusionPlan {
  std::vector<State> state;        // per node
  std::vector<int> group_of;       // per node: its row group, or -1
  std::vector<size_t> group_last;  // per group: its last member, where its kernel runs
  // Per node: the StoredWith nodes its kernel also stores, in node order (kernel roots).
  std::vector<std::vector<size_t>> stored_by;
  std::vector<Group> groups;
  std::vector<std::vector<size_t>> users;  // per value: the nodes that read it, each once
  std::set<ValueId> outputs;
};

FusionPlan plan_fusion(const Graph& graph);

}  // namespace kiln
