// Where a graph's compile work runs. The compile driver (graph_compiler.cc) takes the same
// steps in every mode — cache lookup, plan, tuning, objects, cache write, executable — and
// hands the two kinds of work that can run elsewhere to an executor:
//   here     (InProcess) build_plan and the toolchains in this process, units in parallel
//   workers  (every other mode) compile_graph and compile_unit jobs on the worker pool
// Callbacks may run on any thread, each exactly once per request.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "cache/cache.h"
#include "driver/graph_compiler.h"
#include "runtime/plan.h"

namespace kiln {

class CompileExecutor {
 public:
  using PlanDone = std::function<void(std::exception_ptr error, CompiledPlan plan)>;
  using ObjectDone = std::function<void(size_t unit, std::exception_ptr error,
                                        std::shared_ptr<KernelObject> object)>;

  virtual ~CompileExecutor() = default;

  // Builds the plan of `graph` (passes, lowering, codegen); the plan's options and tuning
  // are the driver's. `graph` stays alive until `done` has been called (the driver owns it),
  // so an executor reads it in place rather than copying it on the caller's thread.
  virtual void build_plan(const Graph& graph, PlanDone done) = 0;
  // Compiles and loads `plan.units[i]` for each i of `units` (stored in the cache when
  // there is one). `plan` outlives every callback.
  virtual void compile_units(const CompiledPlan& plan, const std::vector<size_t>& units,
                             ObjectDone done) = 0;
  // A tuning candidate's object bytes (never cached), blocking.
  virtual std::string compile_candidate(const std::string& name, const std::string& source) = 0;
  // Runs `task` (which must not throw), which may block on this executor's work: here at
  // once, for the pool on a thread of its own (a pool thread must not wait on its jobs).
  virtual void run_blocking(std::function<void()> task) = 0;
};

// The executor `how` asks for: the workers' when how.in_workers, else here.
std::unique_ptr<CompileExecutor> make_compile_executor(const NativeCompile& how,
                                                       const std::optional<Cache>& cache);

}  // namespace kiln
