#include "runtime/library_warmup.h"

#include <fmt/format.h>

#include <vector>

#include "cuda/driver.h"
#include "eager/interpreter.h"
#include "graph/dim.h"
#include "support/log.h"
#include "support/spans.h"
#include "tensor/tensor_impl.h"

namespace kiln {
namespace {

bool runs_in_a_library(Op op) { return op == Op::matmul || op == Op::bmm || op == Op::linear; }

// The library steps' nodes with scratch operands of their static shapes; the operands are
// made here, on the caller's thread, so that the plan may go away while the warm-up runs.
struct WarmupStep {
  Node node;
  std::vector<Tensor> args;
};

std::vector<WarmupStep> library_steps(const CompiledPlan& plan) {
  std::vector<WarmupStep> steps;
  if (plan.device != Device::cuda) return steps;
  const Graph& g = plan.graph;
  for (const PlanStep& s : plan.steps) {
    if (s.kind != PlanStep::Kind::Ext) continue;
    const Node& node = g.nodes[static_cast<size_t>(s.node)];
    if (!runs_in_a_library(node.op)) continue;
    WarmupStep step{node, {}};
    for (ValueId v : node.inputs) {
      std::vector<int64_t> shape;
      if (!try_const_shape(g.value_type(v).shape, &shape)) break;
      // Zeroed (on kiln's stream), so that no product reads uninitialized memory; its
      // values are thrown away, only its setup counts.
      Tensor scratch =
          make_tensor(Shape(shape.begin(), shape.end()), g.value_type(v).dtype, Device::cuda);
      cuda::check(
          cuda::driver().cuMemsetD8Async(
              reinterpret_cast<cuda::CUdeviceptr>(scratch.impl()->data_ptr()), 0,
              static_cast<size_t>(scratch.numel() * dtype_size(scratch.dtype())), cuda::stream()),
          "zeroing a library warm-up operand");
      step.args.push_back(std::move(scratch));
    }
    if (step.args.size() == node.inputs.size()) steps.push_back(std::move(step));
  }
  return steps;
}

}  // namespace

std::future<void> warm_up_libraries(const CompiledPlan& plan) {
  std::vector<WarmupStep> steps;
  try {
    steps = library_steps(plan);
  } catch (const std::exception& e) {
    if (log_enabled("pipeline"))
      log_line("pipeline", fmt::format("library warm-up skipped: {}", e.what()));
  }
  if (steps.empty()) {
    std::promise<void> none;
    none.set_value();
    return none.get_future();
  }
  return std::async(std::launch::async, [steps = std::move(steps)] {
    SpanScope span("compile", fmt::format("library warm-up ({} steps)", steps.size()));
    for (const WarmupStep& s : steps) {
      try {
        run_node(s.node, s.args, {});
      } catch (const std::exception& e) {
        if (log_enabled("pipeline"))
          log_line("pipeline", fmt::format("library warm-up: {}", e.what()));
      }
    }
  });
}

}  // namespace kiln
