// GPU plans only (plan_builder.cc): a matrix product and the pointwise tail cuBLASLt can
// apply in its epilogue become one node, so the product's result is written once instead of
// written, read back by a kernel and written again. Before decomposition (the activations
// are still single ops; decompose_ops then keeps an epilogue's linear whole):
//   linear(x, w[, b]) | matmul(a, b) → relu | gelu(approximate=tanh)  →  the product with
//                                                             epilogue=relu | gelu_tanh
// After it (linear layers written out by hand, and decomposed ones):
//   matmul(x, permute(w, [1, 0])) [+ bias[m]] [→ relu]  →  linear(x, w[, bias], epilogue=relu)
//   matmul(a, b) → relu                                  →  matmul(a, b, epilogue=relu)
// A value is absorbed only when its one reader is the next node of the pattern and it is
// not a graph output. The permute left without readers is removed by the dead-node pass.
#include <algorithm>

#include "passes/passes.h"
#include "passes/rebuild.h"

namespace kiln {

namespace {

bool gemm_dtype(DType d) { return d == DType::f32 || d == DType::f16 || d == DType::bf16; }

// The epilogue name of activation node `n`, or "" when cuBLASLt has none for it.
std::string epilogue_of(const Node& n) {
  if (n.op == Op::relu) return "relu";
  if (n.op == Op::gelu && n.attrs.has("approximate") && n.attrs.get_string("approximate") == "tanh")
    return "gelu_tanh";
  return "";
}

struct Fusion {
  size_t end = 0;                // the node whose value the fused node replaces
  std::vector<size_t> absorbed;  // pattern nodes before `end`, not copied
  Op op = Op::matmul;
  std::vector<ValueId> inputs;  // old value ids
  bool relu = false;
};

}  // namespace

PassResult fuse_gemm_activations(const Graph& graph) {
  const SoleReaders sole_reader(graph);
  std::vector<std::string> fused(graph.nodes.size());          // per product node: its epilogue
  std::vector<int64_t> activation_of(graph.nodes.size(), -1);  // per activation: its product
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& mm = graph.nodes[n];
    if ((mm.op != Op::linear && mm.op != Op::matmul) || mm.attrs.has("epilogue") ||
        !gemm_dtype(mm.type.dtype))
      continue;
    if (mm.op == Op::matmul && graph.value_type(mm.inputs[0]).shape.size() < 2) continue;
    const Node* act = sole_reader(n);
    if (!act) continue;
    const std::string epilogue = epilogue_of(*act);
    if (epilogue.empty() || !(act->type == mm.type)) continue;
    fused[n] = epilogue;
    activation_of[static_cast<size_t>(act - graph.nodes.data())] = static_cast<int64_t>(n);
  }
  bool any = false;
  for (const std::string& e : fused) any |= !e.empty();
  if (!any) return {graph, false};
  Rebuilder r(graph);
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    if (activation_of[n] >= 0) {  // the activation's value is the fused product's
      r.set(graph.node_value(n), r.map(graph.node_value(static_cast<size_t>(activation_of[n]))));
      continue;
    }
    if (fused[n].empty()) {
      r.set(graph.node_value(n), r.copy_node(node));
      continue;
    }
    std::vector<ValueId> in;
    for (ValueId v : node.inputs) in.push_back(r.map(v));
    Attrs attrs = node.attrs;
    attrs.set("epilogue", fused[n]);
    r.set(graph.node_value(n), r.add(node.op, in, attrs));
  }
  return {r.finish(graph.outputs), true};
}

PassResult fuse_gemm_epilogues(const Graph& graph) {
  const SoleReaders sole_reader(graph);
  std::vector<Fusion> fusions;
  std::vector<int> fused_at(graph.nodes.size(), -1);  // end node → fusion
  std::vector<bool> skip(graph.nodes.size(), false);
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& mm = graph.nodes[n];
    if (mm.op != Op::matmul || mm.attrs.has("epilogue") || !gemm_dtype(mm.type.dtype)) continue;
    const TensorType& a = graph.value_type(mm.inputs[0]);
    const TensorType& b = graph.value_type(mm.inputs[1]);
    if (a.shape.size() < 2) continue;
    Fusion f;
    f.end = n;
    f.inputs = mm.inputs;
    const int32_t b_producer = graph.node_index(mm.inputs[1]);
    if (b.shape.size() == 2 && b_producer >= 0) {
      const Node& p = graph.nodes[static_cast<size_t>(b_producer)];
      if (p.op == Op::permute && p.attrs.get_ints("dims") == std::vector<int64_t>{1, 0}) {
        f.op = Op::linear;
        f.inputs = {mm.inputs[0], p.inputs[0]};
      }
    }
    const Node* next = sole_reader(f.end);
    if (f.op == Op::linear && next && next->op == Op::add && next->inputs.size() == 2 &&
        next->inputs[0] == graph.node_value(f.end) &&
        graph.value_type(next->inputs[1]).shape == SymShape{mm.type.shape.back()} &&
        graph.value_type(next->inputs[1]).dtype == mm.type.dtype && next->type == mm.type) {
      f.inputs.push_back(next->inputs[1]);
      f.absorbed.push_back(f.end);
      f.end = static_cast<size_t>(next - graph.nodes.data());
      next = sole_reader(f.end);
    }
    if (next && next->op == Op::relu && next->type == mm.type) {
      f.relu = true;
      f.absorbed.push_back(f.end);
      f.end = static_cast<size_t>(next - graph.nodes.data());
    }
    if (f.op == Op::matmul && !f.relu) continue;
    for (size_t s : f.absorbed) skip[s] = true;
    fused_at[f.end] = static_cast<int>(fusions.size());
    fusions.push_back(std::move(f));
  }
  if (fusions.empty()) return {graph, false};
  Rebuilder r(graph);
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    if (skip[n]) continue;
    const ValueId value = graph.node_value(n);
    if (fused_at[n] < 0) {
      r.set(value, r.copy_node(graph.nodes[n]));
      continue;
    }
    const Fusion& f = fusions[static_cast<size_t>(fused_at[n])];
    std::vector<ValueId> in;
    for (ValueId v : f.inputs) in.push_back(r.map(v));
    Attrs attrs;
    if (f.relu) attrs.set("epilogue", std::string("relu"));
    r.set(value, r.add(f.op, in, attrs));
  }
  return eliminate_dead_nodes(r.finish(graph.outputs));
}

}  // namespace kiln
