#include "passes/passes.h"
#include "passes/rebuild.h"

namespace kiln {

PassResult eliminate_dead_nodes(const Graph& graph) {
  std::vector<bool> live(static_cast<size_t>(graph.num_values()), false);
  for (ValueId v : graph.outputs) live[v] = true;
  for (size_t n = graph.nodes.size(); n-- > 0;) {
    if (!live[graph.node_value(n)]) continue;
    for (ValueId v : graph.nodes[n].inputs) live[v] = true;
  }
  std::vector<bool> keep_constant;
  bool changed = false;
  for (size_t c = 0; c < graph.constants.size(); ++c) {
    keep_constant.push_back(live[graph.inputs.size() + c]);
    changed |= !keep_constant.back();
  }
  for (size_t n = 0; n < graph.nodes.size(); ++n) changed |= !live[graph.node_value(n)];
  if (!changed) return {graph, false};
  Rebuilder r(graph, keep_constant);
  for (size_t n = 0; n < graph.nodes.size(); ++n)
    if (live[graph.node_value(n)]) r.set(graph.node_value(n), r.copy_node(graph.nodes[n]));
  return {r.finish(graph.outputs), true};
}

}  // namespace kiln
