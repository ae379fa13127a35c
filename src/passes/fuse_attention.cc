// Before decomposition: attention written out as ops,
//   matmul(q, permute(k, swap last two)) [* s | / s] → softmax(-1) → matmul(·, v)
// becomes one attention(q, k, v, scale=s, divide) node, which the GPU runs as one fused
// kernel and the CPU in one pass over the keys, neither writing the scores
// (eager/attention.cc). q, k and v must share their batch dims and a dtype the plan's device
// fuses (GPU: f32, f16, bf16; CPU: f32, whose other dtypes would run the unfused eager ops
// instead of generated kernels), and each intermediate must be read only by the next node
// of the pattern (not a graph output). The permute left without readers is removed later by
// the dead-node pass.
#include "passes/passes.h"
#include "passes/rebuild.h"

namespace kiln {

namespace {

struct Attention {
  ValueId q = -1, k = -1, v = -1;
  double scale = 1.0;
  bool divide = false;
  std::vector<size_t> absorbed;  // the scores' product, the scaling and the softmax
};

using DTypeTest = bool (*)(DType);
bool gpu_attention_dtype(DType d) { return d == DType::f32 || d == DType::f16 || d == DType::bf16; }
bool cpu_attention_dtype(DType d) { return d == DType::f32; }

// k when `kt` is permute(k) swapping its last two dims (the others in place), else -1.
ValueId transposed_from(const Graph& g, ValueId kt) {
  const int32_t p = g.node_index(kt);
  if (p < 0) return -1;
  const Node& node = g.nodes[static_cast<size_t>(p)];
  if (node.op != Op::permute) return -1;
  const std::vector<int64_t> dims = node.attrs.get_ints("dims");
  const auto rank = static_cast<int64_t>(dims.size());
  if (rank < 2) return -1;
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t want = d == rank - 2 ? rank - 1 : d == rank - 1 ? rank - 2 : d;
    if ((dims[static_cast<size_t>(d)] + rank) % rank != want) return -1;
  }
  return node.inputs[0];
}

bool plain_product(const Node& n) { return n.op == Op::matmul && !n.attrs.has("epilogue"); }

// The attention ending at node `end` (the product with v), if the nodes before it match.
std::optional<Attention> match(const Graph& g, const SoleReaders& sole_reader, size_t end,
                               DTypeTest fused_dtype) {
  const Node& pv = g.nodes[end];
  if (!plain_product(pv) || !fused_dtype(pv.type.dtype)) return std::nullopt;
  const int32_t sm = g.node_index(pv.inputs[0]);
  if (sm < 0) return std::nullopt;
  const Node& softmax = g.nodes[static_cast<size_t>(sm)];
  const auto rank = static_cast<int64_t>(softmax.type.shape.size());
  if (softmax.op != Op::softmax || rank < 2 || sole_reader(static_cast<size_t>(sm)) != &pv)
    return std::nullopt;
  if ((softmax.attrs.get_int("dim") + rank) % rank != rank - 1) return std::nullopt;
  Attention a;
  a.absorbed.push_back(static_cast<size_t>(sm));
  int32_t s = g.node_index(softmax.inputs[0]);
  if (s < 0) return std::nullopt;
  const Node* scaling = &g.nodes[static_cast<size_t>(s)];
  if (scaling->op == Op::mul || scaling->op == Op::div) {
    const std::optional<Scalar> value = scaling->attrs.find_scalar("scalar");
    if (!value || scaling->attrs.get_bool("scalar_first", false) || scaling->inputs.size() != 1 ||
        sole_reader(static_cast<size_t>(s)) != &softmax)
      return std::nullopt;
    a.scale = value->to_double();
    a.divide = scaling->op == Op::div;
    a.absorbed.push_back(static_cast<size_t>(s));
    s = g.node_index(scaling->inputs[0]);
    if (s < 0) return std::nullopt;
  }
  const Node& qk = g.nodes[static_cast<size_t>(s)];
  const Node& next = g.nodes[a.absorbed.back()];
  if (!plain_product(qk) || sole_reader(static_cast<size_t>(s)) != &next) return std::nullopt;
  a.absorbed.push_back(static_cast<size_t>(s));
  a.q = qk.inputs[0];
  a.k = transposed_from(g, qk.inputs[1]);
  a.v = pv.inputs[1];
  if (a.k < 0) return std::nullopt;
  const TensorType &q = g.value_type(a.q), &k = g.value_type(a.k), &v = g.value_type(a.v);
  if (q.shape.size() != static_cast<size_t>(rank) || k.shape.size() != q.shape.size() ||
      v.shape.size() != q.shape.size())
    return std::nullopt;
  if (q.dtype != pv.type.dtype || k.dtype != q.dtype || v.dtype != q.dtype) return std::nullopt;
  for (int64_t d = 0; d + 2 < rank; ++d)
    if (!(k.shape[d] == q.shape[d]) || !(v.shape[d] == q.shape[d])) return std::nullopt;
  return a;
}

PassResult fuse_attention_of(const Graph& graph, DTypeTest fused_dtype) {
  const SoleReaders sole_reader(graph);
  std::vector<std::optional<Attention>> ending(graph.nodes.size());
  std::vector<bool> absorbed(graph.nodes.size(), false);
  bool any = false;
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    ending[n] = match(graph, sole_reader, n, fused_dtype);
    if (!ending[n]) continue;
    for (size_t m : ending[n]->absorbed) absorbed[m] = true;
    any = true;
  }
  if (!any) return {graph, false};
  Rebuilder r(graph);
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    if (absorbed[n]) continue;  // read only inside their pattern
    if (!ending[n]) {
      r.set(graph.node_value(n), r.copy_node(graph.nodes[n]));
      continue;
    }
    const Attention& a = *ending[n];
    Attrs attrs;
    attrs.set("scale", a.scale);
    if (a.divide) attrs.set("divide", true);
    r.set(graph.node_value(n), r.add(Op::attention, {r.map(a.q), r.map(a.k), r.map(a.v)}, attrs));
  }
  return {r.finish(graph.outputs), true};
}

}  // namespace

PassResult fuse_attention(const Graph& graph) {
  return fuse_attention_of(graph, gpu_attention_dtype);
}

PassResult fuse_attention_f32(const Graph& graph) {
  return fuse_attention_of(graph, cpu_attention_dtype);
}

}  // namespace kiln
