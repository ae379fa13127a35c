#include "autotune/tuner.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "autotune/benchmark.h"
#include "autotune/spaces.h"
#include "codegen/c_emitter.h"
#include "kiln/error.h"
#include "support/log.h"
#include "support/spans.h"
#include "support/stats.h"

namespace kiln {

namespace {

// A config must beat the one it would replace by this much: less is noise on a busy machine.
constexpr double kNoiseMargin = 0.03;
constexpr int kMaxDescentRounds = 8;

std::vector<int64_t> hints_for(const Graph& graph, const std::vector<int64_t>& given) {
  std::vector<int64_t> hints(static_cast<size_t>(graph.num_symbols), 1024);
  for (size_t i = 0; i < hints.size() && i < given.size(); ++i) hints[i] = given[i];
  return hints;
}

std::vector<BenchmarkBuffer> buffers_of(const CompiledPlan& plan, const KernelLaunch& k,
                                        const std::vector<int64_t>& hints) {
  std::vector<BenchmarkBuffer> buffers;
  for (ValueId v : k.params) {
    const TensorType& t = plan.graph.value_type(v);
    int64_t n = 1;
    for (const Dim& d : t.shape) n *= d.eval(hints);
    buffers.push_back({t.dtype, n});
  }
  return buffers;
}

class KernelTuner {
 public:
  KernelTuner(const CompiledPlan& plan, const KernelLaunch& kernel, const TuneSetup& setup,
              const std::vector<int64_t>& hints)
      : plan_(plan),
        kernel_(kernel),
        setup_(setup),
        hints_(hints),
        space_(setup.one_core ? without_thread_fields(kernel.space) : kernel.space) {}

  // Times `configs` (complete) side by side; returns their seconds in order.
  std::vector<double> time(const std::vector<KernelConfig>& configs) {
    std::vector<KernelSource> variants;
    BenchmarkRequest request;
    for (size_t i = 0; i < configs.size(); ++i) {
      std::string name = fmt::format("{}__v{}", kernel_.name, i);
      variants.push_back({name, rename_kernel(kernel_.source, kernel_.name, name), configs[i]});
      request.kernels.push_back(name);
    }
    std::string source = emit_translation_unit(variants, cpp_dialect());
    request.object = setup_.compile(kernel_.name + "__variants", source);
    request.sizes = hints_;
    request.buffers = buffers_of(plan_, kernel_, hints_);
    request.seconds_per_kernel = setup_.seconds_per_config;
    std::vector<double> times = setup_.benchmark(
        request, fmt::format("benchmark {} ({} configs)", kernel_.name, configs.size()));
    for (size_t i = 0; i < configs.size(); ++i) {
      report_.timed.emplace_back(configs[i], times[i]);
      if (log_enabled("autotune"))
        log_line("autotune", fmt::format("{}: {} took {:.1f} us", kernel_.name,
                                         config_text(configs[i]), times[i] * 1e6));
    }
    bump(Stat::autotune_configs_timed, static_cast<int64_t>(configs.size()));
    return times;
  }

  // The best of `configs` (the first, the incumbent, unless another beats it by the margin).
  std::pair<KernelConfig, double> best_of(const std::vector<KernelConfig>& configs) {
    std::vector<double> times = time(configs);
    size_t best = 0;
    for (size_t i = 1; i < times.size(); ++i)
      if (times[i] < times[best]) best = i;
    if (best != 0 && times[best] > times[0] * (1 - kNoiseMargin)) best = 0;
    return {configs[best], times[best]};
  }

  void descend(KernelConfig* config, double* seconds) {
    std::vector<KernelConfig> seen;
    for (const auto& [c, t] : report_.timed) seen.push_back(c);
    for (int round = 0; round < kMaxDescentRounds; ++round) {
      std::vector<KernelConfig> next{*config};
      for (KernelConfig& n : space_.neighbours(*config))
        if (std::find(seen.begin(), seen.end(), n) == seen.end()) next.push_back(std::move(n));
      if (next.size() == 1) return;
      seen.insert(seen.end(), next.begin() + 1, next.end());
      auto [best, t] = best_of(next);
      *seconds = t;
      if (best == *config) return;
      *config = std::move(best);
    }
  }

  TuneReport run(const std::string& hash, const KernelConfig* from_table) {
    report_.kernel = kernel_.name;
    report_.hash = hash;
    const TuneSpace& space = space_;
    KernelConfig config = space.defaults;
    double seconds = 0;
    if (from_table) {
      bump(Stat::autotune_lookup_hits);
      report_.tuning = "lookup_table";
      config = space.complete(*from_table);
    } else {
      bump(Stat::autotune_runs);
      report_.tuning = "benchmarked";
      std::vector<KernelConfig> candidates{space.defaults};
      for (const KernelConfig& c : space.candidates) candidates.push_back(space.complete(c));
      std::tie(config, seconds) = best_of(candidates);
      report_.default_seconds = report_.timed.front().second;
    }
    report_.start = config;
    if (setup_.coordinate_descent) descend(&config, &seconds);
    report_.chosen = config;
    report_.chosen_seconds = seconds;
    return report_;
  }

