#include "driver/plan_builder.h"

#include "cache/cache.h"
#include "codegen/c_emitter.h"
#include "driver/pipeline.h"
#include "lower/lower.h"

namespace kiln {

namespace {

KernelLaunch launch_of(const LoopKernel& k, int unit) {
  KernelLaunch launch{k.name, unit, k.params, {}, k.kind == LoopKernel::Kind::Pointwise && k.flat};
  if (k.kind == LoopKernel::Kind::Foreach) {
    for (const LoopKernel& part : k.parts) launch.outputs.push_back(part.params[0]);
  } else {
    launch.outputs.assign(k.params.begin(), k.params.begin() + k.num_outputs);
  }
  return launch;
}

}  // namespace

CompiledPlan build_plan(const Graph& graph, const Toolchain& toolchain) {
  Program program = lower_graph(optimize_graph(graph));
  CompiledPlan plan;
  const Graph& g = program.graph;
  for (size_t first = 0; first < program.kernels.size(); first += kKernelsPerUnit) {
    size_t last = std::min(program.kernels.size(), first + kKernelsPerUnit);
    std::vector<LoopKernel> group(program.kernels.begin() + static_cast<std::ptrdiff_t>(first),
                                  program.kernels.begin() + static_cast<std::ptrdiff_t>(last));
    ObjectUnit unit;
    unit.name = group.front().name;
    unit.source = emit_translation_unit(g.name, group, g.num_symbols, cpp_dialect());
    unit.key = content_key(toolchain.identity() + "\n" + unit.source);
    for (const LoopKernel& k : group) plan.kernels.push_back(launch_of(k, static_cast<int>(plan.units.size())));
    plan.units.push_back(std::move(unit));
  }
  for (const Step& s : program.steps)
    plan.steps.push_back(s.kind == Step::Kind::Kernel ? PlanStep{PlanStep::Kind::Kernel, s.kernel, -1}
                                                      : PlanStep{PlanStep::Kind::Ext, -1, s.node});
  plan.read_by_kernel = program.read_by_kernel;
  plan.graph = std::move(program.graph);
  return plan;
}

}  // namespace kiln
