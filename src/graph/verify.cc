#include "graph/verify.h"

#include <fmt/format.h>

#include <cctype>
#include <set>

#include "kiln/error.h"

namespace kiln {

namespace {
void check_name(const std::string& name, std::set<std::string>& seen, const Graph& g) {
  bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
  for (char c : name) ok &= std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  if (!ok)
    throw Error(
        fmt::format("graph {}: bad value name '%{}' (letters, digits, '_' and '.', not "
                    "starting with a digit)",
                    g.name, name));
  if (!seen.insert(name).second)
    throw Error(fmt::format("graph {}: value name '%{}' is used twice", g.name, name));
}
}  // namespace

void verify_graph(const Graph& g) {
  std::set<std::string> names;
  for (const GraphInput& in : g.inputs) check_name(in.name, names, g);
  for (const GraphConstant& c : g.constants) {
    check_name(c.name, names, g);
    if (c.value.defined() &&
        (c.value.dtype() != c.type.dtype || !(const_shape(c.value.sizes()) == c.type.shape)))
      throw Error(fmt::format("graph {}: constant %{} is declared {} but holds a {}{} tensor",
                              g.name, c.name, type_string(c.type), dtype_name(c.value.dtype()),
                              shape_string(c.value.sizes())));
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    ValueId self = g.node_value(n);
    std::vector<const TensorType*> types;
    for (ValueId v : node.inputs) {
      if (v < 0 || v >= self)
        throw Error(
            fmt::format("graph {}: node %{} ({}) reads value {} that is not defined "
                        "before it",
                        g.name, n, op_name(node.op), v));
      types.push_back(&g.value_type(v));
    }
    TensorType inferred = infer_type(node.op, node.attrs, types);
    if (!(inferred == node.type))
      throw Error(fmt::format("graph {}: node %{} ({}) is typed {} but its inputs give {}", g.name,
                              n, op_name(node.op), type_string(node.type), type_string(inferred)));
  }
  if (g.outputs.empty()) throw Error(fmt::format("graph {}: has no outputs", g.name));
  for (ValueId v : g.outputs) g.value_type(v);
}

}  // namespace kiln
