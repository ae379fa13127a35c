// The runtime behind kiln::compile(): finds the entry whose guards match a call, traces and
// compiles a new entry on a miss, and runs the entry's executable.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "autograd/graph.h"
#include "driver/compiled_backward.h"
#include "driver/pipeline.h"
#include "eager/dispatch.h"
#include "graph/text.h"
#include "kiln/compile.h"
#include "kiln/error.h"
#include "kiln/safetensors.h"
#include "observe/repro.h"
#include "observe/trace_log.h"
#include "passes/partition_joint.h"
#include "support/log.h"
#include "support/stats.h"
#include "tensor/tensor_impl.h"
#include "trace/guards.h"
#include "trace/tracer.h"

namespace kiln::detail {

struct Entry {
  Guards guards;
  std::vector<int64_t> output_structure;
  std::shared_ptr<const Graph> graph;
  mutable std::string graph_text;          // printed on first request (a call need not wait for it)
  std::unique_ptr<Executable> executable;  // its graph holds the constants
  // From the trace (TraceResult): graph inputs past the call's tensors, writes after each
  // run, results that are input tensors themselves, frozen storages' versions.
  std::vector<std::weak_ptr<TensorImpl>> captured;
  std::vector<bool> captured_requires_grad;  // as traced (with grad mode on)
  std::vector<TraceResult::WriteBack> write_backs;
  std::vector<int32_t> returns_input;
  std::vector<TraceResult::Frozen> frozen;
  // The call's scalars bound as graph inputs (0-d f64, after the call's tensors), in order.
  std::vector<size_t> scalar_inputs;
  int64_t rng_draws = 0;
  Device device = Device::cpu;
  // Results that require grad: their backward graph (compiled_backward.h)...
  std::shared_ptr<const CompiledBackward> backward;
  size_t num_results = 0;  // the function's results (graph outputs before the write-backs)
  // ...or, where kiln cannot trace one (dynamic dims), calls with grad mode on run the
  // function eagerly, with autograd.
  bool differentiable = false;
};

namespace {

// The generator state of one call that draws `draws` times, on `device`: the graph's last
// input.
Tensor rng_input(int64_t draws, Device device) {
  auto [seed, offset] = take_draws(static_cast<uint64_t>(draws));
  Tensor state = make_tensor({2}, DType::i64);
  auto* p = reinterpret_cast<int64_t*>(state.impl()->data_ptr());
  p[0] = static_cast<int64_t>(seed);
  p[1] = static_cast<int64_t>(offset);
  return device == Device::cpu ? state : copy_to_device(state, device);
}

// `graph` with its inputs first .. first + values.size() turned into constants of `values`.
Graph inputs_as_constants(const Graph& graph, size_t first, const std::vector<Tensor>& values) {
  if (values.empty()) return graph;
  GraphBuilder builder(graph.name);
  builder.use_symbols(graph.num_symbols);
  std::vector<ValueId> id(static_cast<size_t>(graph.num_values()));
  for (size_t i = 0; i < graph.inputs.size(); ++i)
    if (i < first || i >= first + values.size())
      id[i] = builder.add_input(graph.inputs[i].name, graph.inputs[i].type);
  for (size_t i = 0; i < values.size(); ++i)
    id[first + i] =
        builder.add_constant(graph.inputs[first + i].name, graph.inputs[first + i].type, values[i]);
  for (size_t c = 0; c < graph.constants.size(); ++c)
    id[graph.inputs.size() + c] = builder.add_constant(
        graph.constants[c].name, graph.constants[c].type, graph.constants[c].value);
  for (size_t n = 0; n < graph.nodes.size(); ++n) {
    const Node& node = graph.nodes[n];
    std::vector<ValueId> ins;
    for (ValueId v : node.inputs) ins.push_back(id[static_cast<size_t>(v)]);
    id[static_cast<size_t>(graph.node_value(n))] =
        builder.add_inferred_node(node.op, std::move(ins), node.attrs, node.type);
  }
  std::vector<ValueId> outs;
  for (ValueId v : graph.outputs) outs.push_back(id[static_cast<size_t>(v)]);
  builder.set_outputs(outs);
  Graph out = builder.finish();
  out.size_hints = graph.size_hints;
  return out;
}

// Throws when the graph writes to an input that shares memory with another input: the
// functionalized graph treats them as separate values, eager would not.
void check_no_aliased_writes(const std::vector<Tensor>& args,
                             const std::vector<TraceResult::WriteBack>& writes,
                             const std::string& name, size_t num_call_inputs) {
  auto what = [&](size_t i) {
    return i < num_call_inputs ? fmt::format("input {}", i)
                               : fmt::format("captured tensor {}", i - num_call_inputs);
  };
  for (const TraceResult::WriteBack& w : writes)
    for (size_t j = 0; j < args.size(); ++j)
      if (j != w.input && args[j].impl()->storage == args[w.input].impl()->storage)
        throw Error(fmt::format(
            "{}: the compiled function writes to {}, which shares memory with {}; kiln cannot "
            "keep the two consistent: pass a clone() of one of them",
            name, what(w.input), what(j)));
}

// Under KILN_TRACE: the graph's repro file (graph_runnable), for every graph compiled.
void write_runnable_file(const Graph& graph, const std::vector<Tensor>& inputs,
                         const ResolvedOptions& options) {
  std::optional<std::string> dir = trace_directory();
  if (!dir) return;
  std::string path = write_repro(*dir, repro_of_call(graph, inputs, options, trace_saves_inputs()));
  trace_artifact("graph_runnable", {{"graph", graph.name}, {"path", path}});
}

// Whether kiln can trace the backward of a call (its derivative formulas take sizes as
// numbers: a dim marked dynamic would be fixed in the backward graph).
bool joint_traceable(const Flat& inputs) {
  for (const Tensor& t : inputs.tensors)
    if (t.impl()->dynamic_dims != 0) return false;
  return true;
}

// A joint trace's outputs are [results][gradients][write-backs]: reordered to [results]
// [write-backs][gradients], the forward's before the backward's (partition_joint).
void forward_outputs_first(TraceResult& traced, size_t num_results, size_t num_grads) {
  std::vector<ValueId>& out = traced.graph.outputs;
  std::vector<ValueId> reordered(out.begin(),
                                 out.begin() + static_cast<std::ptrdiff_t>(num_results));
  reordered.insert(reordered.end(),
                   out.begin() + static_cast<std::ptrdiff_t>(num_results + num_grads), out.end());
  reordered.insert(reordered.end(), out.begin() + static_cast<std::ptrdiff_t>(num_results),
                   out.begin() + static_cast<std::ptrdiff_t>(num_results + num_grads));
  out = std::move(reordered);
  for (TraceResult::WriteBack& w : traced.write_backs) w.output -= num_grads;
  traced.returns_input.resize(num_results);
}

}  // namespace

class CompiledCore {
 public:
  explicit CompiledCore(const CompileOptions& options) : options_(resolve_options(options)) {}

