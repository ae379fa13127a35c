// Runnable repros (docs/design.md §7): every compiled graph can leave a file from which `kiln
// repro FILE` rebuilds the graph, makes inputs of the recorded shapes, strides, dtypes and
// dynamic sizes (or loads the real ones, saved with KILN_TRACE_SAVE_INPUTS=1), compiles
// with the recorded options, runs, and compares with the eager interpreter
// (driver/replay_repro.h: replaying compiles, so it sits above this file format).
//
// Files, written atomically (temp + rename, the JSON last): BASE.json, with the graph's
// text, size bindings, input strides, options and seed; BASE.constants.safetensors and
// BASE.inputs.safetensors beside it when there are any. BASE is
// graph_runnable_<graph>_<pid>_<n> under the KILN_TRACE directory.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "kiln/safetensors.h"
#include "support/env.h"

namespace kiln {

struct Repro {
  Graph graph;                                // constants attached
  std::vector<int64_t> bindings;              // a value per size symbol
  std::map<std::string, Shape> strides;       // inputs that were not contiguous, by name
  std::string recorded_mode;                  // the mode the program compiled in
  CompileMode mode = CompileMode::InProcess;  // how the replay compiles: InProcess or Subprocess
  bool autotune = false;
  bool max_autotune = false;
  bool coordinate_descent = true;
  TensorMap saved_inputs;  // by input name; empty: random inputs
  uint64_t seed = 1;
};

// The repro of a call of `graph` (as traced) under `options`: the background modes replay
// their final stage's build in Subprocess mode.
Repro repro_of_call(const Graph& graph, const std::vector<Tensor>& inputs,
                    const ResolvedOptions& options, bool save_inputs);
std::string write_repro(const std::string& dir, const Repro& repro);  // the JSON file's path
Repro read_repro(const std::string& path);  // FormatError naming the file and the problem

// The inputs the replay runs on: the saved ones, else seeded random tensors of the
// recorded layout.
std::vector<Tensor> repro_inputs(const Repro& repro);

// Random values of `dtype` like real data: normal floats, small integers, booleans.
Tensor random_tensor(DType dtype, const Shape& shape);

}  // namespace kiln
