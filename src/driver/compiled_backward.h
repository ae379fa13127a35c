// Compiled autograd: a compiled function whose results require grad is traced together with
// its backward (the joint graph: the derivative table's ops recorded over the traced
// forward, seeded with one tangent input per result that requires grad), split by
// partition_joint into a forward graph (results plus saved values) and a backward graph, and
// both compiled in the entry's mode: the forward at once, the backward on the first
// backward() that runs it (AOTAutograd's lazy backward), so that a function called only for
// its values (weights that require grad in an inference loop) never pays for it. At each call
// the forward's results get one autograd node whose backward runs the backward graph on the
// saved values and the results' gradients.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/executable.h"
#include "trace/tracer.h"

namespace kiln {

struct BackwardPlan {
  std::vector<size_t> grad_results;  // the function's results that require grad
  std::vector<size_t> wrt_args;      // the graph inputs (call tensors, captured) given gradients
  bool empty() const { return grad_results.empty(); }
};

// While `tracer` is installed, after the forward traced `results` from `call_inputs` (the
// traced call tensors; the graph's scalars, `num_scalar_inputs`, follow them): records the
// gradients of the results that require grad, with respect to the call tensors and captured
// tensors that do, into *grads (zeros for those the results do not depend on). An empty
// plan (and no grads) when no result requires grad.
BackwardPlan trace_backward(Tracer& tracer, const std::vector<Tensor>& call_inputs,
                            size_t num_scalar_inputs, const std::vector<Tensor>& results,
                            std::vector<Tensor>* grads);

struct CompiledBackward {
  BackwardPlan plan;
  // Compiles the backward graph; run by backward_executable, once it succeeds.
  std::function<std::unique_ptr<Executable>()> compile;
  size_t num_saved = 0;              // forward outputs after the results and write-backs
  std::vector<size_t> saved_inputs;  // graph inputs the backward graph also reads
  std::string name;                  // the autograd node's: "<graph>Backward"
  // Called once, with the backward graph's inputs of its first run (its repro file).
  std::function<void(const std::vector<Tensor>&)> first_run;
  std::shared_ptr<std::once_flag> first_run_once = std::make_shared<std::once_flag>();
  struct Compiled {
    std::mutex mutex;
    std::shared_ptr<Executable> executable;
  };
  std::shared_ptr<Compiled> compiled = std::make_shared<Compiled>();
};

// The backward graph's executable, compiled by the first caller (a compile that throws is
// tried again by the next backward()).
std::shared_ptr<Executable> backward_executable(const CompiledBackward& backward);
// The executable if a backward() compiled it already, else null (also while one compiles it).
std::shared_ptr<Executable> backward_executable_if_compiled(const CompiledBackward& backward);

// After a forward run whose graph inputs were `args`: gives the results the plan names
// (of `results`, the function's results) one autograd node, output j for grad_results[j],
// whose backward runs the backward graph on `saved` and their gradients.
void attach_backward(const std::shared_ptr<const CompiledBackward>& backward,
                     const std::vector<Tensor>& args, std::vector<Tensor> saved,
                     const std::vector<Tensor>& results);

}  // namespace kiln
