#include "runtime/plan_executable.h"

#include <fmt/format.h>

#include <algorithm>

#include "eager/dispatch.h"
#include "eager/interpreter.h"
#include "graph/text.h"
#include "observe/kernel_files.h"
#include "observe/trace_log.h"
#include "runtime/profiling.h"
#include "support/stats.h"
#include "tensor/tensor_impl.h"
#include "wire/frame.h"

namespace kiln {

namespace {

bool reads_at_constant_index(const KernelLaunch& k, ValueId v) {
  return std::find(k.read_at_constant_index.begin(), k.read_at_constant_index.end(), v) !=
         k.read_at_constant_index.end();
}

}  // namespace

PlanExecutable::PlanExecutable(CompiledPlan plan) : p_(std::move(plan)) {
  const Graph& g = p_.graph;
  symbol_limits_ = symbol_limits(g);
  // Free each value after the last step that reads it.
  last_use_.assign(static_cast<size_t>(g.num_values()), -1);
  for (size_t s = 0; s < p_.steps.size(); ++s) {
    const PlanStep& step = p_.steps[s];
    auto reads = step.kind == PlanStep::Kind::Kernel
                     ? p_.kernels[static_cast<size_t>(step.kernel)].params
                     : g.nodes[static_cast<size_t>(step.node)].inputs;
    for (ValueId v : reads) last_use_[v] = static_cast<int64_t>(s);
  }
  read_by_ext_.assign(static_cast<size_t>(g.num_values()), false);
  for (const PlanStep& step : p_.steps)
    if (step.kind == PlanStep::Kind::Ext)
      for (ValueId v : g.nodes[static_cast<size_t>(step.node)].inputs) read_by_ext_[v] = true;
  for (ValueId v : g.outputs) last_use_[v] = static_cast<int64_t>(p_.steps.size());
  dead_after_.resize(p_.steps.size());
  for (size_t v = g.inputs.size() + g.constants.size(); v < last_use_.size(); ++v)
    if (last_use_[v] >= 0 && last_use_[v] < static_cast<int64_t>(p_.steps.size()))
      dead_after_[static_cast<size_t>(last_use_[v])].push_back(static_cast<ValueId>(v));
  // In-place candidates: an elementwise kernel reads every input at the index it writes,
  // so it may write over an intermediate of its dtype that dies at this step.
  inplace_.assign(p_.steps.size(), -1);
  written_at_.assign(static_cast<size_t>(g.num_values()), -1);
  for (size_t s = 0; s < p_.steps.size(); ++s) {
    const PlanStep& step = p_.steps[s];
    if (step.kind != PlanStep::Kind::Kernel) continue;
    const KernelLaunch& k = p_.kernels[static_cast<size_t>(step.kernel)];
    for (ValueId v : k.outputs) written_at_[v] = static_cast<int64_t>(s);
    if (!k.elementwise || k.outputs.size() != 1) continue;
    for (size_t i = 1; i < k.params.size(); ++i) {
      ValueId v = k.params[i];
      if (g.node_index(v) >= 0 && last_use_[v] == static_cast<int64_t>(s) &&
          !reads_at_constant_index(k, v) &&
          g.value_type(v).dtype == g.value_type(k.outputs[0]).dtype) {
        inplace_[s] = v;
        break;
      }
    }
  }
}

std::vector<int64_t> PlanExecutable::bind(const std::vector<Tensor>& inputs) const {
  return bind_inputs(p_.graph, inputs, &symbol_limits_);
}

std::vector<Tensor> PlanExecutable::run_writing_into(const std::vector<Tensor>& inputs,
                                                     const std::vector<WriteInto>& into) {
  const Graph& g = p_.graph;
  std::vector<int64_t> bindings = bind(inputs);
  std::vector<Tensor> slots(static_cast<size_t>(g.num_values()));
  for (size_t i = 0; i < inputs.size(); ++i)
    slots[i] = p_.read_by_kernel[i] ? contiguous_eager(inputs[i]) : inputs[i];
  for (size_t c = 0; c < g.constants.size(); ++c) slots[g.inputs.size() + c] = g.constants[c].value;
  // Outputs written straight into their inputs: value → the input's index.
  std::vector<std::pair<ValueId, size_t>> written_into;
  for (const WriteInto& w : into) {
    if (w.output >= g.outputs.size() || w.input >= inputs.size()) continue;
    if (write_into_step(g.outputs[w.output], static_cast<ValueId>(w.input)) >= 0)
      written_into.emplace_back(g.outputs[w.output], w.input);
  }
  auto target_of = [&](ValueId v, const Shape& shape) -> Tensor {
    for (auto [out, in] : written_into) {
      const Tensor& t = inputs[in];
      if (out == v && t.is_contiguous() && t.sizes() == shape && t.dtype() == g.value_type(v).dtype)
        return t;
    }
    return Tensor();
  };
  before_steps();
  std::vector<char*> buffers;
  for (size_t s = 0; s < p_.steps.size(); ++s) {
    const PlanStep& step = p_.steps[s];
    if (step.kind == PlanStep::Kind::Kernel) {
      const KernelLaunch& k = p_.kernels[static_cast<size_t>(step.kernel)];
      for (ValueId v : k.outputs) {
        Shape shape;
        for (const Dim& d : g.value_type(v).shape) shape.push_back(d.eval(bindings));
        if (Tensor target = target_of(v, shape); target.defined()) {
          slots[v] = target;
          continue;
        }
        slots[v] = reuse(s, slots, shape);
        if (!slots[v].defined()) slots[v] = make_tensor(shape, g.value_type(v).dtype, p_.device);
      }
      buffers.clear();
      for (ValueId v : k.params) buffers.push_back(slots[v].impl()->data_ptr());
      const size_t kernel = static_cast<size_t>(step.kernel);
      if (launches_observed()) {
        observed(s, k.params, slots, [&] { launch(kernel, bindings, buffers); });
      } else {
        launch(kernel, bindings, buffers);
      }
    } else {
      const Node& node = g.nodes[static_cast<size_t>(step.node)];
      const ValueId out = g.node_value(static_cast<size_t>(step.node));
      std::vector<Tensor> args;
      for (ValueId v : node.inputs) args.push_back(slots[v]);
      Tensor result;
      if (launches_observed()) {
        observed(s, node.inputs, slots, [&] { result = run_ext(s, node, args, bindings); });
      } else {
        result = run_ext(s, node, args, bindings);
      }
      slots[out] = p_.read_by_kernel[out] ? contiguous_eager(result) : result;
    }
    for (ValueId v : dead_after_[s]) slots[v] = Tensor();
  }
  after_steps();
  std::vector<Tensor> outputs;
  for (ValueId v : g.outputs) {
    bool written = std::any_of(written_into.begin(), written_into.end(), [&](const auto& w) {
      return w.first == v && slots[v].impl() == inputs[w.second].impl();
    });
    outputs.push_back(written ? slots[v] : owned_output(g, slots[v], inputs));
  }
  return outputs;
}

int64_t PlanExecutable::write_into_step(ValueId out, ValueId in) const {
  const Graph& g = p_.graph;
  if (out < 0 || out >= g.num_values() || in < 0 || static_cast<size_t>(in) >= g.inputs.size())
    return -1;
  const int64_t s = written_at_[static_cast<size_t>(out)];
  // No step after the writer may read the input's old value (nor may the graph return it),
  // and no ext step may read it at all: it may have returned a view of it.
  if (s < 0 || last_use_[in] > s || read_by_ext_[static_cast<size_t>(in)]) return -1;
  if (std::count(g.outputs.begin(), g.outputs.end(), out) != 1) return -1;
  const KernelLaunch& k = p_.kernels[static_cast<size_t>(p_.steps[static_cast<size_t>(s)].kernel)];
  if (!k.elementwise || reads_at_constant_index(k, in)) return -1;
  // The part a param index belongs to (a foreach's parts run as separate loops: a part
  // reading the input while another overwrites it would see new values).
  auto part_of = [&](size_t param) {
    size_t base = 0;
    for (size_t part = 0; part < k.part_params.size(); ++part) {
      base += static_cast<size_t>(k.part_params[part]);
      if (param < base) return part;
    }
    return size_t{0};
  };
  // The output's param (a value the kernel writes is no other param of it: no part reads
  // what another writes).
  const size_t writer =
      static_cast<size_t>(std::find(k.params.begin(), k.params.end(), out) - k.params.begin());
  if (writer == k.params.size()) return -1;
  for (size_t p = 0; p < k.params.size(); ++p)
    if (k.params[p] == in && part_of(p) != part_of(writer)) return -1;
  return s;
}

Tensor PlanExecutable::run_ext(size_t, const Node& node, const std::vector<Tensor>& args,
                               const std::vector<int64_t>& bindings) {
  return run_node(node, args, bindings);
}

void PlanExecutable::describe_launches() {
  std::vector<KernelFile> files;
  for (const ObjectUnit& u : p_.units) files.push_back(kernel_source_file(u.source));
  for (size_t s = 0; s < p_.steps.size(); ++s) {
    const PlanStep& step = p_.steps[s];
    LaunchDescription d;
    if (step.kind == PlanStep::Kind::Kernel) {
      const KernelLaunch& k = p_.kernels[static_cast<size_t>(step.kernel)];
      d.name = k.name;
      d.kind = k.kind;
      const KernelFile& f = files.at(static_cast<size_t>(k.unit));
      d.file = f.path;
      d.symbol = k.symbol;
      d.hash = f.hash;
      d.kwargs = config_text(k.config);
    } else {
      d.name = fmt::format("{}_ext_{}_{}", backend_,
                           op_name(p_.graph.nodes[static_cast<size_t>(step.node)].op), s);
      d.kind = "ext";
    }
    launches_.push_back(std::move(d));
  }
  if (!trace_enabled()) return;
  nlohmann::json kernels = nlohmann::json::array(), steps = nlohmann::json::array();
  for (const KernelLaunch& k : p_.kernels)
    kernels.push_back({{"name", k.name},
                       {"symbol", k.symbol},
                       {"unit", k.unit},
                       {"config", config_text(k.config)},
                       {"tuning", k.tuning}});
  for (const LaunchDescription& d : launches_) steps.push_back(d.name);
  trace_artifact("fused_graph", {{"graph", p_.graph.name},
                                 {"text", print_graph(p_.graph)},
                                 {"options", p_.options},
                                 {"kernels", kernels},
                                 {"steps", steps}});
  for (size_t u = 0; u < p_.units.size(); ++u)
    trace_artifact("kernel_source", {{"graph", p_.graph.name},
                                     {"unit", p_.units[u].name},
                                     {"path", files[u].path},
                                     {"hash", files[u].hash},
                                     {"source", p_.units[u].source}});
}

// Runs step `s`'s launch between the hooks (and the profiler's clock).
template <class Launch>
void PlanExecutable::observed(size_t s, const std::vector<ValueId>& reads,
                              const std::vector<Tensor>& slots, Launch&& launch) const {
  const LaunchDescription& d = launches_[s];
  std::vector<Shape> shapes;
  for (ValueId v : reads)
    if (slots[v].defined() && !is_written_by(s, v)) shapes.push_back(slots[v].sizes());
  LaunchInfo info{d.name,   d.kind, backend_, stream_id_, d.file,
                  d.symbol, d.hash, d.kwargs, &shapes};
  notify_launch_enter(info);
  const double start = monotonic_seconds();
  launch();
  notify_launch_exit(info, start);
}

bool PlanExecutable::is_written_by(size_t s, ValueId v) const {
  const PlanStep& step = p_.steps[s];
  if (step.kind != PlanStep::Kind::Kernel) return false;
  const std::vector<ValueId>& outs = p_.kernels[static_cast<size_t>(step.kernel)].outputs;
  return std::find(outs.begin(), outs.end(), v) != outs.end();
}

// The storage of step `s`'s in-place candidate, when nothing else refers to it (an eager
// view could share it) and it holds exactly `shape`'s elements; else undefined.
Tensor PlanExecutable::reuse(size_t s, const std::vector<Tensor>& slots, const Shape& shape) const {
  ValueId v = inplace_[s];
  if (v < 0) return Tensor();
  const Tensor& t = slots[v];
  if (!t.defined() || t.impl_ptr().use_count() != 1 || t.impl()->storage.use_count() != 1 ||
      t.offset() != 0 || !t.is_contiguous() || t.numel() != shape_numel(shape))
    return Tensor();
  bump(Stat::executor_inplace);
  return make_view(t, shape, contiguous_strides(shape), 0);
}

std::vector<std::string> PlanExecutable::kernel_names() const {
  std::vector<std::string> names;
  for (const PlanStep& s : p_.steps)
    names.push_back(
        s.kind == PlanStep::Kind::Kernel
            ? p_.kernels[static_cast<size_t>(s.kernel)].name
            : fmt::format("ext:{}", op_name(p_.graph.nodes[static_cast<size_t>(s.node)].op)));
  return names;
}

std::vector<KernelInfo> PlanExecutable::kernels() const {
  std::vector<KernelInfo> out;
  for (const KernelLaunch& k : p_.kernels) out.push_back({k.name, config_text(k.config), k.tuning});
  return out;
}

}  // namespace kiln
