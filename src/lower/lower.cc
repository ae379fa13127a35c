#include "lower/lower.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "lower/view_strides.h"

namespace kiln {

namespace {

enum class Role { Pointwise, View, Ext };
enum class State { Inline, KernelRoot, ExtStep, InGroup };

// A row group: reductions over the same dims of the same domain, and the pointwise nodes
// between and after them, computed by one row kernel (softmax and layer_norm each become
// one kernel).
struct Group {
  SymShape domain;
  std::vector<int64_t> dims;  // reduced, sorted
  bool open = true;
  std::vector<size_t> members;  // node indices, in order
  SymShape keep_shape() const {
    SymShape s = domain;
    for (int64_t d : dims) s[static_cast<size_t>(d)] = Dim::constant(1);
    return s;
  }
  SymShape flat_shape() const {
    SymShape s;
    for (size_t d = 0; d < domain.size(); ++d)
      if (std::find(dims.begin(), dims.end(), static_cast<int64_t>(d)) == dims.end())
        s.push_back(domain[d]);
    return s;
  }
};

bool is_row_reduction(const Graph& g, const Node& node) {
  if (node.op != Op::sum && node.op != Op::prod && node.op != Op::amax && node.op != Op::amin)
    return false;
  return !g.value_type(node.inputs[0]).shape.empty();
}

Role role_of(const Graph& g, const Node& node) {
  OpRule rule = op_info(node.op).rule;
  if (is_view(rule)) return Role::View;
  if (!is_pointwise(rule)) return Role::Ext;
  if (!is_binary(rule)) return Role::Pointwise;
  // Integer fmod/remainder/pow can fail (division by zero, negative exponents): the eager
  // kernels check and raise; loop kernels cannot.
  std::vector<DType> dtypes;
  for (ValueId v : node.inputs) dtypes.push_back(g.value_type(v).dtype);
  DType compute = binary_compute_dtype(node.op, node.attrs, dtypes);
  bool may_fail = node.op == Op::fmod || node.op == Op::remainder || node.op == Op::pow;
  return may_fail && !is_floating(compute) ? Role::Ext : Role::Pointwise;
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
    form_groups();
    classify();
    Program p;
    p.graph = g_;
    p.read_by_kernel.assign(static_cast<size_t>(g_.num_values()), false);
    for (size_t n = 0; n < g_.nodes.size(); ++n) {
      if (state_[n] == State::ExtStep)
        p.steps.push_back({Step::Kind::Ext, -1, static_cast<int>(n)});
      if (state_[n] == State::InGroup && group_last_[static_cast<size_t>(group_of_[n])] == n) {
        LoopKernel k =
            build_row_kernel(static_cast<size_t>(group_of_[n]), static_cast<int>(p.kernels.size()));
        for (size_t i = static_cast<size_t>(k.num_outputs); i < k.params.size(); ++i)
          p.read_by_kernel[k.params[i]] = true;
        p.steps.push_back(
            {Step::Kind::Kernel, static_cast<int>(p.kernels.size()), static_cast<int>(n)});
        p.kernels.push_back(std::move(k));
      }
      if (state_[n] != State::KernelRoot) continue;
      LoopKernel k = build_kernel(n, static_cast<int>(p.kernels.size()));
      for (size_t i = 1; i < k.params.size(); ++i) p.read_by_kernel[k.params[i]] = true;
      p.steps.push_back(
          {Step::Kind::Kernel, static_cast<int>(p.kernels.size()), static_cast<int>(n)});
      p.kernels.push_back(std::move(k));
    }
    merge_foreach(p);
    return p;
  }

