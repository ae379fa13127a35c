#include <fmt/format.h>

#include "graph/text.h"

namespace kiln {

std::string value_name(const Graph& g, ValueId v) {
  size_t i = static_cast<size_t>(v);
  if (i < g.inputs.size()) return "%" + g.inputs[i].name;
  i -= g.inputs.size();
  if (i < g.constants.size()) return "%" + g.constants[i].name;
  return fmt::format("%{}", i - g.constants.size());
}

std::string print_graph(const Graph& g) {
  std::string out = fmt::format("graph {}(", g.name);
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    if (i) out += ", ";
    out += fmt::format("%{}: {}", g.inputs[i].name, type_string(g.inputs[i].type));
  }
  out += ") {\n";
  for (const GraphConstant& c : g.constants)
    out += fmt::format("  const %{}: {}\n", c.name, type_string(c.type));
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    std::vector<std::string> args;
    for (ValueId v : node.inputs) args.push_back(value_name(g, v));
    bool binary = is_binary(op_info(node.op).rule);
    for (const auto& [name, value] : node.attrs.items()) {
      if (binary && name == "scalar") {
        auto pos = node.attrs.get_bool("scalar_first", false) ? args.begin() : args.end();
        args.insert(pos, attr_value_string(value));
      } else if (!(binary && name == "scalar_first")) {
        args.push_back(fmt::format("{}={}", name, attr_value_string(value)));
      }
    }
    out += fmt::format("  %{} = {}({})\n", n, op_name(node.op), fmt::join(args, ", "));
  }
  std::vector<std::string> outs;
  for (ValueId v : g.outputs) outs.push_back(value_name(g, v));
  out += fmt::format("  return {}\n}}\n", fmt::join(outs, ", "));
  return out;
}

}  // namespace kiln
