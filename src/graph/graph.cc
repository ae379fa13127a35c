#include "graph/graph.h"

#include <fmt/format.h>

#include "kiln/error.h"

namespace kiln {

const TensorType& Graph::value_type(ValueId value) const {
  size_t v = static_cast<size_t>(value);
  if (value < 0 || value >= num_values())
    throw Error(fmt::format("graph {}: value id {} is out of range", name, value));
  if (v < inputs.size()) return inputs[v].type;
  v -= inputs.size();
  if (v < constants.size()) return constants[v].type;
  return nodes[v - constants.size()].type;
}

GraphBuilder::GraphBuilder(std::string name) { graph_.name = std::move(name); }

namespace {
void note_symbols(Graph& g, const SymShape& shape) {
  for (const Dim& d : shape)
    if (!d.is_const()) g.num_symbols = std::max(g.num_symbols, d.sym + 1);
}
}  // namespace

ValueId GraphBuilder::add_input(const std::string& name, const TensorType& type) {
  if (!graph_.constants.empty() || !graph_.nodes.empty())
    throw Error("graph builder: inputs must be added before constants and nodes");
  graph_.inputs.push_back({name, type});
  note_symbols(graph_, type.shape);
  return static_cast<ValueId>(graph_.inputs.size() - 1);
}

ValueId GraphBuilder::add_constant(const std::string& name, const TensorType& type, Tensor value) {
  if (!graph_.nodes.empty()) throw Error("graph builder: constants must come before nodes");
  graph_.constants.push_back({name, type, std::move(value)});
  return static_cast<ValueId>(graph_.inputs.size() + graph_.constants.size() - 1);
}

ValueId GraphBuilder::add_node(Op op, const std::vector<ValueId>& inputs, Attrs attrs) {
  std::vector<const TensorType*> types;
  for (ValueId v : inputs) types.push_back(&graph_.value_type(v));
  TensorType type = infer_type(op, attrs, types);
  graph_.nodes.push_back({op, inputs, std::move(attrs), std::move(type)});
  return graph_.node_value(graph_.nodes.size() - 1);
}

ValueId GraphBuilder::add_inferred_node(Op op, std::vector<ValueId> inputs, Attrs attrs,
                                        TensorType type) {
  graph_.nodes.push_back({op, std::move(inputs), std::move(attrs), std::move(type)});
  return graph_.node_value(graph_.nodes.size() - 1);
}

void GraphBuilder::set_outputs(std::vector<ValueId> outputs) {
  for (ValueId v : outputs) graph_.value_type(v);
  graph_.outputs = std::move(outputs);
}

void GraphBuilder::use_symbols(int32_t count) {
  graph_.num_symbols = std::max(graph_.num_symbols, count);
}

Graph GraphBuilder::finish() { return std::move(graph_); }

}  // namespace kiln
