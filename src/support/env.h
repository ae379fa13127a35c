// kiln's environment variables (docs/design.md §9), parsed in one place. A bad value is an Error
// naming the variable and the accepted values; options set in code win over these.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kiln/compile.h"

namespace kiln {

std::optional<std::string> env_value(const char* name);
// CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota
// (cpu.max "QUOTA PERIOD", rounded up), as a container limits them.
int usable_cpus();  // unset or empty: nullopt
// Durations kiln accepts from the environment or the CLI: finite, above 0, at most 30 days
// (a duration past that overflows the clocks it is added to).
constexpr double kMaxSeconds = 30.0 * 24 * 3600;
bool check_seconds(double seconds);
// A duration in seconds from `name` (check_seconds), else `fallback`; a bad value is an
// Error naming the variable and the accepted range.
double env_seconds(const char* name, double fallback);
// Compile workers kiln starts at most (KILN_COMPILE_THREADS, CompileOptions, --threads).
constexpr int kMaxCompileThreads = 1024;

// Parses a mode word (inprocess, subprocess, async, progressive, async+progressive);
// `source` names where it came from in the error.
CompileMode parse_compile_mode(const std::string& word, const std::string& source);
WorkerStart parse_worker_start(const std::string& word, const std::string& source);

// Checks the variables read later, deep inside a compile or a worker (KILN_LOGS,
// KILN_TRACE_SAVE_INPUTS, KILN_INJECT_FAULT), so that a bad value fails the call that
// resolves options, with an Error naming the variable and the accepted values.
void check_environment();
// KILN_TRACE_SAVE_INPUTS=1: repro files keep the real inputs.
bool trace_saves_inputs();

// A compiled function's name as a graph name: an identifier of the graph text format, which
// names kernels and files too. Characters other than letters, digits, '_' and '.' become
// '_' ("step 2+" → "step_2_"), a leading digit or an empty name gets a '_' in front, and
// the name is cut at 128 characters.
std::string graph_name_of(const std::string& name);

// The effective options: `options`' set fields, the rest from the environment.
struct ResolvedOptions {
  CompileMode mode = CompileMode::InProcess;
  WorkerStart worker_start = WorkerStart::Subprocess;
  int compile_threads = 1;
  std::string name;
  std::vector<std::string> stages;  // progressive stages; empty: the default
  std::optional<bool> autotune;     // unset: the mode's default (CompileOptions::autotune)
  bool coordinate_descent = true;
  bool max_autotune = false;
  bool cuda_graphs = false;
  bool freeze_captured = false;
  Device device = Device::cpu;  // per traced entry: where its inputs live, so where it runs
};
// Checks the environment first (check_environment); `name` becomes graph_name_of(name).
ResolvedOptions resolve_options(const CompileOptions& options);

}  // namespace kiln
