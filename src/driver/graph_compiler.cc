#include "driver/graph_compiler.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <future>
#include <mutex>

#include "autotune/tuner.h"
#include "cache/cache.h"
#include "cuda/driver.h"
#include "driver/object_store.h"
#include "driver/plan_builder.h"
#include "graph/text.h"
#include "kiln/error.h"
#include "support/build_id.h"
#include "support/log.h"
#include "runtime/library_warmup.h"
#include "runtime/profiling.h"
#include "support/stats.h"
#include "tensor/tensor_impl.h"
#include "wire/frame.h"
#include "worker/pool.h"

namespace kiln {

namespace {

const char* tier_word(Tier t) { return t == Tier::fast ? "fast" : "optimized"; }

TensorMap constants_of(const Graph& graph) {
  TensorMap given;
  for (const GraphConstant& c : graph.constants) given[c.name] = c.value;
  return given;
}

std::string graph_entry(const CompiledPlan& plan, const TensorMap& given) {
  return encode_fields({{"plan", plan_to_json(plan)}, {"constants", serialize_safetensors(new_constants(plan, given))}});
}

CompiledPlan plan_from_fields(const std::string& plan_json, const std::string& constants_image,
                              const TensorMap& given, const std::string& source) {
  TensorMap made = parse_safetensors(reinterpret_cast<const uint8_t*>(constants_image.data()),
                                     constants_image.size(), source + " (constants)");
  return plan_from_json(plan_json, given, made, source);
}

std::optional<CompiledPlan> cached_plan(const Cache& cache, const std::string& key, const TensorMap& given) {
  std::optional<std::string> entry = cache.get(CacheKind::graph, key);
  if (!entry) return std::nullopt;
  std::string source = fmt::format("graph cache entry {}", key);
  try {
    Fields fields = decode_fields(*entry);
    return plan_from_fields(fields.at("plan"), fields.at("constants"), given, source);
  } catch (const std::exception& e) {  // a bad entry is a miss; the rebuild overwrites it
    if (log_enabled("cache")) log_line("cache", fmt::format("{}: {}; treated as a miss", source, e.what()));
    return std::nullopt;
  }
}

std::string cache_dir_field(const std::optional<Cache>& cache) { return cache ? cache->root() : std::string(); }

TuneSetup tune_setup(const NativeCompile& how, const std::optional<Cache>& cache) {
  TuneSetup setup;
  setup.toolchain = toolchain_of(how);
  setup.benchmark_start = how.start;
  setup.cache = cache;
  setup.table = LookupTable::from_environment();
  setup.coordinate_descent = how.coordinate_descent;
  setup.size_hints = how.size_hints;
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
}

// The job's tier word: a CPU tier, or "cuda" (NVRTC for the job's "arch").
const char* job_tier(const NativeCompile& how) { return how.device == Device::cuda ? "cuda" : tier_word(how.tier); }

Job unit_job(const ObjectUnit& u, const NativeCompile& how, const std::optional<Cache>& cache) {
  return Job{MessageType::compile_unit,
             {{"name", u.name},
              {"source", u.source},
              {"tier", job_tier(how)},
              {"arch", how.arch},
              {"compiler", how.compiler},
              {"cache_dir", cache_dir_field(cache)}},
             fmt::format("compile_unit {}", u.name),
             default_job_timeout()};
}

// One graph compiled in the workers, step by step in callbacks on the pool's threads:
// the plan job, then the missing units' jobs in parallel, then loading. Whoever finishes
// the last step calls `done`, exactly once.
class WorkerCompile : public std::enable_shared_from_this<WorkerCompile> {
 public:
  WorkerCompile(const Graph& graph, const NativeCompile& how, ExecutableDone done)
      : graph_(graph), how_(how), done_(std::move(done)), given_(constants_of(graph)), cache_(Cache::open()) {}

  void start() {
    key_ = cache_ ? graph_cache_key(graph_, how_) : std::string();
    std::optional<CompiledPlan> plan = cache_ ? cached_plan(*cache_, key_, given_) : std::nullopt;
    hit_ = plan.has_value();
    bump(hit_ ? Stat::cache_graph_hit : Stat::cache_graph_miss);
    if (plan) return with_plan(std::move(*plan));
    // The caller may be a call answering eagerly meanwhile: serializing the graph and its
    // constants and handing the job to the pool (which may start a worker) happen on a
    // thread of their own.
    auto self = shared_from_this();
    run_in_background([self] {
      try {
        self->submit_plan_job();
      } catch (...) {
        self->finish(std::current_exception());
      }
    });
  }

