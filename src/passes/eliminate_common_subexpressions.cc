#include <fmt/format.h>

#include <map>
#include <string>

#include "graph/attrs.h"
#include "passes/passes.h"
#include "passes/rebuild.h"

namespace kiln {

PassResult eliminate_common_subexpressions(const Graph& graph) {
  Rebuilder r(graph);
  std::map<std::string, ValueId> seen;  // canonical node text (with new input ids) → value
  bool changed = false;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    std::string key(op_name(node.op));
    for (ValueId v : node.inputs) key += fmt::format(" {}", r.map(v));
    for (const auto& [name, value] : node.attrs.items())
      key += fmt::format(" {}={}", name, attr_value_string(value));
    auto it = seen.find(key);
    if (it != seen.end()) {
      r.set(graph.node_value(n), it->second);
      changed = true;
      continue;
    }
    ValueId v = r.copy_node(node);
    seen.emplace(std::move(key), v);
    r.set(graph.node_value(n), v);
  }
  if (!changed) return {graph, false};
  return {r.finish(graph.outputs), true};
}

}  // namespace kiln
