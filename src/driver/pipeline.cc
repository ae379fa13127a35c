// The compile pipeline, in order. Every stage is one line here, timed and logged
// (KILN_LOGS=pipeline), and the graph is verified after each pass (KILN_LOGS=passes prints
// it).
#include "driver/pipeline.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>

#include "driver/graph_compiler.h"
#include "driver/staged_executable.h"
#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/error.h"
#include "observe/trace_log.h"
#include "passes/passes.h"
#include "support/fault_injection.h"
#include "support/log.h"

namespace kiln {

namespace {

// Runs one stage, logging its duration under KILN_LOGS=pipeline.
template <class Stage>
auto timed(const char* stage, const Graph& graph, Stage&& run) {
  auto start = std::chrono::steady_clock::now();
  auto finish_log = [&] {
    if (!log_enabled("pipeline") && !trace_enabled()) return;
    double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    if (log_enabled("pipeline"))
      log_line("pipeline", fmt::format("{}: {} took {:.1f} us", graph.name, stage, us));
    trace_artifact("compile_timings", {{"graph", graph.name}, {"stage", stage}, {"us", us}});
  };
  if constexpr (std::is_void_v<decltype(run())>) {
    run();
    finish_log();
  } else {
    auto result = run();
    finish_log();
    return result;
  }
}

using Pass = PassResult (*)(const Graph&);

Graph run_pass(const char* name, Pass pass, const Graph& graph) {
  PassResult result = timed(name, graph, [&] { return pass(graph); });
  if (!result.changed) return result.graph;
  verify_graph(result.graph);
  if (log_enabled("passes"))
    log_line("passes", fmt::format("after {}:\n{}", name, print_graph(result.graph)));
  return std::move(result.graph);
}

// KILN_INJECT_FAULT=lowering:OP breaks OP's generated expression, so OP must be a pointwise
// op that reaches code generation; anything else would silently inject nothing.
void check_lowering_fault() {
  InjectedFault fault = injected_fault();
  if (fault.kind != InjectedFault::Kind::lowering) return;
  std::optional<Op> op = op_from_name(fault.op);
  if (op && decompose_ops_rewrites(*op))
    throw Error(fmt::format(
        "KILN_INJECT_FAULT: lowering:{0} cannot be injected: decompose_ops rewrites {0} into "
        "primitive ops before lowering, so {0} has no generated code of its own; break one "
        "of its primitives instead",
        fault.op));
  if (!op || !is_pointwise(op_info(*op).rule)) {
    std::vector<std::string_view> accepted;
    for (int i = 0; i < kNumOps; ++i)
      if (is_pointwise(op_info(static_cast<Op>(i)).rule) &&
          !decompose_ops_rewrites(static_cast<Op>(i)))
        accepted.push_back(op_name(static_cast<Op>(i)));
    throw Error(fmt::format(
        "KILN_INJECT_FAULT: lowering:{} is not accepted: {} (accepted: lowering:OP for OP "
        "one of {})",
        fault.op, op ? "not a pointwise op, so not generated as an expression" : "no such op",
        fmt::join(accepted, ", ")));
  }
}

}  // namespace

namespace {

bool every_device(Device) { return true; }
bool cuda_plans(Device device) { return device == Device::cuda; }
bool cpu_plans(Device device) { return device == Device::cpu; }

struct PassEntry {
  const char* name;
  Pass pass;
  bool (*applies)(Device);  // which plans run it
};

// Every graph pass, in order. The CUDA fusions bracket the generic passes: attention and
// activations are matched before decompose_ops takes softmax and gelu apart; epilogues
// after simplify_views and CSE have put the products' tails in their final form.
constexpr PassEntry kPasses[] = {
    {"fuse_attention", fuse_attention, cuda_plans},
    {"fuse_attention_f32", fuse_attention_f32, cpu_plans},
    {"fuse_gemm_activations", fuse_gemm_activations, cuda_plans},
    {"decompose_ops", decompose_ops, every_device},
    {"simplify_views", simplify_views, every_device},
    {"fold_constants", fold_constants, every_device},
    {"eliminate_common_subexpressions", eliminate_common_subexpressions, every_device},
    {"eliminate_dead_nodes", eliminate_dead_nodes, every_device},
    {"fuse_gemm_epilogues", fuse_gemm_epilogues, cuda_plans},
};

}  // namespace

Graph optimize_graph(const Graph& input, Device device) {
  Graph g = input;
  for (const PassEntry& entry : kPasses)
    if (entry.applies(device)) g = run_pass(entry.name, entry.pass, g);
  return g;
}

std::unique_ptr<Executable> compile_graph(const Graph& graph, const ResolvedOptions& options) {
  if (log_enabled("graph")) log_line("graph", print_graph(graph));
  if (trace_enabled())
    trace_artifact("graph", {{"graph", graph.name}, {"text", print_graph(graph)}});
  timed("verify", graph, [&] { verify_graph(graph); });
  check_lowering_fault();
  // InProcess and Subprocess build native code (here, or in workers) before returning; the
  // background modes return at once and compile their stages in workers.
  if (options.mode != CompileMode::InProcess && options.mode != CompileMode::Subprocess)
    return timed("launch stages", graph, [&] { return make_staged_executable(graph, options); });
  NativeCompile how;
  how.in_workers = options.mode == CompileMode::Subprocess;
  how.start = options.worker_start;
  how.threads = options.compile_threads;
  how.autotune = options.autotune.value_or(false);
  how.coordinate_descent = options.coordinate_descent;
  how.max_autotune = options.max_autotune;
  how.cuda_graphs = options.cuda_graphs;
  how.size_hints = graph.size_hints;
  set_device(how, options.device);
  return timed(how.in_workers ? "compile in workers" : "optimize+lower+codegen+compile", graph,
               [&] { return compile_native(graph, how); });
}

}  // namespace kiln
