#include "driver/compile_executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

#include "driver/object_store.h"
#include "driver/plan_builder.h"
#include "driver/plan_entry.h"
#include "worker/pool.h"

namespace kiln {

namespace {

class HereExecutor final : public CompileExecutor {
 public:
  HereExecutor(const NativeCompile& how, std::optional<Cache> cache)
      : toolchain_(toolchain_of(how)),
        device_(how.device),
        threads_(std::max(how.threads, 1)),
        cache_(std::move(cache)) {}

  void build_plan(const Graph& graph, PlanDone done) override {
    CompiledPlan plan;
    try {
      plan = kiln::build_plan(graph, toolchain_, device_);
    } catch (...) {
      return done(std::current_exception(), {});
    }
    done(nullptr, std::move(plan));
  }

  // Units compile on at most `threads_` threads (CompileOptions::compile_threads), each
  // taking the next unit not yet taken, so a graph of thousands of units runs that many
  // compilers at a time, never thousands at once (each within its own deadline); they are
  // reported in order, each as soon as it and those before it are done.
  void compile_units(const CompiledPlan& plan, const std::vector<size_t>& units,
                     ObjectDone done) override {
    std::vector<std::promise<std::shared_ptr<KernelObject>>> results(units.size());
    std::atomic<size_t> next{0};
    auto compile_next = [&] {
      for (size_t j; (j = next.fetch_add(1)) < units.size();) {
        try {
          const ObjectUnit& unit = plan.units[units[j]];
          results[j].set_value(
              compile_object_here(unit, unit_toolchain(toolchain_, unit.light), cache_));
        } catch (...) {
          results[j].set_exception(std::current_exception());
        }
      }
    };
    // jthreads: joined however this returns (a `done` that throws included).
    std::vector<std::jthread> threads;
    const size_t workers = std::min(units.size(), static_cast<size_t>(threads_));
    for (size_t t = 1; t < workers; ++t) threads.emplace_back(compile_next);
    compile_next();
    for (size_t j = 0; j < units.size(); ++j) {
      std::shared_ptr<KernelObject> object;
      std::exception_ptr error;
      try {
        object = results[j].get_future().get();
      } catch (...) {
        error = std::current_exception();
      }
      done(units[j], error, std::move(object));
    }
  }

  std::string compile_candidate(const std::string& name, const std::string& source) override {
    return compile_object(toolchain_, name, source);
  }

  void run_blocking(std::function<void()> task) override { task(); }

 private:
  Toolchain toolchain_;
  Device device_;
  int threads_;
  std::optional<Cache> cache_;
};

class WorkerExecutor final : public CompileExecutor {
 public:
  WorkerExecutor(const NativeCompile& how, std::optional<Cache> cache)
      : how_(how), cache_(std::move(cache)) {}

  // The caller may be a call answering eagerly meanwhile: serializing the graph and its
  // constants and handing the job to the pool (which may start a worker) happen on a
  // thread of their own.
  void build_plan(const Graph& graph, PlanDone done) override {
    run_in_background([this, graph = &graph, done] {
      try {
        std::string source = fmt::format("compile worker's plan of graph {}", graph->name);
        pool().submit(
            encode(plan_job(*graph, toolchain_spec(how_))),
            [given = constants_of(*graph), source, done](std::exception_ptr error, Fields reply) {
              if (error) return done(error, {});
              CompiledPlan plan;
              try {
                plan = plan_of(decode_plan_reply(reply), given, source);
              } catch (...) {
                return done(std::current_exception(), {});
              }
              done(nullptr, std::move(plan));
            });
      } catch (...) {
        done(std::current_exception(), {});
      }
    });
  }

  void compile_units(const CompiledPlan& plan, const std::vector<size_t>& units,
                     ObjectDone done) override {
    for (size_t i : units) {
      const ObjectUnit& unit = plan.units[i];
      pool().submit(encode(unit_job(unit.name, unit.source, cache_, unit.light)),
                    [&unit, i, done](std::exception_ptr error, Fields reply) {
                      std::shared_ptr<KernelObject> object;
                      if (!error) {
                        try {
                          object = load_object_from_reply(unit, decode_unit_reply(reply));
                        } catch (...) {
                          error = std::current_exception();
                        }
                      }
                      done(i, error, std::move(object));
                    });
    }
  }

  std::string compile_candidate(const std::string& name, const std::string& source) override {
    UnitReply reply =
        decode_unit_reply(pool().submit(encode(unit_job(name, source, std::nullopt, false))).get());
    return std::move(reply.object);
  }

  void run_blocking(std::function<void()> task) override { run_in_background(std::move(task)); }

 private:
  WorkerPool& pool() { return compile_pool(how_.start, how_.threads, how_.background); }

  CompileUnitJob unit_job(const std::string& name, const std::string& source,
                          const std::optional<Cache>& cache, bool light_unit) {
    ToolchainSpec spec = toolchain_spec(how_);
    if (light_unit && spec.tier == Tier::fast) spec.tier = Tier::light;
    return {name, source, spec, cache ? cache->root() : std::string()};
  }

  NativeCompile how_;
  std::optional<Cache> cache_;
};

}  // namespace

std::unique_ptr<CompileExecutor> make_compile_executor(const NativeCompile& how,
                                                       const std::optional<Cache>& cache) {
  if (how.in_workers) return std::make_unique<WorkerExecutor>(how, cache);
  return std::make_unique<HereExecutor>(how, cache);
}

}  // namespace kiln
