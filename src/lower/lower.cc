#include "lower/lower.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

namespace kiln {

namespace {

enum class Role { Pointwise, View, Ext };
enum class State { Inline, KernelRoot, ExtStep };

Role role_of(const Graph& g, const Node& node) {
  OpRule rule = op_info(node.op).rule;
  if (is_view(rule)) return Role::View;
  switch (rule) {
    case OpRule::UnarySame:
    case OpRule::UnaryFloat:
    case OpRule::UnaryPredicate:
    case OpRule::Where:
    case OpRule::Clamp:
    case OpRule::Cast: return Role::Pointwise;
    case OpRule::BinaryArith:
    case OpRule::BinaryFloat:
    case OpRule::Compare:
    case OpRule::Logical: {
      // Integer fmod/remainder/pow can fail (division by zero, negative exponents): the
      // eager kernels check and raise; loop kernels cannot.
      std::vector<DType> dtypes;
      for (ValueId v : node.inputs) dtypes.push_back(g.value_type(v).dtype);
      DType compute = binary_compute_dtype(node.op, node.attrs, dtypes);
      bool may_fail = node.op == Op::fmod || node.op == Op::remainder || node.op == Op::pow;
      return may_fail && !is_floating(compute) ? Role::Ext : Role::Pointwise;
    }
    default: return Role::Ext;
  }
}

IndexPtr contiguous_offset(const std::vector<IndexPtr>& idx, const SymShape& shape) {
  IndexPtr offset = index_const(0), stride = index_const(1);
  for (size_t d = shape.size(); d-- > 0;) {
    offset = index_add(index_mul(idx[d], stride), offset);
    stride = index_mul(index_dim(shape[d]), stride);
  }
  return offset;
}

class Lowering {
 public:
  explicit Lowering(const Graph& g) : g_(g) {}

  Program run() {
    classify();
    Program p;
    p.graph = g_;
    p.read_by_kernel.assign(static_cast<size_t>(g_.num_values()), false);
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      if (state_[n] == State::ExtStep) p.steps.push_back({Step::Kind::Ext, -1, static_cast<int>(n)});
      if (state_[n] != State::KernelRoot) continue;
      LoopKernel k = build_kernel(n, static_cast<int>(p.kernels.size()));
      for (size_t i = 1; i < k.params.size(); ++i) p.read_by_kernel[k.params[i]] = true;
      p.steps.push_back({Step::Kind::Kernel, static_cast<int>(p.kernels.size()), static_cast<int>(n)});
      p.kernels.push_back(std::move(k));
    }
    return p;
  }

 private:
  void classify() {
    const size_t n_nodes = g_.nodes.size();
    std::vector<std::vector<size_t>> users(static_cast<size_t>(g_.num_values()));
    for (size_t n = 0; n < n_nodes; ++n)
      for (ValueId v : g_.nodes[n].inputs) users[v].push_back(n);
    std::set<ValueId> outputs(g_.outputs.begin(), g_.outputs.end());
    state_.assign(n_nodes, State::Inline);
    // Consumers come later in the list, so deciding from the back sees them decided.
    for (size_t n = n_nodes; n-- > 0;) {
      const Node& node = g_.nodes[n];
      ValueId v = g_.node_value(n);
      const auto& u = users[v];
      bool is_output = outputs.count(v) > 0;
      bool ext_user = std::any_of(u.begin(), u.end(), [&](size_t c) { return state_[c] == State::ExtStep; });
      switch (role_of(g_, node)) {
        case Role::Ext: state_[n] = State::ExtStep; break;
        case Role::View:
          // Kernels always inline views (index arithmetic); ext readers get an eager view.
          state_[n] = is_output ? State::KernelRoot : ext_user ? State::ExtStep : State::Inline;
          break;
        case Role::Pointwise: {
          bool single_kernel_user =
              u.size() == 1 && state_[u[0]] != State::ExtStep &&
              !(role_of(g_, g_.nodes[u[0]]) == Role::View && state_[u[0]] != State::Inline);
          state_[n] = is_output || !single_kernel_user ? State::KernelRoot : State::Inline;
          break;
        }
      }
    }
  }

  bool realized(ValueId v) const {
    int32_t n = g_.node_index(v);
    if (n < 0) return true;
    if (role_of(g_, g_.nodes[static_cast<size_t>(n)]) == Role::View) return false;
    return state_[static_cast<size_t>(n)] != State::Inline && v != root_;
  }

  ExprPtr load(ValueId v, IndexPtr offset) {
    auto it = std::find(params_.begin(), params_.end(), v);
    int param = static_cast<int>(it - params_.begin());
    if (it == params_.end()) params_.push_back(v);
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::Load;
    e->dtype = g_.value_type(v).dtype;
    e->param = param;
    e->index = std::move(offset);
    return e;
  }

