#include <fmt/format.h>

#include <set>
#include <string>

#include "eager/dispatch.h"
#include "passes/passes.h"
#include "passes/rebuild.h"

namespace kiln {

PassResult fold_constants(const Graph& graph) {
  const size_t first_constant = graph.inputs.size();
  std::vector<Tensor> value(static_cast<size_t>(graph.num_values()));
  for (size_t c = 0; c < graph.constants.size(); ++c)
    value[first_constant + c] = graph.constants[c].value;
  // Fold in order, so folded results feed later folds.
  std::vector<GraphConstant> folded;
  std::vector<int64_t> folded_index(graph.nodes.size(), -1);
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    std::vector<Tensor> args;
    int64_t largest_input = 0;
    for (ValueId v : node.inputs) {
      if (!value[v].defined()) break;
      args.push_back(value[v]);
      largest_input = std::max(largest_input, value[v].numel());
    }
    if (args.size() != node.inputs.size() || args.empty()) continue;
    // Not a result of symbolic size, nor one larger than its inputs (it would grow the
    // graph's data: a broadcast scalar stays a broadcast); decided before computing it.
    Monomial result_numel = shape_monomial(node.type.shape, "fold_constants");
    if (!result_numel.syms.empty() || result_numel.coeff > largest_input) continue;
    Tensor result = run_op(node.op, args, node.attrs).contiguous();
    value[graph.node_value(n)] = result;
    // A view of a constant stays a view: it costs nothing at run time, and its readers may
    // read it in place (a matmul through a transposed weight); folding would copy the data.
    // Its value still feeds the folds of later nodes.
    if (is_view(op_info(node.op).rule)) continue;
    folded_index[n] = static_cast<int64_t>(folded.size());
    folded.push_back({fmt::format("f{}", folded.size()), node.type, result});
  }
  if (folded.empty()) return {graph, false};
  // Keep the folded constants that unfolded nodes or outputs read, and the old constants
  // still read; drop the rest.
  std::vector<bool> read(static_cast<size_t>(graph.num_values()), false);
  for (ValueId v : graph.outputs) read[v] = true;
  for (size_t n = 0; n < graph.nodes.size(); ++n)
    if (folded_index[n] < 0)
      for (ValueId v : graph.nodes[n].inputs) read[v] = true;
  std::vector<bool> keep_constant;
  for (size_t c = 0; c < graph.constants.size(); ++c)
    keep_constant.push_back(read[first_constant + c]);
  std::set<std::string> taken;
  for (const GraphInput& in : graph.inputs) taken.insert(in.name);
  for (size_t c = 0; c < graph.constants.size(); ++c)
    if (keep_constant[c]) taken.insert(graph.constants[c].name);
  std::vector<GraphConstant> extra;
  std::vector<int64_t> extra_index(folded.size(), -1);
  size_t next_name = 0;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    if (folded_index[n] < 0 || !read[graph.node_value(n)]) continue;
    extra_index[static_cast<size_t>(folded_index[n])] = static_cast<int64_t>(extra.size());
    GraphConstant k = folded[static_cast<size_t>(folded_index[n])];
    do k.name = fmt::format("f{}", next_name++);
    while (taken.count(k.name));
    extra.push_back(std::move(k));
  }
  Rebuilder r(graph, keep_constant, extra);
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    int64_t f = folded_index[n];
    if (f >= 0) {
      if (extra_index[static_cast<size_t>(f)] >= 0)
        r.set(graph.node_value(n),
              r.extra_constant(static_cast<size_t>(extra_index[static_cast<size_t>(f)])));
      continue;
    }
    r.set(graph.node_value(n), r.copy_node(graph.nodes[n]));
  }
  return {r.finish(graph.outputs), true};
}

}  // namespace kiln
