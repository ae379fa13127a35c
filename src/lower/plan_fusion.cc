#include "lower/plan_fusion.h"

#include <algorithm>

#include "graph/infer.h"
#include "lower/view_strides.h"
#include "support/limits.h"

namespace kiln {

bool is_row_reduction(const Graph& g, const Node& node) {
  if (node.op != Op::sum && node.op != Op::prod && node.op != Op::amax && node.op != Op::amin)
    return false;
  return !g.value_type(node.inputs[0]).shape.empty();
}

Role role_of(const Graph& g, const Node& node) {
  OpRule rule = op_info(node.op).rule;
  if (is_view(rule)) return Role::View;
  // A draw is a pure function of the generator state and the element, an arange of its
  // start and the element: kernels generate them where they are read (loop/kernel.h,
  // make_random and make_arange), so neither is materialized for a fused use.
  if (rule == OpRule::Random || rule == OpRule::Arange) return Role::Pointwise;
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

namespace {

class FusionPlanner {
 public:
  explicit FusionPlanner(const Graph& g) : g_(g) {}

  FusionPlan run() {
    form_groups();
    classify();
    share_kernels();
    return {std::move(state_),  std::move(group_of_), std::move(group_last_), std::move(stored_by_),
            std::move(groups_), std::move(users_),    std::move(outputs_)};
  }

 private:
  int member_group(ValueId v) const {
    int32_t n = g_.node_index(v);
    return n < 0 ? -1 : group_of_[static_cast<size_t>(n)];
  }

  // Which group each node joins. Forward: a reduction joins the group of its input, or the
  // latest open group of its domain and dims that reads the same input (or opens one); a pointwise
  // node joins the one group its member inputs belong to when its shape is the domain or the
  // group's row shape, consistently with them. Anything else reading a member closes that group
  // (the member gets realized). Backward: a pointwise node all of whose readers are members of one
  // group joins it.
  void form_groups() {
    const size_t n_nodes = g_.nodes.size();
    group_of_.assign(n_nodes, -1);
    users_.assign(static_cast<size_t>(g_.num_values()), {});
    for (size_t n = 0; n < n_nodes; ++n)
      for (ValueId v : g_.nodes[n].inputs)
        if (users_[v].empty() || users_[v].back() != n) users_[v].push_back(n);
    outputs_ = std::set<ValueId>(g_.outputs.begin(), g_.outputs.end());
    depth_.assign(n_nodes, 0);
    forced_root_.assign(n_nodes, false);
    for (size_t n = 0; n < n_nodes; ++n) {
      const Node& node = g_.nodes[n];
      int joined = -1;
      if (too_deep(n)) {
        // Realized, so the expressions and index trees that would inline it stay shallow.
        forced_root_[n] = true;
      } else if (is_row_reduction(g_, node)) {
        const SymShape& domain = g_.value_type(node.inputs[0]).shape;
        auto dims = reduction_dims(node.attrs.get_ints("dims"), static_cast<int64_t>(domain.size()),
                                   "lower");
        int input_group = member_group(node.inputs[0]);
        if (input_group >= 0) {
          const Group& ig = groups_[static_cast<size_t>(input_group)];
          if (ig.open && ig.domain == domain && ig.dims == dims) joined = input_group;
        } else {
          // Beside an open group only when it reads the same tensor (the rows are loaded once
          // for both: sum(x) and amax(x)); unrelated reductions stay apart, so that a block
          // repeated L times gives L equal kernels (one object), not one kernel growing with L.
          for (size_t k = groups_.size(); k-- > 0 && joined < 0;)
            if (groups_[k].open && groups_[k].domain == domain && groups_[k].dims == dims &&
                group_reads(groups_[k], node.inputs[0]))
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
          outputs_.count(v) || forced_root_[n])
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

  // Whether a member of `group` reads value v.
  bool group_reads(const Group& group, ValueId v) const {
    return std::any_of(group.members.begin(), group.members.end(), [&](size_t m) {
      const std::vector<ValueId>& in = g_.nodes[m].inputs;
      return std::find(in.begin(), in.end(), v) != in.end();
    });
  }

  // The depth of node n's expression if every pointwise node and view before it inlined
  // (an upper bound of what lowering builds): realized values and ext steps are loads
  // (depth 0), a reduction an accumulator (1). Past limits::kMaxFusedDepth the node is
  // realized instead (its readers load it), so no walk over a kernel's expressions, in
  // lowering, the verifier, the printer or the emitter, recurses deeper than that.
  bool too_deep(size_t n) {
    const Node& node = g_.nodes[n];
    if (is_row_reduction(g_, node)) {  // (before the Ext test: reductions are ext by role)
      depth_[n] = 1;
      return false;
    }
    if (role_of(g_, node) == Role::Ext) return false;  // depth 0
    int64_t deepest = 0;
    for (ValueId v : node.inputs)
      if (int32_t m = g_.node_index(v); m >= 0)
        deepest = std::max(deepest, depth_[static_cast<size_t>(m)]);
    depth_[n] = deepest + 1;
    if (depth_[n] < limits::kMaxFusedDepth) return false;
    depth_[n] = 0;
    return true;
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
      if (forced_root_[n]) {
        state_[n] = State::KernelRoot;
        continue;
      }
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
          auto inlined_into_kernel = [&](size_t c) {
            return state_[c] != State::ExtStep &&
                   !(role_of(g_, g_.nodes[c]) == Role::View && state_[c] != State::Inline);
          };
          bool single_kernel_user = u.size() == 1 && inlined_into_kernel(u[0]);
          // An arange costs a multiply-add an element, and a 0-d value (of 0-d inputs: a
          // learning rate over a bias correction) an operation or two: every kernel reading
          // one recomputes it rather than read a buffer that a launch of its own wrote (a
          // causal mask of two ranges is one kernel; an optimizer step launches no scalar
          // kernels). Not a 0-d draw: a Philox call in every element is not cheap.
          bool cheap = node.op == Op::arange ||
                       (node.type.shape.empty() && op_info(node.op).rule != OpRule::Random);
          bool recomputed =
              cheap && !u.empty() && std::all_of(u.begin(), u.end(), inlined_into_kernel);
          state_[n] =
              is_output || !(single_kernel_user || recomputed) ? State::KernelRoot : State::Inline;
          break;
        }
      }
    }
  }

  // Multi-output kernels. A pointwise kernel root (realized because it is a graph output
  // or has several readers) whose readers all inline into the kernel of one other
  // pointwise root of the same shape is computed and stored by that kernel, which computes
  // it anyway: one launch and one pass over memory instead of a store and a load back (an
  // optimizer's moments and parameter, a forward's saved value and its result). Decided
  // from the back, so a root that is itself stored with another passes its readers on.
  void share_kernels() {
    const size_t n_nodes = g_.nodes.size();
    stored_by_.assign(n_nodes, {});
    // Per node: the pointwise root whose kernel computes it (itself, the root it inlines
    // into, the root storing it), or -1 (a row group, an ext step, several kernels).
    std::vector<int> kernel_of(n_nodes, -1);
    auto common_kernel = [&](const std::vector<size_t>& readers) {
      int k = -1;
      for (size_t c : readers) {
        if (kernel_of[c] < 0 || (k >= 0 && kernel_of[c] != k)) return -1;
        k = kernel_of[c];
      }
      return k;
    };
    for (size_t n = n_nodes; n-- > 0;) {
      const Node& node = g_.nodes[n];
      const auto& u = users_[g_.node_value(n)];
      if (state_[n] == State::Inline) {
        kernel_of[n] = common_kernel(u);
        continue;
      }
      if (state_[n] != State::KernelRoot || role_of(g_, node) != Role::Pointwise) continue;
      kernel_of[n] = static_cast<int>(n);
      int host = forced_root_[n] ? -1 : common_kernel(u);
      if (host < 0 || g_.nodes[static_cast<size_t>(host)].type.shape != node.type.shape) continue;
      kernel_of[n] = host;
      if (!outputs_.count(g_.node_value(n))) {
        // Read only inside that kernel: computed there once (the emitter shares equal
        // expressions) and never stored. Storing it cost a pass over memory for nothing: the
        // f32 upcast of a bf16 GELU's input, a second output as wide as the first and twice
        // as many bytes.
        state_[n] = State::Inline;
        continue;
      }
      state_[n] = State::StoredWith;
      stored_by_[static_cast<size_t>(host)].push_back(n);
    }
    for (auto& stored : stored_by_) std::reverse(stored.begin(), stored.end());  // node order
  }

  const Graph& g_;
  std::vector<std::vector<size_t>> stored_by_;
  std::vector<int64_t> depth_;     // too_deep's expression depths
  std::vector<bool> forced_root_;  // realized because their expressions grew too deep
  std::vector<State> state_;
  std::vector<int> group_of_;
  std::vector<size_t> group_last_;
  std::vector<Group> groups_;
  std::vector<std::vector<size_t>> users_;
  std::set<ValueId> outputs_;
};

}  // namespace

FusionPlan plan_fusion(const Graph& graph) { return FusionPlanner(graph).run(); }

}  // namespace kiln