  // Consecutive pointwise kernels with the same ops that do not read each other become one
  // foreach kernel; kernels are then numbered in launch order.
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
      std::set<ValueId> written{run[0].params[0]};
      size_t e = s + 1;
      for (; e < p.steps.size(); ++e) {
        const Step& next = p.steps[e];
        if (next.kind != Step::Kind::Kernel) break;
        LoopKernel& k = p.kernels[static_cast<size_t>(next.kernel)];
        if (k.kind != LoopKernel::Kind::Pointwise || stem(k.name) != stem(run[0].name)) break;
        bool reads_run = std::any_of(k.params.begin() + 1, k.params.end(),
                                     [&](ValueId v) { return written.count(v) > 0; });
        if (reads_run) break;
        written.insert(k.params[0]);
        run.push_back(std::move(k));
      }
      if (run.size() == 1) {
        kernels.push_back(std::move(run[0]));
      } else {
        LoopKernel f;
        f.kind = LoopKernel::Kind::Foreach;
        f.name = "cpp_for" + stem(run[0].name).substr(7);  // cpp_poi_fused_add → cpp_for_fused_add
        f.num_outputs = static_cast<int>(run.size());
        for (const LoopKernel& part : run) {
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
    return n < 0 ? -1 : group_of_[static_cast<size_t>(n)];
  }

  // Which group each node joins. Forward: a reduction joins the latest open group of its
  // domain and dims (or opens one); a pointwise node joins the one group its member inputs
  // belong to when its shape is the domain or the group's row shape, consistently with
  // them. Anything else reading a member closes that group (the member gets realized).
  // Backward: a pointwise node all of whose readers are members of one group joins it.
  void form_groups() {
    const size_t n_nodes = g_.nodes.size();
    group_of_.assign(n_nodes, -1);
    users_.assign(static_cast<size_t>(g_.num_values()), {});
    for (size_t n = 0; n < n_nodes; ++n)
      for (ValueId v : g_.nodes[n].inputs) users_[v].push_back(n);
    outputs_ = std::set<ValueId>(g_.outputs.begin(), g_.outputs.end());
    for (size_t n = 0; n < n_nodes; ++n) {
      const Node& node = g_.nodes[n];
      int joined = -1;
      if (is_row_reduction(g_, node)) {
        const SymShape& domain = g_.value_type(node.inputs[0]).shape;
        auto dims = reduction_dims(node.attrs.get_ints("dims"), static_cast<int64_t>(domain.size()),
                                   "lower");
        int input_group = member_group(node.inputs[0]);
        if (input_group >= 0) {
          const Group& ig = groups_[static_cast<size_t>(input_group)];
          if (ig.open && ig.domain == domain && ig.dims == dims) joined = input_group;
        } else {
          for (size_t k = groups_.size(); k-- > 0 && joined < 0;)
            if (groups_[k].open && groups_[k].domain == domain && groups_[k].dims == dims)
              joined = static_cast<int>(k);
        }
        if (joined < 0) {
          groups_.push_back({domain, dims, true, {}});
          joined = static_cast<int>(groups_.size() - 1);
        }
      } else if (role_of(g_, node) == Role::Pointwise) {
        joined = pointwise_group(node);
      }
      if (joined >= 0) {
        group_of_[n] = joined;
        groups_[static_cast<size_t>(joined)].members.push_back(n);
      }
      // A group read from outside must run before that reader: it takes no more members.
      for (ValueId v : node.inputs)
        if (int h = member_group(v); h >= 0 && h != joined)
          groups_[static_cast<size_t>(h)].open = false;
    }
    for (size_t n = n_nodes; n-- > 0;) {
      const Node& node = g_.nodes[n];
      ValueId v = g_.node_value(n);
      const auto& u = users_[v];
      if (group_of_[n] >= 0 || role_of(g_, node) != Role::Pointwise || u.empty() ||
          outputs_.count(v))
        continue;
      int g = group_of_[u[0]];
      bool all_in =
          g >= 0 && std::all_of(u.begin(), u.end(), [&](size_t c) { return group_of_[c] == g; });
      if (!all_in) continue;
      const Group& grp = groups_[static_cast<size_t>(g)];
      if (node.type.shape != grp.domain && node.type.shape != grp.keep_shape()) continue;
      group_of_[n] = g;
    }
    group_last_.assign(groups_.size(), 0);
    for (size_t n = 0; n < n_nodes; ++n)
      if (group_of_[n] >= 0) group_last_[static_cast<size_t>(group_of_[n])] = n;
    for (size_t k = 0; k < groups_.size(); ++k) {
      groups_[k].members.clear();
      for (size_t n = 0; n < n_nodes; ++n)
        if (group_of_[n] == static_cast<int>(k)) groups_[k].members.push_back(n);
    }
  }

  int pointwise_group(const Node& node) {
    int g = -1;
    for (ValueId v : node.inputs) {
      int h = member_group(v);
      if (h < 0) continue;
      if (g >= 0 && h != g) return -1;
      g = h;
    }
    if (g < 0 || !groups_[static_cast<size_t>(g)].open) return -1;
    const Group& grp = groups_[static_cast<size_t>(g)];
    const SymShape& shape = node.type.shape;
    bool full = shape == grp.domain, keep = shape == grp.keep_shape(),
         flat = shape == grp.flat_shape();
    for (ValueId v : node.inputs) {
      if (member_group(v) != g) continue;
      const SymShape& in = g_.value_type(v).shape;
      bool ok = full ? (in == grp.domain || in == grp.keep_shape()) : (keep || flat) && in == shape;
      if (!ok) return -1;
    }
    return full || keep || flat ? g : -1;
  }

  void classify() {
    const size_t n_nodes = g_.nodes.size();
    const auto& users = users_;
    const auto& outputs = outputs_;
    state_.assign(n_nodes, State::Inline);
    // Consumers come later in the list, so deciding from the back sees them decided.
    for (size_t n = n_nodes; n-- > 0;) {
      const Node& node = g_.nodes[n];
      ValueId v = g_.node_value(n);
      const auto& u = users[v];
      bool is_output = outputs.count(v) > 0;
      if (group_of_[n] >= 0) {
        state_[n] = State::InGroup;
        continue;
      }
      bool ext_user =
          std::any_of(u.begin(), u.end(), [&](size_t c) { return state_[c] == State::ExtStep; });
      switch (role_of(g_, node)) {
        case Role::Ext:
          state_[n] = State::ExtStep;
          break;
        case Role::View:
          // Kernels always inline views (index arithmetic); ext readers get an eager view,
          // unless it would copy: then a generated copy kernel is cheaper.
          state_[n] = is_output || (ext_user && reshape_copies(g_, node)) ? State::KernelRoot
                      : ext_user                                          ? State::ExtStep
                                                                          : State::Inline;
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
    if (current_group_ >= 0 && group_of_[static_cast<size_t>(n)] == current_group_) return false;
    return state_[static_cast<size_t>(n)] != State::Inline && v != root_;
  }

  // A member of the group being built is read from outside it, or is a graph output.
  bool member_escapes(size_t n) const {
    ValueId v = g_.node_value(n);
    if (outputs_.count(v)) return true;
    for (size_t c : users_[v])
      if (group_of_[c] != group_of_[n]) return true;
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
    if (current_group_ >= 0 && group_of_[node_index] == current_group_ &&
        is_row_reduction(g_, node)) {
      return make_accumulator(node.type.dtype, phase_of_.at(node_index));
    }
    ops_.insert(std::string(op_name(node.op)));
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
            index_const(node.attrs.get_int("start")),
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
    params_ = {root_};
    ops_.clear();
    view_ops_.clear();
    std::vector<IndexPtr> idx;
    for (size_t d = 0; d < node.type.shape.size(); ++d)
      idx.push_back(index_var(static_cast<int64_t>(d)));
    LoopKernel k;
    k.shape = node.type.shape;
    Store st{0, contiguous_offset(idx, node.type.shape), build(root_, idx)};
    k.stores.push_back(st);
    k.params = params_;
    for (ValueId v : params_) k.param_dtypes.push_back(g_.value_type(v).dtype);
    std::set<std::string>& names = ops_.empty() ? view_ops_ : ops_;
    k.name = fmt::format("cpp_poi_fused_{}_{}", fmt::join(names, "_"), counter);
    k.flat = all_loads_at(k.stores[0].value, k.stores[0].index);
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
    const Group& grp = groups_[gi];
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
    if (e->kind == Expr::Kind::Load) return same_index(e->index, index);
    if (e->kind == Expr::Kind::Accumulator) return true;
    for (const ExprPtr& a : e->args)
      if (!all_loads_at(a, index)) return false;
    return true;
  }

  const Graph& g_;
  std::vector<State> state_;
  std::vector<int> group_of_;
  std::vector<size_t> group_last_;
  std::vector<Group> groups_;
  std::vector<std::vector<size_t>> users_;
  std::set<ValueId> outputs_;
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
