#include "passes/partition_joint.h"

#include <fmt/format.h>

#include <algorithm>

#include "kiln/error.h"
#include "passes/min_cut.h"

namespace kiln {

namespace {

// The graph of the values `keep` marks (every input of a kept node kept too), with inputs
// `inputs` (joint value ids, which become its inputs in that order, named as given) and
// outputs `outputs`. Constants are copied.
Graph extract(const Graph& joint, const std::string& name, const std::vector<ValueId>& inputs,
              const std::vector<std::string>& input_names, const std::vector<bool>& keep,
              const std::vector<ValueId>& outputs) {
  GraphBuilder b(name);
  b.use_symbols(joint.num_symbols);
  std::vector<ValueId> id(static_cast<size_t>(joint.num_values()), -1);
  for (size_t i = 0; i < inputs.size(); ++i)
    id[static_cast<size_t>(inputs[i])] = b.add_input(input_names[i], joint.value_type(inputs[i]));
  for (size_t c = 0; c < joint.constants.size(); ++c) {
    ValueId v = static_cast<ValueId>(joint.inputs.size() + c);
    if (keep[static_cast<size_t>(v)] && id[static_cast<size_t>(v)] < 0)
      id[static_cast<size_t>(v)] = b.add_constant(joint.constants[c].name, joint.constants[c].type,
                                                  joint.constants[c].value);
  }
  for (size_t n = 0; n < joint.nodes.size(); ++n) {
    ValueId v = joint.node_value(n);
    if (!keep[static_cast<size_t>(v)] || id[static_cast<size_t>(v)] >= 0) continue;
    const Node& node = joint.nodes[n];
    std::vector<ValueId> ins;
    for (ValueId in : node.inputs) {
      if (id[static_cast<size_t>(in)] < 0)
        throw Error(fmt::format("partition_joint: {} reads %{} from the other graph",
                                op_name(node.op), in));
      ins.push_back(id[static_cast<size_t>(in)]);
    }
    id[static_cast<size_t>(v)] =
        b.add_inferred_node(node.op, std::move(ins), node.attrs, node.type);
  }
  std::vector<ValueId> outs;
  for (ValueId v : outputs) outs.push_back(id[static_cast<size_t>(v)]);
  b.set_outputs(outs);
  Graph g = b.finish();
  g.size_hints = joint.size_hints;
  return g;
}

}  // namespace

JointPartition partition_joint(const Graph& joint, size_t num_primals, size_t num_forward_outputs) {
  size_t n_values = static_cast<size_t>(joint.num_values());
  // Which values depend on a tangent.
  std::vector<bool> tangent(n_values, false);
  for (size_t i = num_primals; i < joint.inputs.size(); ++i) tangent[i] = true;
  for (size_t n = 0; n < joint.nodes.size(); ++n)
    for (ValueId in : joint.nodes[n].inputs)
      if (tangent[static_cast<size_t>(in)])
        tangent[static_cast<size_t>(joint.node_value(n))] = true;
  // What the backward reads of the tangent-free values, and which of those the forward saves
  // (a min cut on bytes: cheap elementwise values are recomputed instead).
  std::vector<bool> needed(n_values, false);
  for (size_t n = 0; n < joint.nodes.size(); ++n) {
    if (!tangent[static_cast<size_t>(joint.node_value(n))]) continue;
    for (ValueId in : joint.nodes[n].inputs)
      if (!tangent[static_cast<size_t>(in)]) needed[static_cast<size_t>(in)] = true;
  }
  for (size_t o = num_forward_outputs; o < joint.outputs.size(); ++o)
    if (!tangent[static_cast<size_t>(joint.outputs[o])])
      needed[static_cast<size_t>(joint.outputs[o])] = true;
  std::vector<bool> saved = min_cut_saved(joint, tangent, needed);
  size_t free_values = joint.inputs.size() + joint.constants.size();
  // The backward: from the gradients, through tangent values and recomputed ones, down to
  // saved nodes, primal inputs and constants.
  std::vector<bool> in_forward(n_values, false), in_backward(n_values, false);
  std::vector<bool> reads(n_values, false);  // saved nodes and primal inputs it takes
  std::vector<ValueId> stack;
  for (size_t o = num_forward_outputs; o < joint.outputs.size(); ++o)
    stack.push_back(joint.outputs[o]);
  while (!stack.empty()) {
    size_t u = static_cast<size_t>(stack.back());
    stack.pop_back();
    if (in_backward[u] || reads[u]) continue;
    if (!tangent[u] && (saved[u] || u < num_primals)) {
      reads[u] = true;
      continue;
    }
    in_backward[u] = true;  // a tangent value, a constant, or one recomputed
    if (u < free_values) continue;
    for (ValueId in :
         joint.nodes[static_cast<size_t>(joint.node_index(static_cast<ValueId>(u)))].inputs)
      stack.push_back(in);
  }
  auto mark_forward = [&](ValueId root) {
    std::vector<ValueId> todo{root};
    while (!todo.empty()) {
      size_t u = static_cast<size_t>(todo.back());
      todo.pop_back();
      if (in_forward[u]) continue;
      in_forward[u] = true;
      int32_t node = joint.node_index(static_cast<ValueId>(u));
      if (node < 0) continue;
      for (ValueId in : joint.nodes[static_cast<size_t>(node)].inputs) todo.push_back(in);
    }
  };
  for (size_t o = 0; o < num_forward_outputs; ++o) mark_forward(joint.outputs[o]);
  JointPartition p;
  std::vector<ValueId> saved_nodes;
  for (size_t v = 0; v < n_values; ++v) {
    if (!reads[v]) continue;
    if (v < num_primals) {
      p.saved_inputs.push_back(v);
    } else {
      saved_nodes.push_back(static_cast<ValueId>(v));
      mark_forward(static_cast<ValueId>(v));
    }
  }
  p.num_saved = saved_nodes.size();

  std::vector<ValueId> fwd_inputs;
  std::vector<std::string> fwd_names;
  for (size_t i = 0; i < num_primals; ++i) {
    fwd_inputs.push_back(static_cast<ValueId>(i));
    fwd_names.push_back(joint.inputs[i].name);
  }
  std::vector<ValueId> fwd_outputs(
      joint.outputs.begin(),
      joint.outputs.begin() + static_cast<std::ptrdiff_t>(num_forward_outputs));
  fwd_outputs.insert(fwd_outputs.end(), saved_nodes.begin(), saved_nodes.end());
  p.forward =
      extract(joint, joint.name + "_forward", fwd_inputs, fwd_names, in_forward, fwd_outputs);

  std::vector<ValueId> bwd_inputs;
  std::vector<std::string> bwd_names;
  for (size_t k = 0; k < saved_nodes.size(); ++k) {
    bwd_inputs.push_back(saved_nodes[k]);
    bwd_names.push_back(fmt::format("saved{}", k));
  }
  for (size_t i : p.saved_inputs) {
    bwd_inputs.push_back(static_cast<ValueId>(i));
    bwd_names.push_back(joint.inputs[i].name);
  }
  for (size_t i = num_primals; i < joint.inputs.size(); ++i) {
    bwd_inputs.push_back(static_cast<ValueId>(i));
    bwd_names.push_back(joint.inputs[i].name);
  }
  std::vector<bool> bwd_keep = in_backward;
  for (ValueId v : bwd_inputs) bwd_keep[static_cast<size_t>(v)] = true;
  std::vector<ValueId> grads(
      joint.outputs.begin() + static_cast<std::ptrdiff_t>(num_forward_outputs),
      joint.outputs.end());
  p.backward = extract(joint, joint.name + "_backward", bwd_inputs, bwd_names, bwd_keep, grads);
  return p;
}

}  // namespace kiln
