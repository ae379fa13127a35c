#include "driver/graph_compiler.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <future>
#include <mutex>

#include "autotune/tuner.h"
#include "cache/cache.h"
#include "cuda/driver.h"
#include "driver/compile_executor.h"
#include "driver/object_store.h"
#include "driver/plan_builder.h"
#include "driver/plan_entry.h"
#include "graph/text.h"
#include "kiln/error.h"
#include "runtime/library_warmup.h"
#include "support/blas.h"
#include "support/build_id.h"
#include "support/log.h"
#include "support/spans.h"
#include "support/stats.h"
#include "tensor/tensor_impl.h"
#include "wire/frame.h"

namespace kiln {

namespace {

std::optional<CompiledPlan> cached_plan(const Cache& cache, const std::string& key,
                                        const TensorMap& given) {
  std::optional<std::string> entry = cache.get(CacheKind::graph, key);
  if (!entry) return std::nullopt;
  std::string source = fmt::format("graph cache entry {}", key);
  try {
    return plan_of(decode_plan_reply(decode_fields(*entry)), given, source);
  } catch (const std::exception& e) {  // a bad entry is a miss; the rebuild overwrites it
    if (log_enabled("cache"))
      log_line("cache", fmt::format("{}: {}; treated as a miss", source, e.what()));
    return std::nullopt;
  }
}

TuneSetup tune_setup(const NativeCompile& how, const std::optional<Cache>& cache) {
  TuneSetup setup;
  setup.toolchain = toolchain_of(how);
  setup.benchmark = [start = how.start, idle = how.background](const BenchmarkRequest& request,
                                                               const std::string& what) {
    return benchmark_in_worker(start, idle, request, what);
  };
  setup.cache = cache;
  setup.table = LookupTable::from_environment();
  setup.coordinate_descent = how.coordinate_descent;
  setup.size_hints = how.size_hints;
  setup.one_core = how.background;
  return setup;
}

// A fresh plan gets its options recorded and, when asked, its kernels tuned. CUDA kernels
// have no tuning space yet; under max_autotune a CUDA plan's matrix products are marked
// `algorithm="tuned"`, so that cuBLASLt's candidates are timed when they first run.
void finish_plan(CompiledPlan& plan, TuneSetup* tuning, const NativeCompile& how) {
  plan.options = build_options_text(how);
  if (how.device == Device::cuda) {
    if (how.max_autotune)
      for (Node& node : plan.graph.nodes)
        if (op_info(node.op).rule == OpRule::Matmul || op_info(node.op).rule == OpRule::Linear ||
            op_info(node.op).rule == OpRule::Bmm)
          node.attrs.set("algorithm", std::string("tuned"));
    return;
  }
  if (!tuning) return;
  if (how.max_autotune) add_gemm_templates(plan, tuning->toolchain);
  autotune_plan(plan, *tuning);
  assemble_units(plan, tuning->toolchain);
}

// One graph compiled, in every mode, by the same steps:
//   graph cache lookup → (miss) plan → options and tuning → library warm-up started →
//   objects found or compiled → graph entry written → warm-up waited for → executable.
// The plan and the units are built by the executor (compile_executor.h), here or in the
// workers; its callbacks may run on any thread. Whoever finishes the last step calls
// `done`, exactly once.
class GraphCompile : public std::enable_shared_from_this<GraphCompile> {
 public:
  GraphCompile(const Graph& graph, const NativeCompile& how, ExecutableDone done)
      : graph_(graph),
        how_(how),
        done_(std::move(done)),
        given_(constants_of(graph)),
        cache_(Cache::open()),
        executor_(make_compile_executor(how, cache_)) {}

  void start() {
    std::optional<CompiledPlan> plan;
    try {
      if (cache_) {
        SpanScope span("compile", "graph cache lookup " + graph_.name);
        key_ = graph_cache_key(graph_, how_);
        plan = cached_plan(*cache_, key_, given_);
      }
    } catch (...) {
      return finish(std::current_exception());
    }
    hit_ = plan.has_value();
    bump(hit_ ? Stat::cache_graph_hit : Stat::cache_graph_miss);
    if (plan) return with_plan(std::move(*plan));
    auto self = shared_from_this();
    executor_->build_plan(graph_, [self](std::exception_ptr error, CompiledPlan fresh) {
      if (error) return self->finish(error);
      self->tune_then_build(std::move(fresh));
    });
  }

 private:
  // Tuning waits on compile and benchmark jobs, so it runs where the executor allows
  // blocking (never on a pool thread).
  void tune_then_build(CompiledPlan plan) {
    if (!how_.autotune) {
      finish_plan(plan, nullptr, how_);
      return with_plan(std::move(plan));
    }
    auto self = shared_from_this();
    auto fresh = std::make_shared<CompiledPlan>(std::move(plan));
    executor_->run_blocking([self, fresh] {
      try {
        TuneSetup setup = tune_setup(self->how_, self->cache_);
        setup.compile = [self](const std::string& name, const std::string& source) {
          return self->executor_->compile_candidate(name, source);
        };
        finish_plan(*fresh, &setup, self->how_);
      } catch (...) {
        return self->finish(std::current_exception());
      }
      self->with_plan(std::move(*fresh));
    });
  }

