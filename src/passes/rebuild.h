// Rebuilder: builds a pass's new graph from an old one. Inputs and constants carry over
// (constants only when kept); old value ids map to new ones as nodes are re-added or
// replaced by existing values.
#pragma once

#include <vector>

#include "graph/graph.h"

namespace kiln {

class Rebuilder {
 public:
  // `keep_constant[c]` says whether old constant c carries over (all when empty).
  // `extra_constants` are added after the kept ones.
  Rebuilder(const Graph& old, const std::vector<bool>& keep_constant = {},
            const std::vector<GraphConstant>& extra_constants = {});

  ValueId map(ValueId old_value) const { return mapping_.at(static_cast<size_t>(old_value)); }
  void set(ValueId old_value, ValueId new_value) {
    mapping_.at(static_cast<size_t>(old_value)) = new_value;
  }
  // The new id of extra constant i.
  ValueId extra_constant(size_t i) const { return extra_base_ + static_cast<ValueId>(i); }
  // Re-adds old node `n` with its inputs mapped.
  ValueId copy_node(const Node& node);
  ValueId add(Op op, const std::vector<ValueId>& inputs, Attrs attrs = {});
  const TensorType& type(ValueId new_value) const { return builder_.graph().value_type(new_value); }
  // The node defining new value `v`, or null for an input or constant.
  const Node* producer(ValueId new_value) const;
  Graph finish(const std::vector<ValueId>& old_outputs);

 private:
  GraphBuilder builder_;
  std::vector<ValueId> mapping_;
  ValueId extra_base_ = 0;
};

// For pattern-matching passes: the node after node `n` in a pattern is the one reader of
// n's value, when that is its only use (a graph output is a use too); else null.
class SoleReaders {
 public:
  explicit SoleReaders(const Graph& graph);
  const Node* operator()(size_t n) const;

 private:
  const Graph& graph_;
  std::vector<std::vector<size_t>> readers_;
};

}  // namespace kiln
