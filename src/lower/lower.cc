#include "lower/lower.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "lower/plan_fusion.h"
#include "lower/view_strides.h"

namespace kiln {

namespace {

// Parameters of one foreach kernel at most: a CUDA kernel's argument block holds 64
// buffers (kernel_abi.h), and one function of hundreds of loops costs gcc -O3 seconds
// (500 independent adds took 20 s as one kernel).
constexpr size_t kMaxForeachParams = 48;

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
  explicit Lowering(const Graph& g) : g_(g), plan_(plan_fusion(g)) {}

  Program run() {
    Program p;
    p.graph = g_;
    p.read_by_kernel.assign(static_cast<size_t>(g_.num_values()), false);
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      if (plan_.state[n] == State::ExtStep)
        p.steps.push_back({Step::Kind::Ext, -1, static_cast<int>(n)});
      if (plan_.state[n] == State::InGroup &&
          plan_.group_last[static_cast<size_t>(plan_.group_of[n])] == n) {
        LoopKernel k = build_row_kernel(static_cast<size_t>(plan_.group_of[n]),
                                        static_cast<int>(p.kernels.size()));
        for (size_t i = static_cast<size_t>(k.num_outputs); i < k.params.size(); ++i)
          p.read_by_kernel[k.params[i]] = true;
        p.steps.push_back(
            {Step::Kind::Kernel, static_cast<int>(p.kernels.size()), static_cast<int>(n)});
        p.kernels.push_back(std::move(k));
      }
      if (plan_.state[n] != State::KernelRoot) continue;
      LoopKernel k = build_kernel(n, static_cast<int>(p.kernels.size()));
      for (size_t i = static_cast<size_t>(k.num_outputs); i < k.params.size(); ++i)
        p.read_by_kernel[k.params[i]] = true;
      p.steps.push_back(
          {Step::Kind::Kernel, static_cast<int>(p.kernels.size()), static_cast<int>(n)});
      p.kernels.push_back(std::move(k));
    }
    merge_foreach(p);
    return p;
  }

  // Consecutive pointwise kernels with the same ops that do not read each other become one
  // foreach kernel of at most kMaxForeachParams parameters; kernels are then numbered in
  // launch order.
  static void merge_foreach(Program& p) {
    auto stem = [](const std::string& name) { return name.substr(0, name.find_last_of('_')); };
    std::vector<LoopKernel> kernels;
    std::vector<Step> steps;
    for (size_t s = 0; s < p.steps.size();) {
      const Step& step = p.steps[s];
      if (step.kind != Step::Kind::Kernel ||
          p.kernels[static_cast<size_t>(step.kernel)].kind != LoopKernel::Kind::Pointwise) {
        if (step.kind == Step::Kind::Kernel) {
          steps.push_back({Step::Kind::Kernel, static_cast<int>(kernels.size()), step.node});
          kernels.push_back(std::move(p.kernels[static_cast<size_t>(step.kernel)]));
        } else {
          steps.push_back(step);
        }
        ++s;
        continue;
      }
      std::vector<LoopKernel> run{std::move(p.kernels[static_cast<size_t>(step.kernel)])};
      auto outputs_of = [](const LoopKernel& k) {
        return std::vector<ValueId>(k.params.begin(), k.params.begin() + k.num_outputs);
      };
      std::vector<ValueId> first = outputs_of(run[0]);
      std::set<ValueId> written(first.begin(), first.end());
      size_t run_params = run[0].params.size();
      size_t e = s + 1;
      for (; e < p.steps.size(); ++e) {
        const Step& next = p.steps[e];
        if (next.kind != Step::Kind::Kernel) break;
        LoopKernel& k = p.kernels[static_cast<size_t>(next.kernel)];
        if (k.kind != LoopKernel::Kind::Pointwise || stem(k.name) != stem(run[0].name)) break;
        if (run_params + k.params.size() > kMaxForeachParams) break;
        bool reads_run = std::any_of(k.params.begin() + k.num_outputs, k.params.end(),
                                     [&](ValueId v) { return written.count(v) > 0; });
        if (reads_run) break;
        for (ValueId v : outputs_of(k)) written.insert(v);
        run_params += k.params.size();
        run.push_back(std::move(k));
      }
      if (run.size() == 1) {
        kernels.push_back(std::move(run[0]));
      } else {
        LoopKernel f;
        f.kind = LoopKernel::Kind::Foreach;
        f.name = "cpp_for" + stem(run[0].name).substr(7);  // cpp_poi_fused_add → cpp_for_fused_add
        f.num_outputs = 0;  // how many params it writes, over its parts (writes_param)
        for (const LoopKernel& part : run) {
          f.num_outputs += part.num_outputs;
          f.params.insert(f.params.end(), part.params.begin(), part.params.end());
          f.param_dtypes.insert(f.param_dtypes.end(), part.param_dtypes.begin(),
                                part.param_dtypes.end());
        }
        f.parts = std::move(run);
        kernels.push_back(std::move(f));
      }
      steps.push_back(
          {Step::Kind::Kernel, static_cast<int>(kernels.size() - 1), p.steps[e - 1].node});
      s = e;
    }
    for (size_t k = 0; k < kernels.size(); ++k) {
      std::string& name = kernels[k].name;
      if (kernels[k].kind != LoopKernel::Kind::Foreach) name = stem(name);
      name = fmt::format("{}_{}", name, k);
    }
    p.kernels = std::move(kernels);
    p.steps = std::move(steps);
  }

