// Graph: kiln's tensor program IR. A graph is a value: inputs, constants (weights) and nodes
// in topological order, each node defining one value; passes build new graphs rather than
// edit old ones. Value ids number the inputs first, then the constants, then the nodes.
// Shapes may name size symbols s0, s1, ... bound from the inputs' sizes at run time.
#pragma once

#include <string>
#include <vector>

#include "graph/attrs.h"
#include "graph/infer.h"
#include "graph/op.h"
#include "kiln/tensor.h"

namespace kiln {

using ValueId = int32_t;

struct Node {
  Op op;
  std::vector<ValueId> inputs;
  Attrs attrs;
  TensorType type;  // inferred when the node is added
};

struct GraphInput {
  std::string name;
  TensorType type;
};

struct GraphConstant {
  std::string name;
  TensorType type;
  Tensor value;  // undefined when the graph was parsed without its constants file
};

struct Graph {
  std::string name = "main";
  std::vector<GraphInput> inputs;
  std::vector<GraphConstant> constants;
  std::vector<Node> nodes;
  std::vector<ValueId> outputs;
  int32_t num_symbols = 0;
  // The example value of each size symbol where the graph was traced: the sizes autotuning
  // times kernels at. Not part of the graph's text; empty when unknown.
  std::vector<int64_t> size_hints;

  int32_t num_values() const {
    return static_cast<int32_t>(inputs.size() + constants.size() + nodes.size());
  }
  ValueId node_value(size_t node_index) const {
    return static_cast<ValueId>(inputs.size() + constants.size() + node_index);
  }
  // The node defining `value`, or -1 for an input or a constant.
  int32_t node_index(ValueId value) const {
    return value - static_cast<int32_t>(inputs.size() + constants.size());
  }
  const TensorType& value_type(ValueId value) const;
};

// Builds a graph node by node, inferring each node's type (and so rejecting bad shapes
// with the op's name at the point of construction).
class GraphBuilder {
 public:
  explicit GraphBuilder(std::string name);
  ValueId add_input(const std::string& name, const TensorType& type);
  ValueId add_constant(const std::string& name, const TensorType& type, Tensor value);
  ValueId add_node(Op op, const std::vector<ValueId>& inputs, Attrs attrs = {});
  // A node whose type the caller has inferred already (infer_type of these very inputs'
  // types and attrs: the tracer, which infers as it records).
  ValueId add_inferred_node(Op op, std::vector<ValueId> inputs, Attrs attrs, TensorType type);
  void set_outputs(std::vector<ValueId> outputs);
  // Declares that the graph uses size symbols s0..s{count-1}.
  void use_symbols(int32_t count);
  const Graph& graph() const { return graph_; }
  Graph finish();

 private:
  Graph graph_;
};

}  // namespace kiln