 private:
  void submit_plan_job() {
    auto self = shared_from_this();
    pool().submit(Job{MessageType::compile_graph,
                      {{"graph", print_graph(graph_)},
                       {"constants", serialize_safetensors(given_)},
                       {"tier", job_tier(how_)},
                       {"arch", how_.arch},
                       {"compiler", how_.compiler}},
                      fmt::format("compile_graph {}", graph_.name),
                      default_job_timeout()},
                  [self](std::exception_ptr error, Fields reply) {
                    if (error) return self->finish(error);
                    try {
                      self->tune_then_build(plan_from_fields(reply.at("plan"), reply.at("constants"), self->given_,
                                                             fmt::format("compile worker's plan of graph {}", self->graph_.name)));
                    } catch (...) {
                      self->finish(std::current_exception());
                    }
                  });
  }

  WorkerPool& pool() { return compile_pool(how_.start, how_.threads, how_.idle_priority); }

  // A fresh plan from a worker: tuning waits on jobs, so it runs on a thread of its own,
  // never on the pool's threads (whose jobs it waits for).
  void tune_then_build(CompiledPlan plan) {
    if (!how_.autotune) {
      finish_plan(plan, nullptr, how_);
      return with_plan(std::move(plan));
    }
    auto self = shared_from_this();
    auto fresh = std::make_shared<CompiledPlan>(std::move(plan));
    run_in_background([self, fresh] {
      try {
        TuneSetup setup = tune_setup(self->how_, self->cache_);
        setup.compile = [self](const std::string& name, const std::string& source) {
          Job job = unit_job(ObjectUnit{name, "", source, self->how_.device}, self->how_, std::nullopt);
          return self->pool().submit(std::move(job)).get().at("object");
        };
        finish_plan(*fresh, &setup, self->how_);
        self->with_plan(std::move(*fresh));
      } catch (...) {
        self->finish(std::current_exception());
      }
    });
  }

  void with_plan(CompiledPlan plan) {
    plan_ = std::move(plan);
    if (log_enabled("output_code"))
      for (const ObjectUnit& u : plan_.units) log_line("output_code", u.source);
    objects_.resize(plan_.units.size());
    std::vector<size_t> missing;
    for (size_t i = 0; i < plan_.units.size(); ++i) {
      objects_[i] = find_object(plan_.units[i], cache_);
      if (!objects_[i]) missing.push_back(i);
    }
    if (missing.empty()) return finish(nullptr);
    outstanding_ = missing.size();
    auto self = shared_from_this();
    for (size_t i : missing)
      pool().submit(unit_job(plan_.units[i], how_, cache_), [self, i](std::exception_ptr error, Fields reply) {
        if (!error) {
          try {
            self->objects_[i] = load_object_from_reply(self->plan_.units[i], reply, self->cache_);
          } catch (...) {
            error = std::current_exception();
          }
        }
        std::lock_guard<std::mutex> lock(self->mutex_);
        if (error && !self->first_error_) self->first_error_ = error;
        if (--self->outstanding_ == 0) self->finish_locked();
      });
  }

  void finish(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error && !first_error_) first_error_ = error;
    finish_locked();
  }

