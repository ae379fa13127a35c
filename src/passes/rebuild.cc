#include "passes/rebuild.h"

namespace kiln {

Rebuilder::Rebuilder(const Graph& old, const std::vector<bool>& keep_constant,
                     const std::vector<GraphConstant>& extra_constants)
    : builder_(old.name), mapping_(static_cast<size_t>(old.num_values()), -1) {
  builder_.use_symbols(old.num_symbols);
  for (size_t i = 0; i < old.inputs.size(); ++i)
    mapping_[i] = builder_.add_input(old.inputs[i].name, old.inputs[i].type);
  for (size_t c = 0; c < old.constants.size(); ++c) {
    if (!keep_constant.empty() && !keep_constant[c]) continue;
    const GraphConstant& k = old.constants[c];
    mapping_[old.inputs.size() + c] = builder_.add_constant(k.name, k.type, k.value);
  }
  extra_base_ = builder_.graph().num_values();
  for (const GraphConstant& k : extra_constants) builder_.add_constant(k.name, k.type, k.value);
}

const Node* Rebuilder::producer(ValueId new_value) const {
  const Graph& g = builder_.graph();
  int32_t n = g.node_index(new_value);
  return n >= 0 ? &g.nodes[static_cast<size_t>(n)] : nullptr;
}

ValueId Rebuilder::copy_node(const Node& node) {
  std::vector<ValueId> inputs;
  for (ValueId v : node.inputs) inputs.push_back(map(v));
  return builder_.add_node(node.op, inputs, node.attrs);
}

ValueId Rebuilder::add(Op op, const std::vector<ValueId>& inputs, Attrs attrs) {
  return builder_.add_node(op, inputs, std::move(attrs));
}

Graph Rebuilder::finish(const std::vector<ValueId>& old_outputs) {
  std::vector<ValueId> outs;
  for (ValueId v : old_outputs) outs.push_back(map(v));
  builder_.set_outputs(outs);
  return builder_.finish();
}

SoleReaders::SoleReaders(const Graph& graph)
    : graph_(graph), readers_(static_cast<size_t>(graph.num_values())) {
  for (size_t n = 0; n < graph.nodes.size(); ++n)
    for (ValueId v : graph.nodes[n].inputs) readers_[v].push_back(n);
  for (ValueId v : graph.outputs)
    readers_[v].push_back(graph.nodes.size());  // outputs: a reader of none
}

const Node* SoleReaders::operator()(size_t n) const {
  const std::vector<size_t>& r = readers_[static_cast<size_t>(graph_.node_value(n))];
  return r.size() == 1 && r[0] < graph_.nodes.size() ? &graph_.nodes[r[0]] : nullptr;
}

}  // namespace kiln
