// The runtime behind kiln::compile(): finds the entry whose guards match a call, traces and
// compiles a new entry on a miss, and runs the entry's executable.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "driver/pipeline.h"
#include "eager/dispatch.h"
#include "graph/text.h"
#include "kiln/compile.h"
#include "kiln/error.h"
#include "kiln/safetensors.h"
#include "observe/repro.h"
#include "observe/trace_log.h"
#include "support/log.h"
#include "support/stats.h"
#include "trace/guards.h"
#include "trace/tracer.h"

namespace kiln::detail {

struct Entry {
  Guards guards;
  std::vector<int64_t> output_structure;
  std::shared_ptr<const Graph> graph;
  mutable std::string graph_text;  // printed on first request (a call need not wait for it)
  TensorMap constants;
  std::unique_ptr<Executable> executable;
};

class CompiledCore {
 public:
  explicit CompiledCore(const CompileOptions& options) : options_(resolve_options(options)) {}

  Flat call(const Flat& inputs, const TraceFn& trace) {
    Entry* entry = find(inputs);
    if (!entry) entry = add_entry(inputs, trace);
    Flat out;
    out.structure = entry->output_structure;
    out.tensors = entry->executable->run(inputs.tensors);
    return out;
  }

  void save(size_t index, const std::string& path) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (index >= entries_.size())
      throw Error(fmt::format("{}: save_graph({}): only {} graphs were traced", options_.name,
                              index, entries_.size()));
    const Entry& e = *entries_[index];
    std::filesystem::path p(path);
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary);
      out << text_of(e);
      if (!out) throw Error(fmt::format("{}: cannot write", tmp));
    }
    std::filesystem::rename(tmp, p);
    p.replace_extension(".safetensors");
    if (!e.constants.empty()) save_safetensors(p.string(), e.constants);
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

  std::vector<std::string> errors() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : entries_)
      for (std::string& m : e->executable->compile_errors()) out.push_back(std::move(m));
    return out;
  }

 private:
  // The entry's graph as text; the caller holds mutex_.
  static const std::string& text_of(const Entry& e) {
    if (e.graph_text.empty()) e.graph_text = print_graph(*e.graph);
    return e.graph_text;
  }

  // Under KILN_TRACE: the graph's repro file (graph_runnable), for every graph compiled.
  void write_runnable(const Graph& graph, const Flat& inputs) const {
    std::optional<std::string> dir = trace_directory();
    if (!dir) return;
    std::string path =
        write_repro(*dir, repro_of_call(graph, inputs.tensors, options_, trace_saves_inputs()));
    trace_artifact("graph_runnable", {{"graph", graph.name}, {"path", path}});
  }

  // Where the entry runs: where its inputs (and captured tensors) are; all in one place.
  Device device_of(const Graph& graph, const Flat& inputs) const {
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
    for (size_t i = 0; i < inputs.tensors.size(); ++i)
      see(inputs.tensors[i].device(), fmt::format("input {}", i));
    for (const GraphConstant& c : graph.constants)
      see(c.value.device(), fmt::format("captured tensor {}", c.name));
    return device.value_or(Device::cpu);
  }

  Entry* find(const Flat& inputs) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& e : entries_) {
      if (e->guards.matches(inputs)) {
        bump(Stat::guard_hits);
        return e.get();
      }
    }
    return nullptr;
  }

  Entry* add_entry(const Flat& inputs, const TraceFn& trace) {
    bump(Stat::guard_misses);
    Tracer tracer(options_.name);
    Flat traced_in{tracer.add_inputs(inputs.tensors), inputs.structure};
    Flat traced_out;
    {
      RecorderScope scope(&tracer);
      traced_out = trace(traced_in);
    }
    auto entry = std::make_unique<Entry>();
    Graph graph = tracer.finish(traced_out.tensors);
    bump(Stat::trace_graphs);
    entry->guards = make_guards(graph, inputs);
    entry->output_structure = traced_out.structure;
    for (const GraphConstant& c : graph.constants) entry->constants[c.name] = c.value;
    if (log_enabled("guards"))
      log_line("guards",
               fmt::format("{}: new entry for {}", options_.name, entry->guards.describe()));
    ResolvedOptions options = options_;
    options.device = device_of(graph, inputs);
    entry->executable = compile_graph(graph, options);
    write_runnable(graph, inputs);
    entry->graph = std::make_shared<const Graph>(std::move(graph));
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.push_back(std::move(entry));
    return entries_.back().get();
  }

  ResolvedOptions options_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Entry>> entries_;
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