  // Every unit's job has answered: build the executable, or report the first error.
  void finish_locked() {
    std::unique_ptr<Executable> executable;
    std::exception_ptr error = first_error_;
    if (!error) {
      try {
        if (cache_ && !hit_) cache_->put(CacheKind::graph, key_, graph_entry(plan_, given_));
        plan_.cuda_graphs = how_.cuda_graphs;
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
  std::string key_;
  bool hit_ = false;
  CompiledPlan plan_;
  std::vector<std::shared_ptr<KernelObject>> objects_;
  std::mutex mutex_;
  size_t outstanding_ = 0;
  std::exception_ptr first_error_;
};

// Here: the plan and every missing object are built in this process (units in parallel).
std::unique_ptr<Executable> compile_here(const Graph& graph, const NativeCompile& how) {
  const TensorMap given = constants_of(graph);
  const std::optional<Cache> cache = Cache::open();
  std::string key;
  std::optional<CompiledPlan> plan;
  if (cache) {
    SpanScope span("compile", "graph cache lookup " + graph.name);
    key = graph_cache_key(graph, how);
    plan = cached_plan(*cache, key, given);
  }
  const bool hit = plan.has_value();
  bump(hit ? Stat::cache_graph_hit : Stat::cache_graph_miss);
  if (!plan) {
    plan = build_plan(graph, toolchain_of(how), how.device);
    std::optional<TuneSetup> tuning;
    if (how.autotune) {
      tuning = tune_setup(how, cache);
      tuning->compile = [&](const std::string& name, const std::string& source) {
        return compile_object(tuning->toolchain, name, source);
      };
    }
    finish_plan(*plan, tuning ? &*tuning : nullptr, how);
  }
  if (log_enabled("output_code"))
    for (const ObjectUnit& u : plan->units) log_line("output_code", u.source);
  // Waited for on every way out (a std::async future's destructor waits).
  std::future<void> warmup = warm_up_libraries(*plan);
  std::vector<std::shared_ptr<KernelObject>> objects(plan->units.size());
  std::vector<size_t> missing;
  {
    SpanScope span("compile", "load objects " + graph.name);
    for (size_t i = 0; i < plan->units.size(); ++i) {
      objects[i] = find_object(plan->units[i], cache);
      if (!objects[i]) missing.push_back(i);
    }
  }
  if (!missing.empty()) {
    Toolchain toolchain = toolchain_of(how);
    std::vector<std::future<std::shared_ptr<KernelObject>>> compiles;
    for (size_t i : missing)
      compiles.push_back(std::async(missing.size() > 1 ? std::launch::async : std::launch::deferred,
                                    [&, i] { return compile_object_here(plan->units[i], toolchain, cache); }));
    std::exception_ptr first_error;  // every compile is collected before the first error is raised
    for (size_t j = 0; j < missing.size(); ++j) {
      try {
        objects[missing[j]] = compiles[j].get();
      } catch (...) {
        if (!first_error) first_error = std::current_exception();
      }
    }
    if (first_error) std::rethrow_exception(first_error);
  }
  if (cache && !hit) cache->put(CacheKind::graph, key, graph_entry(*plan, given));
  plan->cuda_graphs = how.cuda_graphs;
  warmup.wait();
  SpanScope span("compile", "executable " + graph.name);
  return make_native_executable(std::move(*plan), objects);
}

}  // namespace

void set_device(NativeCompile& how, Device device) {
  how.device = device;
  if (device == Device::cuda) how.arch = cuda::device_info().arch;
}

Toolchain toolchain_of(const NativeCompile& how) {
  return how.device == Device::cuda ? cuda_toolchain(how.arch) : toolchain_for(how.tier, how.compiler);
}

std::string graph_cache_key(const Graph& graph, const NativeCompile& how) {
  return content_key(graph_cache_key_text(graph, how));
}

std::string build_options_text(const NativeCompile& how) {
  auto on = [](bool b) { return b ? "on" : "off"; };
  if (how.device == Device::cuda)
    return fmt::format("device=cuda arch={} tier={} compiler=nvrtc autotune=off max_autotune={}", how.arch,
                       tier_word(how.tier), on(how.max_autotune));
  return fmt::format("tier={} compiler={} autotune={} coordinate_descent={} max_autotune={}", tier_word(how.tier),
                     how.compiler, on(how.autotune), on(how.autotune && how.coordinate_descent),
                     on(how.autotune && how.max_autotune));
}

std::string graph_cache_key_text(const Graph& graph, const NativeCompile& how) {
  std::string text = fmt::format("kiln graph entry 1\nbuild {}\n{}\n{}\n{}", build_id(), build_options_text(how),
                                 how.device == Device::cuda ? cuda_fingerprint(how.arch)
                                                            : toolchain_fingerprint(how.tier, how.compiler),
                                 print_graph(graph));
  if (how.autotune) {
    std::shared_ptr<const LookupTable> table = LookupTable::from_environment();
    text += fmt::format("\nsize hints {}\nlookup table {}", fmt::join(how.size_hints, ","), table ? table->digest() : "none");
  }
  for (const GraphConstant& c : graph.constants) {
    Tensor t = c.value.contiguous().cpu();
    const TensorImpl& impl = *t.impl();
    uint64_t digest = XXH3_64bits(impl.data_ptr(), static_cast<size_t>(t.numel() * dtype_size(t.dtype())));
    text += fmt::format("\nconstant {} {:016x}", c.name, digest);
  }
  return text;
}

void compile_native_async(const Graph& graph, const NativeCompile& how, ExecutableDone done) {
  if (!how.in_workers) {
    std::unique_ptr<Executable> executable;
    std::exception_ptr error;
    try {
      executable = compile_here(graph, how);
    } catch (...) {
      error = std::current_exception();
    }
    return done(error, std::move(executable));
  }
  std::make_shared<WorkerCompile>(graph, how, std::move(done))->start();
}

std::unique_ptr<Executable> compile_native(const Graph& graph, const NativeCompile& how) {
  if (!how.in_workers) return compile_here(graph, how);
  auto promise = std::make_shared<std::promise<std::unique_ptr<Executable>>>();
  std::future<std::unique_ptr<Executable>> result = promise->get_future();
  compile_native_async(graph, how, [promise](std::exception_ptr error, std::unique_ptr<Executable> executable) {
    if (error) promise->set_exception(error);
    else promise->set_value(std::move(executable));
  });
  return result.get();
}

}  // namespace kiln