  void with_plan(CompiledPlan plan) {
    std::vector<size_t> missing;
    try {
      plan_ = std::move(plan);
      if (log_enabled("output_code"))
        for (const ObjectUnit& u : plan_.units) log_line("output_code", u.source);
      if (how_.warm_up_libraries)
        warmup_ = warm_up_libraries(plan_);  // waited for in finish_locked
      SpanScope span("compile", "load objects " + graph_.name);
      objects_.resize(plan_.units.size());
      for (size_t i = 0; i < plan_.units.size(); ++i) {
        objects_[i] = find_object(plan_.units[i], cache_);
        if (!objects_[i]) missing.push_back(i);
      }
    } catch (...) {
      return finish(std::current_exception());
    }
    if (missing.empty()) return finish(nullptr);
    outstanding_ = missing.size();
    auto self = shared_from_this();
    // Every unit is collected before the first error is reported.
    executor_->compile_units(
        plan_, missing,
        [self](size_t i, std::exception_ptr error, std::shared_ptr<KernelObject> object) {
          std::lock_guard<std::mutex> lock(self->mutex_);
          if (error && !self->first_error_) self->first_error_ = error;
          self->objects_[i] = std::move(object);
          if (--self->outstanding_ == 0) self->finish_locked();
        });
  }

  void finish(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error && !first_error_) first_error_ = error;
    finish_locked();
  }

  // Every step has answered: build the executable, or report the first error.
  void finish_locked() {
    std::unique_ptr<Executable> executable;
    std::exception_ptr error = first_error_;
    if (!error) {
      try {
        if (cache_ && !hit_)
          cache_->put(CacheKind::graph, key_, encode_fields(encode(plan_reply_of(plan_, given_))));
        plan_.cuda_graphs = how_.cuda_graphs;
      } catch (...) {
        error = std::current_exception();
      }
    }
    if (warmup_.valid())
      warmup_.wait();  // never running while the executable captures a CUDA graph
    if (!error) {
      try {
        SpanScope span("compile", "executable " + graph_.name);
        executable = make_native_executable(std::move(plan_), objects_);
      } catch (...) {
        error = std::current_exception();
      }
    }
    done_(error, std::move(executable));
  }

  Graph graph_;
  NativeCompile how_;
  ExecutableDone done_;
  TensorMap given_;
  std::optional<Cache> cache_;
  std::unique_ptr<CompileExecutor> executor_;
  std::string key_;
  bool hit_ = false;
  CompiledPlan plan_;
  std::future<void> warmup_;
  std::vector<std::shared_ptr<KernelObject>> objects_;
  std::mutex mutex_;
  size_t outstanding_ = 0;
  std::exception_ptr first_error_;
};

}  // namespace

void set_device(NativeCompile& how, Device device) {
  how.device = device;
  if (device == Device::cuda) how.arch = cuda::device_info().arch;
}

ToolchainSpec toolchain_spec(const NativeCompile& how) {
  return {how.device, how.tier, how.compiler, how.arch};
}

Toolchain toolchain_of(const NativeCompile& how) { return toolchain_of(toolchain_spec(how)); }

std::string graph_cache_key(const Graph& graph, const NativeCompile& how) {
  return content_key(graph_cache_key_text(graph, how));
}

std::string build_options_text(const NativeCompile& how) {
  auto on = [](bool b) { return b ? "on" : "off"; };
  if (how.device == Device::cuda)
    return fmt::format("device=cuda arch={} tier={} compiler=nvrtc autotune=off max_autotune={}",
                       how.arch, tier_name(how.tier), on(how.max_autotune));
  return fmt::format("tier={} compiler={} autotune={} coordinate_descent={} max_autotune={}",
                     tier_name(how.tier), how.compiler, on(how.autotune),
                     on(how.autotune && how.coordinate_descent),
                     on(how.autotune && how.max_autotune));
}

std::string graph_cache_key_text(const Graph& graph, const NativeCompile& how) {
  std::string text =
      fmt::format("kiln graph entry 1\nbuild {}\n{}\n{}\n{}", build_id(), build_options_text(how),
                  how.device == Device::cuda ? cuda_fingerprint(how.arch)
                                             : toolchain_fingerprint(how.tier, how.compiler),
                  print_graph(graph));
  // The library that generated GEMM calls name (a plan made with oneDNN's calls cannot load
  // where KILN_SGEMM=openblas left it unloaded).
  if (how.device != Device::cuda) text += "\nsgemm " + blas().sgemm_library;
  if (how.autotune) {
    std::shared_ptr<const LookupTable> table = LookupTable::from_environment();
    text += fmt::format("\nsize hints {}\nlookup table {}", fmt::join(how.size_hints, ","),
                        table ? table->digest() : "none");
  }
  for (const GraphConstant& c : graph.constants) {
    Tensor t = c.value.contiguous().cpu();
    const TensorImpl& impl = *t.impl();
    uint64_t digest =
        XXH3_64bits(impl.data_ptr(), static_cast<size_t>(t.numel() * dtype_size(t.dtype())));
    text += fmt::format("\nconstant {} {:016x}", c.name, digest);
  }
  return text;
}

void compile_native_async(const Graph& graph, const NativeCompile& how, ExecutableDone done) {
  std::make_shared<GraphCompile>(graph, how, std::move(done))->start();
}

std::unique_ptr<Executable> compile_native(const Graph& graph, const NativeCompile& how) {
  auto promise = std::make_shared<std::promise<std::unique_ptr<Executable>>>();
  std::future<std::unique_ptr<Executable>> result = promise->get_future();
  compile_native_async(graph, how,
                       [promise](std::exception_ptr error, std::unique_ptr<Executable> executable) {
                         if (error)
                           promise->set_exception(error);
                         else
                           promise->set_value(std::move(executable));
                       });
  return result.get();
}

}  // namespace kiln
