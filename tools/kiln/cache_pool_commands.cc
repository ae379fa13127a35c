// kiln cache stats|clear, kiln pool status.
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "cache/cache.h"
#include "commands.h"
#include "kiln/error.h"
#include "kiln/workers.h"
#include "support/env.h"

namespace kiln::cli {

int cache_command(const std::string& action) {
  std::optional<Cache> cache = Cache::open();
  if (!cache) {
    fmt::print("caches are disabled (KILN_FORCE_DISABLE_CACHES=1)\n");
    return 0;
  }
  if (action == "clear") {
    Cache::Usage before_graphs = cache->usage(CacheKind::graph),
                 before_kernels = cache->usage(CacheKind::kernel),
                 before_tuned = cache->usage(CacheKind::autotune),
                 before_sources = cache->sources_usage();
    cache->clear();
    fmt::print(
        "cleared {}: {} graph entries, {} kernel entries, {} autotune entries, {} kernel sources\n",
        cache->root(), before_graphs.entries, before_kernels.entries, before_tuned.entries,
        before_sources.entries);
    return 0;
  }
  if (action == "autotune-table") {
    // The configs this machine tuned, as a KILN_AUTOTUNE_LOOKUP_TABLE for another run.
    nlohmann::json table = nlohmann::json::object();
    for (const std::string& key : cache->keys(CacheKind::autotune)) {
      std::optional<std::string> entry = cache->get(CacheKind::autotune, key);
      if (!entry) continue;
      nlohmann::json e = nlohmann::json::parse(*entry, nullptr, false);
      if (!e.is_object() || !e.contains("hash") || !e.contains("config")) continue;
      table[e["hash"].get<std::string>()] = {{"config", e["config"]},
                                             {"kernel", e.value("kernel", "")},
                                             {"seconds", e.value("seconds", 0.0)}};
    }
    fmt::print("{}\n", table.dump(2));
    return 0;
  }
  fmt::print("cache {}\n", cache->root());
  for (auto [kind, label] :
       {std::pair{CacheKind::graph, "graphs"}, std::pair{CacheKind::kernel, "kernels"},
        std::pair{CacheKind::autotune, "autotune"}}) {
    Cache::Usage u = cache->usage(kind);
    fmt::print("  {:<8} {:>6} entries {:>12} bytes\n", label, u.entries, u.bytes);
  }
  Cache::Usage sources = cache->sources_usage();
  fmt::print("  {:<8} {:>6} files   {:>12} bytes\n", "sources", sources.entries, sources.bytes);
  return 0;
}

int pool_status_command(const std::string& start, int threads, double timeout_seconds) {
  CompileOptions options;
  if (!start.empty()) options.worker_start = parse_worker_start(start, "--start");
  if (threads != 0) options.compile_threads = threads;
  ResolvedOptions resolved = resolve_options(options);
  if (!check_seconds(timeout_seconds))
    throw Error(
        fmt::format("--timeout {}: accepted: a number of seconds above 0 and at most {:.0f}",
                    timeout_seconds, kMaxSeconds));
  auto t0 = std::chrono::steady_clock::now();
  bool ready = wait_pool_ready(timeout_seconds, options);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("pool: {} workers, {} start; {} in {:.1f} ms\n", resolved.compile_threads,
             std::string(worker_start_name(resolved.worker_start)), ready ? "ready" : "NOT ready",
             ms);
  for (const PoolWorker& w : pool_status())
    fmt::print("  worker {} ({}): pid {}, {}, {} jobs, {} failures\n", w.slot, w.start, w.pid,
               w.busy ? "busy" : "idle", w.jobs_done, w.failures);
  shutdown_compile_workers();
  return ready ? 0 : 2;
}

}  // namespace kiln::cli
