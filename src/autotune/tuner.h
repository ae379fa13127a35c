// Autotuning a plan's kernels (docs/design.md §6). For each kernel with a tuning space:
//   1. the autotune cache (autotune/KEY.json, keyed by toolchain identity + tuning hash):
//      a hit is the config, nothing is timed (autotune.cache_hits);
//   2. the lookup table (KILN_AUTOTUNE_LOOKUP_TABLE): a hit replaces timing the candidate
//      list (autotune.lookup_hits) and is where coordinate descent starts;
//   3. otherwise the default and the space's candidates are compiled as variants of the
//      kernel in one translation unit and timed in the benchmark worker on inputs of the
//      graph's size hints (autotune.runs);
//   4. coordinate descent: the neighbours of the best config (one field changed) are timed
//      beside it, round after round, while one is faster by more than the noise margin;
//   5. the winner is cached and set on the plan's kernel; the caller rebuilds the units
//      (plan_builder.h's assemble_units) with the chosen configs.
// A kernel whose variants fail to compile or to run keeps its default config (logged under
// KILN_LOGS=autotune, counted in autotune.failures): tuning never fails a compile.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autotune/benchmark.h"
#include "autotune/lookup_table.h"
#include "cache/cache.h"
#include "compile/toolchain.h"
#include "runtime/plan.h"

namespace kiln {

struct TuneSetup {
  Toolchain toolchain;  // the one the plan's units are built with
  // Compiles a translation unit to object bytes: here, or in a compile worker.
  std::function<std::string(const std::string& name, const std::string& source)> compile;
  // Times a request's kernels (median seconds each, in order): the caller's benchmark
  // worker (benchmark_in_worker), so tuning itself starts no process.
  std::function<std::vector<double>(const BenchmarkRequest& request, const std::string& what)>
      benchmark;
  std::optional<Cache> cache;
  std::shared_ptr<const LookupTable> table;
  bool coordinate_descent = true;
  std::vector<int64_t> size_hints;  // per size symbol; missing ones are taken as 1024
  double seconds_per_config = 0.05;
  // A background stage's tuning: its benchmark worker times on one thread, the core its
  // program's calls leave it (staged_executable.cc), so THREADS and GRAIN, which only a
  // timing on every core can decide, keep their defaults (the kernel's thread choice then
  // settles threads on live calls), and its configs are cached apart from those timed on
  // every core.
  bool one_core = false;
};

// What tuning did for one kernel.
struct TuneReport {
  std::string kernel;
  std::string hash;
  std::string tuning;  // cached, lookup_table, benchmarked, or default (nothing to tune, or failed)
  KernelConfig start;  // where coordinate descent started
  KernelConfig chosen;
  std::vector<std::pair<KernelConfig, double>> timed;  // every timing, in order
  double default_seconds = 0;                          // 0 when the default was not timed
  double chosen_seconds = 0;
  std::string error;
};

// Sets each tunable kernel's config; the units' source is not rebuilt here.
std::vector<TuneReport> autotune_plan(CompiledPlan& plan, const TuneSetup& setup);

// The name-agnostic hash that keys tuned configs: the kernel's body with its name replaced,
// its tuning space, and the size hints of the symbols (32 hex digits).
std::string tuning_hash(const KernelLaunch& kernel, const std::vector<int64_t>& size_hints);

}  // namespace kiln