 private:
  const CompiledPlan& plan_;
  const KernelLaunch& kernel_;
  const TuneSetup& setup_;
  const std::vector<int64_t>& hints_;
  const TuneSpace space_;  // what is timed: the kernel's space, less THREADS for one core
  TuneReport report_;
};

std::string cache_key(const TuneSetup& setup, const std::string& hash,
                      const KernelConfig* from_table) {
  return content_key(fmt::format("kiln autotune entry 1\n{}\n{}\nstart {}{}",
                                 setup.toolchain.identity(), hash,
                                 from_table ? config_text(*from_table) : "candidates",
                                 setup.one_core ? "\ntimed on one core" : ""));
}

std::optional<KernelConfig> cached_config(const TuneSetup& setup, const KernelLaunch& k,
                                          const std::string& key) {
  if (!setup.cache) return std::nullopt;
  std::optional<std::string> entry = setup.cache->get(CacheKind::autotune, key);
  if (!entry) return std::nullopt;
  try {
    KernelConfig config =
        parse_config(nlohmann::json::parse(*entry).at("config").get<std::string>(),
                     "autotune cache entry " + key);
    if (k.space.admits(config)) return k.space.complete(config);
  } catch (const std::exception& e) {
    if (log_enabled("cache"))
      log_line("cache",
               fmt::format("autotune cache entry {}: {}; treated as a miss", key, e.what()));
  }
  return std::nullopt;
}

void cache_config(const TuneSetup& setup, const std::string& key, const TuneReport& r) {
  if (!setup.cache) return;
  nlohmann::json entry{{"kernel", r.kernel},
                       {"hash", r.hash},
                       {"config", config_text(r.chosen)},
                       {"seconds", r.chosen_seconds},
                       {"default_seconds", r.default_seconds},
                       {"tuning", r.tuning}};
  setup.cache->put(CacheKind::autotune, key, entry.dump());
}

}  // namespace

std::string tuning_hash(const KernelLaunch& kernel, const std::vector<int64_t>& size_hints) {
  std::string text = rename_kernel(kernel.source, kernel.name, "KERNEL");
  text += fmt::format("\nspace {}\nhints {}", space_text(kernel.space), fmt::join(size_hints, ","));
  return content_key(text);
}

std::vector<TuneReport> autotune_plan(CompiledPlan& plan, const TuneSetup& setup) {
  const std::vector<int64_t> hints = hints_for(plan.graph, setup.size_hints);
  std::vector<TuneReport> reports;
  std::map<std::string, KernelConfig> tuned_here;  // kernels of one plan with the same hash
  for (KernelLaunch& k : plan.kernels) {
    if (k.space.empty()) continue;
    const std::string hash = tuning_hash(k, hints);
    if (auto it = tuned_here.find(hash); it != tuned_here.end()) {
      k.config = it->second;
      k.tuning = "cached";
      continue;
    }
    // The lookup table comes first (it is the user's word); the cache then keeps what was
    // tuned from where the table starts, so a changed table entry is tuned again.
    const KernelConfig* from_table = setup.table ? setup.table->find(hash) : nullptr;
    if (from_table && !k.space.admits(*from_table)) {
      if (log_enabled("autotune"))
        log_line("autotune",
                 fmt::format("{}: lookup table config {} is outside its space {}; ignored", k.name,
                             config_text(*from_table), space_text(k.space)));
      from_table = nullptr;
    }
    const std::string key = cache_key(setup, hash, from_table);
    if (from_table && !setup.coordinate_descent) {
      // Nothing to time: the table's config is the answer.
    } else if (std::optional<KernelConfig> cached = cached_config(setup, k, key)) {
      bump(Stat::autotune_cache_hits);
      k.config = *cached;
      k.tuning = "cached";
      reports.push_back({k.name, hash, "cached", *cached, *cached, {}, 0, 0, {}});
      tuned_here[hash] = k.config;
      continue;
    }
    TuneReport report;
    SpanScope span("autotune", "autotune " + k.name);
    try {
      report = KernelTuner(plan, k, setup, hints).run(hash, from_table);
      k.config = report.chosen;
      k.tuning = report.tuning;
      cache_config(setup, key, report);
    } catch (const std::exception& e) {
      bump(Stat::autotune_failures);
      report = {k.name, hash, "default", k.space.defaults, k.space.defaults, {}, 0, 0, e.what()};
      k.config = k.space.defaults;
      k.tuning = "default";
      if (log_enabled("autotune"))
        log_line("autotune", fmt::format("{}: tuning failed, default kept: {}", k.name, e.what()));
    }
    if (log_enabled("autotune"))
      log_line("autotune",
               fmt::format("{}: {} ({}), hash {}", k.name, config_text(k.config), k.tuning, hash));
    tuned_here[hash] = k.config;
    reports.push_back(std::move(report));
  }
  return reports;
}

}  // namespace kiln
