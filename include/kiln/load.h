// load_graph(): a text graph (.kiln) and its weights (the .safetensors beside it) compiled
// once in the chosen mode and called many times on real inputs, as ONNX Runtime's
// InferenceSession is: what `kiln run` uses, and how a graph saved with save_graph() runs
// in another program.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kiln/compile.h"

namespace kiln {

struct LoadOptions {
  CompileOptions compile;       // mode, workers, autotuning, ...
  Device device = Device::cpu;  // where the constants go and the graph runs
  std::string constants_path;   // default: the graph's path with .safetensors, if present
};

class LoadedGraph {
 public:
  // Runs the graph. Each input must have its graph input's dtype and rank, its static
  // sizes, and one size per size symbol; an Error names the input otherwise.
  std::vector<Tensor> operator()(const std::vector<Tensor>& inputs) const;
  const std::string& name() const;
  // The graph inputs' names (as the text names them) and types ("f32[s0, 64]").
  std::vector<std::string> input_names() const;
  std::vector<std::string> input_types() const;
  size_t num_outputs() const;
  std::string stage() const;  // as CompiledFunction::stages()
  std::vector<KernelInfo> kernels() const;

  struct Impl;
  explicit LoadedGraph(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<Impl> impl_;
};

// Reads `path` and its constants (every constant must be given), compiles it.
LoadedGraph load_graph(const std::string& path, const LoadOptions& options = {});

}  // namespace kiln
