// Executable: what a backend makes of a graph, and all the compiled-function runtime needs
// of it. Backends so far: the graph interpreter (src/runtime/interpreter_backend.cc). The
// native CPU and CUDA backends implement the same interface.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "compile/shared_object.h"
#include "graph/graph.h"
#include "kiln/compile.h"
#include "runtime/plan.h"

namespace kiln {

// An output that the caller copies into an input after the run: a compiled function's
// write-back of a mutation (x.add_(1) traced as a fresh value, then copied into x).
struct WriteInto {
  size_t output;
  size_t input;
};

class Executable {
 public:
  virtual ~Executable() = default;
  // Runs on inputs that passed the entry's guards; outputs never alias inputs.
  virtual std::vector<Tensor> run(const std::vector<Tensor>& inputs) = 0;
  // As run, told which outputs the caller will copy into which inputs. A backend may write
  // such an output into the input's memory directly, where nothing that reads the input's
  // old value runs after it, and then returns the input tensor itself as that output (the
  // one case of an output aliasing an input; the caller's copy is then skipped). The
  // default runs as run does.
  virtual std::vector<Tensor> run_writing_into(const std::vector<Tensor>& inputs,
                                               const std::vector<WriteInto>& into) {
    (void)into;
    return run(inputs);
  }
  virtual std::string_view backend_name() const = 0;
  // The steps each run performs, in order: kernel names, or "ext:<op>" for library and
  // eager steps. Empty for backends without kernels.
  virtual std::vector<std::string> kernel_names() const { return {}; }
  // The stage serving calls now: "eager", "fast", "optimized", or the backend's name.
  virtual std::string stage() const { return std::string(backend_name()); }
  // Background compiles that failed, one message each (staged executables).
  virtual std::vector<std::string> compile_errors() const { return {}; }
  // The background stages' decisions (compile.h's StageDecision); empty without stages.
  virtual std::vector<StageDecision> stage_history() const { return {}; }
  // Blocks until every background stage has landed or failed, at most `timeout_seconds`;
  // true when they all settled. Backends without background stages have nothing to wait for.
  virtual bool wait_for_stages(double timeout_seconds) {
    (void)timeout_seconds;
    return true;
  }
  // The kernels it runs now, with their configs, and how it was built (native code only).
  virtual std::vector<KernelInfo> kernels() const { return {}; }
  virtual std::string build_options() const { return {}; }
};

// Runs the graph on the eager interpreter: the backend every graph has until a native one
// is built for it, and the reference the native ones are checked against.
std::unique_ptr<Executable> make_interpreter_executable(std::shared_ptr<const Graph> graph);
std::unique_ptr<Executable> make_interpreter_executable(Graph graph);

// Runs a compiled plan with its units' loaded objects, one per unit: a CPU plan in
// native_backend.cc, a CUDA plan in cuda_backend.cc.
std::unique_ptr<Executable> make_native_executable(
    CompiledPlan plan, const std::vector<std::shared_ptr<KernelObject>>& objects);
std::unique_ptr<Executable> make_cuda_executable(
    CompiledPlan plan, const std::vector<std::shared_ptr<KernelObject>>& objects);

}  // namespace kiln