  Flat call(const Flat& inputs, const TraceFn& trace) {
    std::vector<Tensor> args;  // the graph's inputs: the call's tensors, then the captured
    std::shared_ptr<Entry> entry = find(inputs, &args);
    if (!entry) entry = add_entry(inputs, trace, &args);
    if (entry->differentiable && grad_mode_enabled()) {
      warn_once(fmt::format("eager autograd: {}", options_.name),
                fmt::format("{}: its results require grad, and its trace has dims marked "
                            "dynamic, whose backward kiln cannot compile yet: calls with grad "
                            "mode on run the function eagerly, with autograd (under NoGradGuard "
                            "the compiled graph runs)",
                            options_.name));
      bump(Stat::compile_eager_for_grad);
      return trace(inputs);
    }
    std::vector<WriteInto> into;
    for (const TraceResult::WriteBack& w : entry->write_backs) into.push_back({w.output, w.input});
    std::vector<Tensor> results = entry->executable->run_writing_into(args, into);
    std::vector<Tensor> saved;  // what the backward graph reads, after results and write-backs
    if (entry->backward) {
      size_t first_saved = entry->num_results + entry->write_backs.size();
      saved.assign(results.begin() + static_cast<std::ptrdiff_t>(first_saved), results.end());
      results.resize(first_saved);
    }
    for (const TraceResult::WriteBack& w : entry->write_backs) {
      // The executable may have written the value into the input already (run_writing_into).
      if (results[w.output].impl() != args[w.input].impl()) {
        copy_into(args[w.input], results[w.output]);
      } else {
        bump(Stat::write_backs_in_place);
      }
      args[w.input].impl()->storage->bump_version();
    }
    if (!entry->write_backs.empty()) bump(Stat::write_backs);
    Flat out;
    out.structure = entry->output_structure;
    for (size_t i = 0; i < entry->returns_input.size(); ++i) {
      int32_t input = entry->returns_input[i];
      out.tensors.push_back(input >= 0 ? args[static_cast<size_t>(input)] : results[i]);
    }
    if (entry->backward && grad_mode_enabled())
      attach_backward(entry->backward, args, std::move(saved), out.tensors);
    return out;
  }

