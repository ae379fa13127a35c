#include "passes/passes.h"
#include "passes/rebuild.h"

namespace kiln {

namespace {

bool is_identity_permutation(const std::vector<int64_t>& dims) {
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i] != static_cast<int64_t>(i)) return false;
  return true;
}

// The replacement of `node` (inputs already mapped to `in`): an existing value when the node
// is an identity, a merged node, or -1 to copy it as it is.
ValueId simplify(Rebuilder& r, const Node& node, ValueId in) {
  const TensorType& in_type = r.type(in);
  const Node* producer = r.producer(in);
  switch (node.op) {
    case Op::reshape:
      if (in_type.shape == node.attrs.get_dims("shape")) return in;
      if (producer && producer->op == Op::reshape)
        return r.add(Op::reshape, {producer->inputs[0]}, node.attrs);
      return -1;
    case Op::permute: {
      auto dims = node.attrs.get_ints("dims");
      int64_t rank = static_cast<int64_t>(dims.size());
      for (int64_t& d : dims) d = d < 0 ? d + rank : d;
      if (is_identity_permutation(dims)) return in;
      if (producer && producer->op == Op::permute) {
        auto inner = producer->attrs.get_ints("dims");
        std::vector<int64_t> composed;
        for (int64_t d : dims) composed.push_back(inner[d] < 0 ? inner[d] + rank : inner[d]);
        if (is_identity_permutation(composed)) return producer->inputs[0];
        Attrs a;
        a.set_ints("dims", composed);
        return r.add(Op::permute, {producer->inputs[0]}, a);
      }
      return -1;
    }
    case Op::slice: {
      int64_t dim = node.attrs.get_int("dim");
      if (dim < 0) dim += static_cast<int64_t>(in_type.shape.size());
      const Dim& size = in_type.shape[static_cast<size_t>(dim)];
      bool full = node.attrs.get_dim("start") == Dim::constant(0) &&
                  node.attrs.get_int("step", 1) == 1 && node.attrs.get_dim("end") == size;
      return full ? in : -1;
    }
    case Op::expand:
      return in_type.shape == node.attrs.get_dims("shape") ? in : -1;
    case Op::to:
      return in_type.dtype == node.attrs.get_dtype("dtype") ? in : -1;
    default:
      return -1;
  }
}

}  // namespace

PassResult simplify_views(const Graph& graph) {
  Rebuilder r(graph);
  bool changed = false;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    ValueId replacement = node.inputs.size() == 1 ? simplify(r, node, r.map(node.inputs[0])) : -1;
    changed |= replacement >= 0;
    r.set(graph.node_value(n), replacement >= 0 ? replacement : r.copy_node(node));
  }
  if (!changed) return {graph, false};
  // Merged chains leave their first links unread.
  return {eliminate_dead_nodes(r.finish(graph.outputs)).graph, true};
}

}  // namespace kiln
