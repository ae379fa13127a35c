#include "driver/load_graph.h"

#include <fmt/format.h>

#include <filesystem>

#include "driver/pipeline.h"
#include "eager/interpreter.h"
#include "graph/text.h"
#include "kiln/error.h"
#include "kiln/load.h"
#include "kiln/safetensors.h"
#include "runtime/executable.h"
#include "support/text.h"

namespace kiln {

GraphFile read_graph_file(const std::string& path, const std::string& constants_path) {
  GraphFile file;
  file.constants_path = constants_path;
  if (file.constants_path.empty()) {
    std::filesystem::path p(path);
    p.replace_extension(".safetensors");
    std::error_code ec;
    if (std::filesystem::exists(p, ec)) file.constants_path = p.string();
  }
  TensorMap constants;
  if (!file.constants_path.empty()) constants = load_safetensors(file.constants_path);
  file.graph =
      parse_graph(read_text_file(path), path, file.constants_path.empty() ? nullptr : &constants);
  return file;
}

void check_graph_inputs(const Graph& graph, const std::vector<Tensor>& inputs, Device device) {
  if (inputs.size() != graph.inputs.size()) {
    std::vector<std::string> names;
    for (const GraphInput& in : graph.inputs) names.push_back("%" + in.name);
    throw Error(fmt::format("graph {} takes {} inputs ({}), got {}", graph.name,
                            graph.inputs.size(), fmt::join(names, ", "), inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].device() != device)
      throw Error(fmt::format("graph {}: input %{} is on {}, the graph runs on {}", graph.name,
                              graph.inputs[i].name, device_name(inputs[i].device()),
                              device_name(device)));
  bind_inputs(graph, inputs, nullptr);  // dtypes, ranks, sizes, one size per symbol
}

struct LoadedGraph::Impl {
  Graph graph;
  Device device;
  std::unique_ptr<Executable> executable;
};

LoadedGraph load_graph(const std::string& path, const LoadOptions& options) {
  GraphFile file = read_graph_file(path, options.constants_path);
  auto impl = std::make_shared<LoadedGraph::Impl>();
  impl->graph = std::move(file.graph);
  impl->device = options.device;
  for (GraphConstant& c : impl->graph.constants) {
    if (!c.value.defined())
      throw Error(fmt::format("{}: constant %{} is not in {}", path, c.name,
                              file.constants_path.empty() ? "any constants file (none was found)"
                                                          : file.constants_path));
    c.value = c.value.to(options.device);
  }
  CompileOptions compile = options.compile;
  if (compile.name == CompileOptions{}.name) compile.name = impl->graph.name;
  ResolvedOptions resolved = resolve_options(compile);
  resolved.device = options.device;
  impl->executable = compile_graph(impl->graph, resolved);
  return LoadedGraph(std::move(impl));
}

std::vector<Tensor> LoadedGraph::operator()(const std::vector<Tensor>& inputs) const {
  check_graph_inputs(impl_->graph, inputs, impl_->device);
  return impl_->executable->run(inputs);
}

const std::string& LoadedGraph::name() const { return impl_->graph.name; }

std::vector<std::string> LoadedGraph::input_names() const {
  std::vector<std::string> out;
  for (const GraphInput& in : impl_->graph.inputs) out.push_back(in.name);
  return out;
}

std::vector<std::string> LoadedGraph::input_types() const {
  std::vector<std::string> out;
  for (const GraphInput& in : impl_->graph.inputs) out.push_back(type_string(in.type));
  return out;
}

size_t LoadedGraph::num_outputs() const { return impl_->graph.outputs.size(); }
std::string LoadedGraph::stage() const { return impl_->executable->stage(); }
std::vector<KernelInfo> LoadedGraph::kernels() const { return impl_->executable->kernels(); }

}  // namespace kiln