  void save(size_t index, const std::string& path) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (index >= entries_.size())
      throw Error(fmt::format("{}: save_graph({}): only {} graphs were traced", options_.name,
                              index, entries_.size()));
    const Entry& e = *entries_[index];
    // The captured tensors are saved as constants, with the values they have now: the file
    // is the function with its current weights, runnable on the call's inputs alone.
    size_t first = e.guards.tensors.size() + e.scalar_inputs.size();
    std::vector<Tensor> captured;
    for (size_t i = 0; i < e.captured.size(); ++i) {
      captured.emplace_back(e.captured[i].lock());
      if (!captured.back().defined())
        throw Error(
            fmt::format("{}: save_graph({}): captured tensor {} is gone", options_.name, index, i));
    }
    Graph saved = inputs_as_constants(*e.graph, first, captured);
    TensorMap constants;
    for (const GraphConstant& c : saved.constants) constants[c.name] = c.value.cpu();
    std::filesystem::path p(path);
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary);
      out << print_graph(saved);
      if (!out) throw Error(fmt::format("{}: cannot write", tmp));
    }
    std::filesystem::rename(tmp, p);
    p.replace_extension(".safetensors");
    if (!constants.empty()) save_safetensors(p.string(), constants);
  }

  std::vector<std::string> graphs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(text_of(*e));
    return out;
  }

  std::vector<std::string> stages() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e->executable->stage());
    return out;
  }

  std::vector<KernelInfo> kernels(size_t index) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return index < entries_.size() ? entries_[index]->executable->kernels()
                                   : std::vector<KernelInfo>{};
  }

  std::string build_options(size_t index) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return index < entries_.size() ? entries_[index]->executable->build_options() : std::string();
  }

  // Waits on each entry in turn (outside the lock: a call may trace a new entry meanwhile),
  // all within one deadline: its forward, and its backward once a backward() compiled it.
  bool wait_for_stages(double timeout_seconds) const {
    std::vector<std::shared_ptr<Entry>> entries;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      entries = entries_;
    }
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
    for (const auto& e : entries) {
      std::chrono::duration<double> left = deadline - std::chrono::steady_clock::now();
      if (!e->executable->wait_for_stages(std::max(0.0, left.count()))) return false;
      std::shared_ptr<Executable> backward =
          e->backward ? backward_executable_if_compiled(*e->backward) : nullptr;
      left = deadline - std::chrono::steady_clock::now();
      if (backward && !backward->wait_for_stages(std::max(0.0, left.count()))) return false;
    }
    return true;
  }

  std::vector<std::vector<StageDecision>> stage_history() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::vector<StageDecision>> out;
    for (const auto& e : entries_) out.push_back(e->executable->stage_history());
    return out;
  }

  std::vector<std::string> errors() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : entries_) {
      for (std::string& m : e->executable->compile_errors()) out.push_back(std::move(m));
      if (std::shared_ptr<Executable> backward =
              e->backward ? backward_executable_if_compiled(*e->backward) : nullptr)
        for (std::string& m : backward->compile_errors()) out.push_back(std::move(m));
    }
    return out;
  }

 private:
  // The entry's graph as text; the caller holds mutex_.
  static const std::string& text_of(const Entry& e) {
    if (e.graph_text.empty()) e.graph_text = print_graph(*e.graph);
    return e.graph_text;
  }

  void write_runnable(const Graph& graph, const std::vector<Tensor>& inputs) const {
    write_runnable_file(graph, inputs, options_);
  }

  // The graph's inputs for a call of `entry`: the call's tensors, its graph scalars, the
  // captured tensors, and the generator state when it draws; false when a captured tensor
  // is gone. Throws when the call writes to an input that shares memory with another.
  bool bind_args(const Entry& entry, const Flat& inputs, std::vector<Tensor>* args) const {
    *args = inputs.tensors;
    for (size_t k : entry.scalar_inputs)
      args->push_back(scalar_tensor(inputs.scalars[k].to_double(), DType::f64, entry.device));
    for (const std::weak_ptr<TensorImpl>& c : entry.captured) {
      args->emplace_back(c.lock());
      if (!args->back().defined()) return false;
    }
    check_no_aliased_writes(*args, entry.write_backs, options_.name,
                            inputs.tensors.size() + entry.scalar_inputs.size());
    if (entry.rng_draws > 0) args->push_back(rng_input(entry.rng_draws, entry.device));
    return true;
  }

  // Where the entry runs: where the call's tensors, the captured tensors and the constants
  // are; all in one place, except 0-d constants on the CPU (a factory's scalar, like
  // arange's start), which go with any device, as 0-d CPU tensors do in PyTorch.
  Device device_of(const Graph& graph, const std::vector<Tensor>& call,
                   const std::vector<std::weak_ptr<TensorImpl>>& captured) const {
    std::optional<Device> device;
    std::string first;
    auto see = [&](Device d, const std::string& what) {
      if (!device) {
        device = d;
        first = what;
      } else if (*device != d) {
        throw Error(
            fmt::format("{}: {} is on {} but {} is on {}; a compiled function runs on one device "
                        "(move tensors with .cuda() or .cpu())",
                        options_.name, what, device_name(d), first, device_name(*device)));
      }
    };
    for (size_t i = 0; i < call.size(); ++i) see(call[i].device(), fmt::format("input {}", i));
    for (size_t i = 0; i < captured.size(); ++i)
      if (std::shared_ptr<TensorImpl> c = captured[i].lock())
        see(c->device, fmt::format("captured tensor {}", i));
    for (const GraphConstant& c : graph.constants)
      if (c.value.defined() && (c.value.dim() > 0 || c.value.device() != Device::cpu))
        see(c.value.device(), fmt::format("constant %{}", c.name));
    return device.value_or(Device::cpu);
  }

  // Moves `graph`'s 0-d CPU constants to `device` (device_of lets them go with any).
  static void move_scalar_constants(Graph& graph, Device device) {
    for (GraphConstant& c : graph.constants)
      if (c.value.defined() && c.value.device() != device) c.value = c.value.to(device);
  }

  // The entry `inputs` match, with the graph's inputs in `args`. Entries whose captured
  // tensors are gone, or whose frozen tensors changed, can never match again: dropped.
  std::shared_ptr<Entry> find(const Flat& inputs, std::vector<Tensor>* args) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t e = 0; e < entries_.size(); ++e) {
      Entry& entry = *entries_[e];
      if (!entry.guards.matches(inputs)) continue;
      std::string stale = stale_reason(entry);
      if (!stale.empty()) {
        if (log_enabled("guards"))
          log_line("guards", fmt::format("{}: entry {} dropped: {}", options_.name,
                                         entry.guards.describe(), stale));
        entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(e));
        return nullptr;  // traced again, with what the function captures now
      }
      if (!bind_args(entry, inputs, args)) return nullptr;  // released since the check
      bump(Stat::guard_hits);
      return entries_[e];
    }
    return nullptr;
  }

  // Why `entry` can no longer serve calls, or "".
  static std::string stale_reason(const Entry& entry) {
    for (size_t i = 0; i < entry.captured.size(); ++i) {
      if (entry.captured[i].expired()) {
        bump(Stat::guard_captured_gone);
        return fmt::format("captured tensor {} is gone", i);
      }
    }
    for (size_t i = 0; i < entry.captured.size(); ++i) {
      std::shared_ptr<TensorImpl> c = entry.captured[i].lock();
      if (entry.guards.grad_mode && c && c->requires_grad != entry.captured_requires_grad[i])
        return fmt::format("captured tensor {} now {} grad", i,
                           c->requires_grad ? "requires" : "does not require");
    }
    for (const TraceResult::Frozen& f : entry.frozen) {
      std::shared_ptr<Storage> storage = f.storage.lock();
      if (!storage || storage->version() != f.version) {
        bump(Stat::guard_frozen_changed);
        return fmt::format("frozen tensor {} was written to", f.name);
      }
    }
    return "";
  }

  // Which of the call's scalars a trace takes as graph scalars ("automatic dynamic"): a
  // SymFloat argument that a call passes another value for than an entry with the same
  // tensors was traced with is one in every later trace of the same structure.
  std::vector<bool> graph_scalars_for(const Flat& inputs) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<bool>& dynamic = graph_scalars_[inputs.structure];
    dynamic.resize(inputs.scalars.size(), false);
    std::vector<bool> takes_sym_float;  // per scalar
    for (int64_t s : inputs.structure)
      if (s == kFlatScalar || s == kFlatSymFloat) takes_sym_float.push_back(s == kFlatSymFloat);
    for (const auto& e : entries_) {
      if (!e->guards.matches_tensors(inputs)) continue;
      for (size_t k : e->guards.differing_scalars(inputs)) {
        if (!takes_sym_float.at(k) || dynamic[k]) continue;
        dynamic[k] = true;
        bump(Stat::guard_graph_scalars);
        if (log_enabled("guards"))
          log_line("guards", fmt::format("{}: scalar argument {} changed ({} -> {}): a graph "
                                         "scalar from now on",
                                         options_.name, k, e->guards.scalars[k].to_string(),
                                         inputs.scalars[k].to_string()));
      }
    }
    return dynamic;
  }

  std::shared_ptr<Entry> add_entry(const Flat& inputs, const TraceFn& trace,
                                   std::vector<Tensor>* args) {
    bump(Stat::guard_misses);
    std::vector<bool> graph_scalars = graph_scalars_for(inputs);
    Tracer tracer(options_.name, options_.freeze_captured);
    Flat traced_in{tracer.add_inputs(inputs.tensors), inputs.structure, inputs.scalars, {}};
    std::vector<size_t> scalar_inputs;
    traced_in.scalar_inputs.resize(inputs.scalars.size());
    for (size_t k = 0; k < inputs.scalars.size(); ++k) {
      if (!graph_scalars[k]) continue;
      traced_in.scalar_inputs[k] = tracer.add_scalar_input();
      scalar_inputs.push_back(k);
    }
    Flat traced_out;
    BackwardPlan plan;
    std::vector<Tensor> grads;
    {
      RecorderScope scope(&tracer);
      traced_out = trace(traced_in);
      if (grad_mode_enabled() && joint_traceable(inputs))
        plan = trace_backward(tracer, traced_in.tensors, scalar_inputs.size(), traced_out.tensors,
                              &grads);
    }
    auto entry = std::make_shared<Entry>();
    std::vector<Tensor> graph_outputs = traced_out.tensors;
    graph_outputs.insert(graph_outputs.end(), grads.begin(), grads.end());
    TraceResult traced = tracer.finish(graph_outputs);
    Graph& graph = traced.graph;
    entry->num_results = traced_out.tensors.size();
    if (!plan.empty()) forward_outputs_first(traced, entry->num_results, grads.size());
    bump(Stat::trace_graphs);
    for (int32_t k : traced.specialized_scalars)  // its value was needed: guarded
      graph_scalars.at(static_cast<size_t>(k)) = false;
    entry->guards = make_guards(graph, inputs, graph_scalars);
    entry->scalar_inputs = std::move(scalar_inputs);
    entry->output_structure = traced_out.structure;
    entry->captured = traced.captured;
    for (const auto& c : traced.captured)
      entry->captured_requires_grad.push_back(entry->guards.grad_mode && c.lock()->requires_grad);
    entry->write_backs = traced.write_backs;
    entry->returns_input = traced.returns_input;
    entry->frozen = traced.frozen;
    entry->rng_draws = traced.rng_draws;
    if (plan.empty())
      for (const Tensor& t : traced_out.tensors) entry->differentiable |= t.requires_grad();
    if (log_enabled("guards"))
      log_line("guards",
               fmt::format("{}: new entry for {} ({} captured by reference, {} written back)",
                           options_.name, entry->guards.describe(), entry->captured.size(),
                           entry->write_backs.size()));
    ResolvedOptions options = options_;
    options.device = entry->device = device_of(graph, inputs.tensors, traced.captured);
    move_scalar_constants(graph, entry->device);
    if (!bind_args(*entry, inputs, args))  // the tracer still holds the captured tensors
      throw Error(fmt::format("{}: a captured tensor was released while tracing", options_.name));
    if (!plan.empty()) {
      size_t num_tangents = plan.grad_results.size();
      JointPartition parts = partition_joint(graph, graph.inputs.size() - num_tangents,
                                             entry->num_results + entry->write_backs.size());
      auto backward = std::make_shared<CompiledBackward>();
      backward->plan = std::move(plan);
      backward->num_saved = parts.num_saved;
      backward->saved_inputs = parts.saved_inputs;
      backward->name = options_.name + "Backward";
      backward->name[0] =
          static_cast<char>(std::toupper(static_cast<unsigned char>(backward->name[0])));
      auto backward_graph = std::make_shared<const Graph>(std::move(parts.backward));
      backward->compile = [backward_graph, options] {
        return compile_graph(*backward_graph, options);
      };
      if (trace_directory())  // its repro file, once its inputs exist
        backward->first_run = [backward_graph, options](const std::vector<Tensor>& inputs) {
          write_runnable_file(*backward_graph, inputs, options);
        };
      entry->backward = std::move(backward);
      graph = std::move(parts.forward);
    }
    entry->executable = compile_graph(graph, options);
    write_runnable(graph, *args);
    entry->graph = std::make_shared<const Graph>(std::move(graph));
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.push_back(entry);
    if (entries_.size() == kManyEntries)
      warn_once(
          fmt::format("many entries: {}", options_.name),
          fmt::format(
              "{}: {} entries traced for one compiled function: each new shape (or value of an "
              "int, double or bool argument) traces and compiles again; mark_dynamic the sizes "
              "that change, declare float parameters that change kiln::SymFloat (a graph "
              "scalar after the first change), and pass other values that change as tensors",
              options_.name, kManyEntries));
    return entry;
  }

  static constexpr size_t kManyEntries = 8;  // torch.compile's cache_size_limit
  ResolvedOptions options_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Entry>> entries_;
  // Per argument structure: which scalars are graph scalars (automatic dynamic).
  std::map<std::vector<int64_t>, std::vector<bool>> graph_scalars_;
};

std::shared_ptr<CompiledCore> make_compiled_core(const CompileOptions& options) {
  return std::make_shared<CompiledCore>(options);
}

Flat call_compiled(CompiledCore& core, const Flat& inputs, const TraceFn& trace) {
  return core.call(inputs, trace);
}

std::vector<std::string> compiled_graphs(const CompiledCore& core) { return core.graphs(); }
std::vector<std::string> compiled_stages(const CompiledCore& core) { return core.stages(); }
std::vector<std::string> compile_errors(const CompiledCore& core) { return core.errors(); }
std::vector<std::vector<StageDecision>> stage_history(const CompiledCore& core) {
  return core.stage_history();
}
bool wait_for_stages(const CompiledCore& core, double timeout_seconds) {
  return core.wait_for_stages(timeout_seconds);
}
std::vector<KernelInfo> compiled_kernels(const CompiledCore& core, size_t index) {
  return core.kernels(index);
}
std::string compiled_build_options(const CompiledCore& core, size_t index) {
  return core.build_options(index);
}

void save_compiled_graph(const CompiledCore& core, size_t index, const std::string& path) {
  core.save(index, path);
}

}  // namespace kiln::detail
