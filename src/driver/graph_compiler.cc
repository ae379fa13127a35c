#include "driver/graph_compiler.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <future>

#include "cache/cache.h"
#include "driver/object_store.h"
#include "driver/plan_builder.h"
#include "graph/text.h"
#include "kiln/error.h"
#include "support/build_id.h"
#include "support/log.h"
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

CompiledPlan plan_in_worker(const Graph& graph, const TensorMap& given, const NativeCompile& how) {
  Job job{MessageType::compile_graph,
          {{"graph", print_graph(graph)},
           {"constants", serialize_safetensors(given)},
           {"tier", tier_word(how.tier)},
           {"compiler", how.compiler}},
          fmt::format("compile_graph {}", graph.name),
          default_job_timeout()};
  Fields reply = compile_pool(how.start, how.threads, how.idle_priority).submit(std::move(job)).get();
  return plan_from_fields(reply.at("plan"), reply.at("constants"), given,
                          fmt::format("compile worker's plan of graph {}", graph.name));
}

std::vector<std::shared_ptr<SharedObject>> objects_for(const CompiledPlan& plan, const std::optional<Cache>& cache,
                                                       const NativeCompile& how) {
  std::vector<std::shared_ptr<SharedObject>> objects(plan.units.size());
  std::vector<size_t> missing;
  for (size_t i = 0; i < plan.units.size(); ++i) {
    objects[i] = find_object(plan.units[i], cache);
    if (!objects[i]) missing.push_back(i);
  }
  if (missing.empty()) return objects;
  if (how.in_workers) {
    WorkerPool& pool = compile_pool(how.start, how.threads, how.idle_priority);
    std::vector<std::future<Fields>> replies;
    for (size_t i : missing) {
      const ObjectUnit& u = plan.units[i];
      replies.push_back(pool.submit(Job{MessageType::compile_unit,
                                        {{"name", u.name},
                                         {"source", u.source},
                                         {"tier", tier_word(how.tier)},
                                         {"compiler", how.compiler},
                                         {"cache_dir", cache_dir_field(cache)}},
                                        fmt::format("compile_unit {}", u.name),
                                        default_job_timeout()}));
    }
    // Every reply is collected before the first error is raised: no job outlives the call.
    std::exception_ptr first_error;
    for (size_t j = 0; j < missing.size(); ++j) {
      try {
        objects[missing[j]] = load_object_from_reply(plan.units[missing[j]], replies[j].get(), cache);
      } catch (...) {
        if (!first_error) first_error = std::current_exception();
      }
    }
    if (first_error) std::rethrow_exception(first_error);
    return objects;
  }
  Toolchain toolchain = toolchain_for(how.tier, how.compiler);
  std::vector<std::future<std::shared_ptr<SharedObject>>> compiles;
  for (size_t i : missing)
    compiles.push_back(std::async(missing.size() > 1 ? std::launch::async : std::launch::deferred,
                                  [&, i] { return compile_object_here(plan.units[i], toolchain, cache); }));
  std::exception_ptr first_error;
  for (size_t j = 0; j < missing.size(); ++j) {
    try {
      objects[missing[j]] = compiles[j].get();
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
  if (first_error) std::rethrow_exception(first_error);
  return objects;
}

}  // namespace

std::string graph_cache_key(const Graph& graph, const NativeCompile& how) {
  return content_key(graph_cache_key_text(graph, how));
}

std::string graph_cache_key_text(const Graph& graph, const NativeCompile& how) {
  std::string text = fmt::format("kiln graph entry 1\nbuild {}\ntier {} {}\n{}\n{}", build_id(), tier_word(how.tier),
                                 how.compiler, toolchain_fingerprint(how.tier, how.compiler), print_graph(graph));
  for (const GraphConstant& c : graph.constants) {
    Tensor t = c.value.contiguous();
    const TensorImpl& impl = *t.impl();
    uint64_t digest = XXH3_64bits(impl.data_ptr(), static_cast<size_t>(t.numel() * dtype_size(t.dtype())));
    text += fmt::format("\nconstant {} {:016x}", c.name, digest);
  }
  return text;
}

std::unique_ptr<Executable> compile_native(const Graph& graph, const NativeCompile& how) {
  const TensorMap given = constants_of(graph);
  const std::optional<Cache> cache = Cache::open();
  const std::string key = cache ? graph_cache_key(graph, how) : std::string();
  std::optional<CompiledPlan> plan = cache ? cached_plan(*cache, key, given) : std::nullopt;
  const bool hit = plan.has_value();
  bump(hit ? Stat::cache_graph_hit : Stat::cache_graph_miss);
  if (!plan) plan = how.in_workers ? plan_in_worker(graph, given, how) : build_plan(graph, toolchain_for(how.tier, how.compiler));
  if (log_enabled("output_code"))
    for (const ObjectUnit& u : plan->units) log_line("output_code", u.source);
  std::vector<std::shared_ptr<SharedObject>> objects = objects_for(*plan, cache, how);
  if (cache && !hit) cache->put(CacheKind::graph, key, graph_entry(*plan, given));
  return make_native_executable(std::move(*plan), objects);
}

}  // namespace kiln