  // Index of an input of shape `in` read at `idx` of a result of shape `out` (broadcast).
  static std::vector<IndexPtr> broadcast(const std::vector<IndexPtr>& idx, const SymShape& out,
                                         const SymShape& in) {
    std::vector<IndexPtr> r;
    size_t shift = out.size() - in.size();
    for (size_t j = 0; j < in.size(); ++j)
      r.push_back(in[j].is_one() && !out[shift + j].is_one() ? index_const(0) : idx[shift + j]);
    return r;
  }

  ExprPtr build(ValueId v, const std::vector<IndexPtr>& idx) {
    const TensorType& type = g_.value_type(v);
    if (realized(v)) return load(v, contiguous_offset(idx, type.shape));
    const Node& node = g_.nodes[static_cast<size_t>(g_.node_index(v))];
    if (role_of(g_, node) == Role::View) return build_view(node, idx);
    ops_.insert(std::string(op_name(node.op)));
    auto apply = std::make_shared<Expr>();
    apply->kind = Expr::Kind::Apply;
    apply->dtype = node.type.dtype;
    apply->op = node.op;
    apply->attrs = node.attrs;
    for (ValueId in : node.inputs)
      apply->args.push_back(build(in, broadcast(idx, type.shape, g_.value_type(in).shape)));
    return apply;
  }

  ExprPtr build_view(const Node& node, const std::vector<IndexPtr>& idx) {
    view_ops_.insert(std::string(op_name(node.op)));
    ValueId src = node.inputs[0];
    const SymShape& in = g_.value_type(src).shape;
    const SymShape& out = node.type.shape;
    std::vector<IndexPtr> in_idx(in.size());
    switch (node.op) {
      case Op::permute: {
        auto dims = node.attrs.get_ints("dims");
        for (size_t k = 0; k < dims.size(); ++k)
          in_idx[static_cast<size_t>(dims[k] < 0 ? dims[k] + static_cast<int64_t>(dims.size()) : dims[k])] = idx[k];
        break;
      }
      case Op::slice: {
        int64_t dim = node.attrs.get_int("dim");
        if (dim < 0) dim += static_cast<int64_t>(in.size());
        in_idx = idx;
        in_idx[static_cast<size_t>(dim)] =
            index_add(index_const(node.attrs.get_int("start")),
                      index_mul(index_const(node.attrs.get_int("step", 1)), idx[static_cast<size_t>(dim)]));
        break;
      }
      case Op::expand: in_idx = broadcast(idx, out, in); break;
      case Op::reshape: {
        IndexPtr linear = contiguous_offset(idx, out);
        if (realized(src)) return load(src, linear);
        IndexPtr stride = index_const(1);
        for (size_t j = in.size(); j-- > 0;) {
          IndexPtr q = index_div(linear, stride);
          in_idx[j] = j == 0 ? q : index_mod(q, index_dim(in[j]));
          stride = index_mul(index_dim(in[j]), stride);
        }
        break;
      }
      default: break;
    }
    return build(src, in_idx);
  }

  LoopKernel build_kernel(size_t n, int counter) {
    const Node& node = g_.nodes[n];
    root_ = g_.node_value(n);
    params_ = {root_};
    ops_.clear();
    view_ops_.clear();
    std::vector<IndexPtr> idx;
    for (size_t d = 0; d < node.type.shape.size(); ++d) idx.push_back(index_var(static_cast<int64_t>(d)));
    LoopKernel k;
    k.shape = node.type.shape;
    k.store_index = contiguous_offset(idx, node.type.shape);
    k.body = build(root_, idx);
    k.params = params_;
    for (ValueId v : params_) k.param_dtypes.push_back(g_.value_type(v).dtype);
    std::set<std::string>& names = ops_.empty() ? view_ops_ : ops_;
    k.name = fmt::format("cpp_poi_fused_{}_{}", fmt::join(names, "_"), counter);
    k.flat = all_loads_at(k.body, render_index(k.store_index));
    root_ = -1;
    return k;
  }

  static bool all_loads_at(const ExprPtr& e, const std::string& index) {
    if (e->kind == Expr::Kind::Load) return render_index(e->index) == index;
    for (const ExprPtr& a : e->args)
      if (!all_loads_at(a, index)) return false;
    return true;
  }

  const Graph& g_;
  std::vector<State> state_;
  ValueId root_ = -1;
  std::vector<ValueId> params_;
  std::set<std::string> ops_, view_ops_;
};

}  // namespace

Program lower_graph(const Graph& graph) { return Lowering(graph).run(); }

}  // namespace kiln