 private:
  int member_group(ValueId v) const {
    int32_t n = g_.node_index(v);
    return n < 0 ? -1 : plan_.group_of[static_cast<size_t>(n)];
  }

  bool realized(ValueId v) const {
    int32_t n = g_.node_index(v);
    if (n < 0) return true;
    if (role_of(g_, g_.nodes[static_cast<size_t>(n)]) == Role::View) return false;
    if (current_group_ >= 0 && plan_.group_of[static_cast<size_t>(n)] == current_group_)
      return false;
    // A value stored with a kernel is read only by that kernel, which computes it.
    State state = plan_.state[static_cast<size_t>(n)];
    return state != State::Inline && state != State::StoredWith && v != root_;
  }

  // A member of the group being built is read from outside it, or is a graph output.
  bool member_escapes(size_t n) const {
    ValueId v = g_.node_value(n);
    if (plan_.outputs.count(v)) return true;
    for (size_t c : plan_.users[v])
      if (plan_.group_of[c] != plan_.group_of[n]) return true;
    return false;
  }

  ExprPtr load(ValueId v, IndexPtr offset) {
    auto it = std::find(params_.begin(), params_.end(), v);
    int param = static_cast<int>(it - params_.begin());
    if (it == params_.end()) params_.push_back(v);
    Access access = access_of(offset);
    return make_load(g_.value_type(v).dtype, param, std::move(offset), access);
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

  // The expression of value `v` at `idx`, shared when asked again within one kernel (so
  // the emitter computes it once per scope).
  ExprPtr build(ValueId v, const std::vector<IndexPtr>& idx) {
    MemoKey key{v, idx};
    auto it = memo_.find(key);
    if (it != memo_.end()) return it->second;
    ExprPtr e = build_uncached(v, idx);
    memo_.emplace(std::move(key), e);
    return e;
  }

  // What an access at `offset` is to the row kernel being built (the domain element's or
  // the row's linear index, compared structurally), or `other` outside row kernels.
  Access access_of(const IndexPtr& offset) const {
    if (current_group_ < 0) return Access::other;
    if (same_index(offset, row_element_offset_)) return Access::row_element;
    if (same_index(offset, row_offset_)) return Access::row;
    return Access::other;
  }

  ExprPtr build_uncached(ValueId v, const std::vector<IndexPtr>& idx) {
    const TensorType& type = g_.value_type(v);
    if (realized(v)) return load(v, contiguous_offset(idx, type.shape));
    const size_t node_index = static_cast<size_t>(g_.node_index(v));
    const Node& node = g_.nodes[node_index];
    if (role_of(g_, node) == Role::View) return build_view(node, idx);
    if (current_group_ >= 0 && plan_.group_of[node_index] == current_group_ &&
        is_row_reduction(g_, node)) {
      return make_accumulator(node.type.dtype, phase_of_.at(node_index));
    }
    ops_.insert(std::string(op_name(node.op)));
    if (op_info(node.op).rule == OpRule::Random) {
      // The generator state's seed and offset, and which element of the draw this is.
      const ValueId state = node.inputs[0];
      IndexPtr element = contiguous_offset(idx, type.shape);
      Access access = access_of(element);
      return make_random(node.op, node.type.dtype, node.attrs.get_int("draw"),
                         build(state, {index_const(0)}), build(state, {index_const(1)}),
                         std::move(element), access);
    }
    if (node.op == Op::arange) {
      IndexPtr element = contiguous_offset(idx, type.shape);
      Access access = access_of(element);
      return make_arange(node.type.dtype, node.attrs.get_double("step"), build(node.inputs[0], {}),
                         std::move(element), access);
    }
    std::vector<ExprPtr> args;
    for (ValueId in : node.inputs)
      args.push_back(build(in, broadcast(idx, type.shape, g_.value_type(in).shape)));
    return make_apply(node.op, node.type.dtype, node.attrs, std::move(args));
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
          in_idx[static_cast<size_t>(dims[k] < 0 ? dims[k] + static_cast<int64_t>(dims.size())
                                                 : dims[k])] = idx[k];
        break;
      }
      case Op::slice: {
        int64_t dim = node.attrs.get_int("dim");
        if (dim < 0) dim += static_cast<int64_t>(in.size());
        in_idx = idx;
        in_idx[static_cast<size_t>(dim)] = index_add(
            index_dim(node.attrs.get_dim("start")),
            index_mul(index_const(node.attrs.get_int("step", 1)), idx[static_cast<size_t>(dim)]));
        break;
      }
      case Op::expand:
        in_idx = broadcast(idx, out, in);
        break;
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
      default:
        break;
    }
    return build(src, in_idx);
  }

  LoopKernel build_kernel(size_t n, int counter) {
    const Node& node = g_.nodes[n];
    root_ = g_.node_value(n);
    memo_.clear();
    ops_.clear();
    view_ops_.clear();
    std::vector<IndexPtr> idx;
    for (size_t d = 0; d < node.type.shape.size(); ++d)
      idx.push_back(index_var(static_cast<int64_t>(d)));
    // Outputs: the root, then the values stored with it (plan_fusion's share_kernels), in
    // node order, each at the loop's element (they have the root's shape).
    std::vector<ValueId> outputs{root_};
    for (size_t m : plan_.stored_by[n]) outputs.push_back(g_.node_value(m));
    params_ = outputs;
    LoopKernel k;
    k.shape = node.type.shape;
    k.num_outputs = static_cast<int>(outputs.size());
    const IndexPtr element = contiguous_offset(idx, node.type.shape);
    for (size_t j = 0; j < outputs.size(); ++j)
      k.stores.push_back({static_cast<int>(j), element, build(outputs[j], idx)});
    k.params = params_;
    for (ValueId v : params_) k.param_dtypes.push_back(g_.value_type(v).dtype);
    std::set<std::string>& names = ops_.empty() ? view_ops_ : ops_;
    k.name = fmt::format("cpp_poi_fused_{}_{}", fmt::join(names, "_"), counter);
    k.flat = std::all_of(k.stores.begin(), k.stores.end(),
                         [](const Store& st) { return all_loads_at(st.value, st.index); });
    root_ = -1;
    return k;
  }

  // The index of the element of the domain at row i0, reduction position i1: each dim's
  // index decomposed from the flat row or reduction index.
  std::vector<IndexPtr> domain_index(const Group& grp, bool with_reduction) {
    std::vector<IndexPtr> idx(grp.domain.size());
    IndexPtr row_stride = index_const(1), red_stride = index_const(1);
    std::vector<size_t> kept, reduced;
    for (size_t d = 0; d < grp.domain.size(); ++d)
      (std::find(grp.dims.begin(), grp.dims.end(), static_cast<int64_t>(d)) != grp.dims.end()
           ? reduced
           : kept)
          .push_back(d);
    auto decompose = [&](const std::vector<size_t>& dims, IndexPtr var) {
      IndexPtr stride = index_const(1);
      for (size_t k = dims.size(); k-- > 0;) {
        size_t d = dims[k];
        IndexPtr q = index_div(var, stride);
        idx[d] = k == 0 ? q : index_mod(q, index_dim(grp.domain[d]));
        stride = index_mul(index_dim(grp.domain[d]), stride);
      }
    };
    decompose(kept, index_var(0));
    if (with_reduction)
      decompose(reduced, index_var(1));
    else
      for (size_t d : reduced) idx[d] = index_const(0);
    return idx;
  }

  LoopKernel build_row_kernel(size_t gi, int counter) {
    const Group& grp = plan_.groups[gi];
    current_group_ = static_cast<int>(gi);
    memo_.clear();
    ops_.clear();
    view_ops_.clear();
    phase_of_.clear();
    LoopKernel k;
    k.kind = LoopKernel::Kind::Row;
    k.shape = grp.domain;
    k.reduced_dims = grp.dims;
    // Outputs first: the members read outside the group.
    params_.clear();
    for (size_t n : grp.members)
      if (member_escapes(n)) params_.push_back(g_.node_value(n));
    k.num_outputs = static_cast<int>(params_.size());
    std::vector<IndexPtr> full = domain_index(grp, true), row = domain_index(grp, false);
    row_element_offset_ = contiguous_offset(full, grp.domain);
    row_offset_ = contiguous_offset(row, grp.keep_shape());
    for (size_t n : grp.members) {
      const Node& node = g_.nodes[n];
      if (!is_row_reduction(g_, node)) continue;
      phase_of_[n] = static_cast<int>(k.phases.size());
      ops_.insert(std::string(op_name(node.op)));
      k.phases.push_back({node.op, build(node.inputs[0], full), node.type.dtype});
    }
    for (size_t n : grp.members) {
      if (!member_escapes(n)) continue;
      const Node& node = g_.nodes[n];
      ValueId v = g_.node_value(n);
      int param = static_cast<int>(std::find(params_.begin(), params_.end(), v) - params_.begin());
      bool element = node.type.shape == grp.domain;
      std::vector<IndexPtr> at = element ? full : row;
      if (node.type.shape == grp.flat_shape() && node.type.shape != grp.keep_shape()) {
        at.clear();
        for (size_t d = 0; d < grp.domain.size(); ++d)
          if (std::find(grp.dims.begin(), grp.dims.end(), static_cast<int64_t>(d)) ==
              grp.dims.end())
            at.push_back(row[d]);
      }
      IndexPtr offset = contiguous_offset(at, node.type.shape);
      Store st{param, offset, build(v, at), access_of(offset)};
      (element ? k.stores : k.row_stores).push_back(std::move(st));
    }
    k.params = params_;
    for (ValueId v : params_) k.param_dtypes.push_back(g_.value_type(v).dtype);
    k.name = fmt::format("cpp_{}_fused_{}_{}", kernel_kind_word(k), fmt::join(ops_, "_"), counter);
    // Trailing reduced dims: every full-domain access at the domain's linear index.
    bool trailing = !grp.dims.empty() &&
                    grp.dims.back() == static_cast<int64_t>(grp.domain.size()) - 1 &&
                    grp.dims.front() == static_cast<int64_t>(grp.domain.size() - grp.dims.size());
    k.flat = trailing;
    // Leading reduced dims (a column reduction): rows are the contiguous inner index.
    bool leading = !grp.dims.empty() && grp.dims.front() == 0 &&
                   grp.dims.back() == static_cast<int64_t>(grp.dims.size()) - 1 &&
                   grp.dims.size() < grp.domain.size();
    k.columns = leading && !trailing;
    current_group_ = -1;
    row_element_offset_ = row_offset_ = nullptr;
    return k;
  }

  static bool all_loads_at(const ExprPtr& e, const IndexPtr& index) {
    // A load at a constant index (a 0-d operand, the generator state) reads one element
    // whatever the element: it renders as that index in a flat kernel too.
    bool all = true;
    visit_nodes({e.get()}, [&](const Expr& x) {
      if (x.kind() == Expr::Kind::Load)
        all &= same_index(x.load().index, index) || is_constant_load(x);
      else if (x.kind() == Expr::Kind::Position)
        all &= same_index(x.position().index, index);
    });
    return all;
  }

  const Graph& g_;
  const FusionPlan plan_;
  int current_group_ = -1;
  std::map<size_t, int> phase_of_;
  // Expressions built within one kernel, by value and index (compared structurally), so a
  // value read twice at the same place is one node.
  struct MemoKey {
    ValueId value;
    std::vector<IndexPtr> index;
    bool operator==(const MemoKey& o) const {
      if (value != o.value || index.size() != o.index.size()) return false;
      for (size_t i = 0; i < index.size(); ++i)
        if (!same_index(index[i], o.index[i])) return false;
      return true;
    }
  };
  struct MemoHash {
    size_t operator()(const MemoKey& k) const {
      size_t h = std::hash<ValueId>()(k.value);
      for (const IndexPtr& i : k.index) h = h * 31 + index_hash(i);
      return h;
    }
  };
  std::unordered_map<MemoKey, ExprPtr, MemoHash> memo_;
  IndexPtr row_element_offset_, row_offset_;  // the row kernel being built's (access_of)
  ValueId root_ = -1;
  std::vector<ValueId> params_;
  std::set<std::string> ops_, view_ops_;
};

}  // namespace

Program lower_graph(const Graph& graph) { return Lowering(graph).run(); }

}  // namespace kiln
