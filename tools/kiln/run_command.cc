#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>

#include "commands.h"
#include "driver/load_graph.h"
#include "driver/pipeline.h"
#include "graph/text.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "kiln/profiler.h"
#include "kiln/safetensors.h"
#include "observe/repro.h"
#include "observe/trace_log.h"
#include "support/text.h"
#include "tensor/tensor_impl.h"

namespace kiln::cli {

namespace {

Tensor random_input(const TensorType& type, const Shape& shape) {
  return random_tensor(type.dtype, shape);
}

}  // namespace

int run_command(const RunArgs& args) {
  GraphFile file = read_graph_file(args.graph_path, args.constants_path);
  Graph& graph = file.graph;
  manual_seed(args.seed);
  // Constants the file did not provide get random values, so any graph runs.
  for (GraphConstant& c : graph.constants) {
    Shape shape;
    if (!try_const_shape(c.type.shape, &shape))
      throw Error(fmt::format("constant %{} has a symbolic shape", c.name));
    if (!c.value.defined()) c.value = random_input(c.type, shape);
  }
  const Device device = args.device == "cuda" ? Device::cuda : Device::cpu;
  for (GraphConstant& c : graph.constants) c.value = c.value.to(device);
  std::vector<int64_t> bindings(static_cast<size_t>(graph.num_symbols), -1);
  for (const auto& [name, size] : args.dims) {
    int sym = -1;
    if (name.size() > 1 && name[0] == 's') sym = std::stoi(name.substr(1));
    if (sym < 0 || sym >= graph.num_symbols)
      throw Error(fmt::format("--dim {}={}: the graph has no size symbol {}", name, size, name));
    bindings[static_cast<size_t>(sym)] = size;
  }
  std::vector<Tensor> inputs;
  if (!args.inputs_path.empty()) {
    TensorMap given = load_safetensors(args.inputs_path);
    for (const GraphInput& in : graph.inputs) {
      auto it = given.find(in.name);
      if (it == given.end())
        throw Error(fmt::format("--inputs {}: no tensor named {} (input %{} of graph {})",
                                args.inputs_path, in.name, in.name, graph.name));
      inputs.push_back(it->second.to(device));
    }
    check_graph_inputs(graph, inputs, device);
  } else {
    for (const GraphInput& in : graph.inputs) {
      Shape shape;
      for (const Dim& d : in.type.shape) {
        if (!d.is_const() && bindings[static_cast<size_t>(d.sym)] < 0)
          throw Error(fmt::format("input %{} has dynamic dim s{}; pass --dim s{}=N or --inputs",
                                  in.name, d.sym, d.sym));
        shape.push_back(d.eval(bindings));
      }
      inputs.push_back(random_input(in.type, shape).to(device));
    }
  }
  if (!args.trace_dir.empty()) setenv("KILN_TRACE", args.trace_dir.c_str(), 1);
  std::optional<Profiler> profiler;
  if (!args.profile_path.empty()) {
    profiler.emplace();
    profiler->start();
  }
  CompileOptions options;
  if (!args.mode.empty()) options.mode = parse_compile_mode(args.mode, "--mode");
  options.name = graph.name;
  ResolvedOptions resolved = resolve_options(options);
  resolved.device = device;
  auto executable = compile_graph(graph, resolved);
  std::vector<Tensor> outputs = executable->run(inputs);
  std::vector<double> seconds;
  for (int i = 0; i < args.repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    outputs = executable->run(inputs);
    if (device == Device::cuda)
      for (const Tensor& out : outputs) (void)out.cpu();  // the device's work, done
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (std::optional<std::string> dir = trace_directory()) {
    Repro repro = repro_of_call(graph, inputs, resolved, false);
    repro.bindings = bindings;
    std::string path = write_repro(*dir, repro);
    trace_artifact("graph_runnable", {{"graph", graph.name}, {"path", path}});
    fmt::print("repro: {}\n", path);
  }
  if (profiler) {
    profiler->stop();
    profiler->export_chrome_trace(args.profile_path);
    fmt::print("profile: {} ({} events)\n", args.profile_path, profiler->events().size());
  }
  fmt::print("graph {}: {} inputs, {} constants, {} nodes; mode {}, backend {}\n", graph.name,
             graph.inputs.size(), graph.constants.size(), graph.nodes.size(),
             compile_mode_name(resolved.mode), executable->backend_name());
  if (!seconds.empty()) {
    std::sort(seconds.begin(), seconds.end());
    fmt::print("time per call over {} calls: best {:.3f} ms, median {:.3f} ms (stage {})\n",
               seconds.size(), seconds.front() * 1e3, seconds[seconds.size() / 2] * 1e3,
               executable->stage());
  }
  if (!args.outputs_path.empty()) {
    TensorMap written;
    for (size_t i = 0; i < outputs.size(); ++i)
      written[fmt::format("output{}", i)] = outputs[i].contiguous().cpu();
    save_safetensors(args.outputs_path, written);
    fmt::print("outputs: {}\n", args.outputs_path);
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor out = outputs[i].contiguous().cpu();
    double sum = out.numel() ? out.to(DType::f64).sum().item<double>() : 0.0;
    uint64_t hash = XXH64(out.impl()->data_ptr(),
                          static_cast<size_t>(out.numel() * dtype_size(out.dtype())), 0);
    fmt::print("output {}: {}{} sum={:.6g} xxh64={:016x}\n", i, dtype_name(out.dtype()),
               shape_string(out.sizes()), sum, hash);
  }
  return 0;
}

}  // namespace kiln::cli
