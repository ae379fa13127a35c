#include "support/env.h"

#include <fmt/format.h>
#include <sched.h>
#include <fstream>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "kiln/error.h"
#include "support/fault_injection.h"
#include "support/log.h"

namespace kiln {

namespace {
constexpr std::pair<const char*, CompileMode> kModes[] = {
    {"inprocess", CompileMode::InProcess},
    {"subprocess", CompileMode::Subprocess},
    {"async", CompileMode::Async},
    {"progressive", CompileMode::Progressive},
    {"async+progressive", CompileMode::AsyncProgressive},
};
constexpr std::pair<const char*, WorkerStart> kStarts[] = {
    {"subprocess", WorkerStart::Subprocess},
    {"fork", WorkerStart::Fork},
    {"spawn", WorkerStart::Spawn},
};

}  // namespace

int usable_cpus() {
  int cpus = 1;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  std::ifstream max_file("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long long period = 0;
  if (max_file >> quota >> period && quota != "max" && period > 0) {
    long long q = std::atoll(quota.c_str());
    if (q > 0)
      cpus =
          std::min<int>(cpus, static_cast<int>(std::max<long long>(1, (q + period - 1) / period)));
  }
  return cpus;
}

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

bool check_seconds(double seconds) {
  return std::isfinite(seconds) && seconds > 0 && seconds <= kMaxSeconds;
}

double env_seconds(const char* name, double fallback) {
  auto v = env_value(name);
  if (!v) return fallback;
  double seconds = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), seconds);
  if (ec != std::errc() || end != v->data() + v->size() || !check_seconds(seconds))
    throw Error(
        fmt::format("{}: '{}' is not accepted (accepted: a number of seconds above 0 and "
                    "at most {:.0f})",
                    name, *v, kMaxSeconds));
  return seconds;
}

std::string_view compile_mode_name(CompileMode mode) {
  for (const auto& [word, m] : kModes)
    if (m == mode) return word;
  return "?";
}

std::string_view worker_start_name(WorkerStart start) {
  for (const auto& [word, s] : kStarts)
    if (s == start) return word;
  return "?";
}

CompileMode parse_compile_mode(const std::string& word, const std::string& source) {
  for (const auto& [w, m] : kModes)
    if (word == w) return m;
  throw Error(
      fmt::format("{}: unknown compile mode '{}' (accepted: inprocess, subprocess, "
                  "async, progressive, async+progressive)",
                  source, word));
}

WorkerStart parse_worker_start(const std::string& word, const std::string& source) {
  for (const auto& [w, s] : kStarts)
    if (word == w) return s;
  throw Error(fmt::format("{}: unknown worker start '{}' (accepted: subprocess, fork, spawn)",
                          source, word));
}

void check_environment() {
  check_log_topics();
  if (auto v = env_value("KILN_TRACE_SAVE_INPUTS"); v && *v != "0" && *v != "1")
    throw Error(fmt::format("KILN_TRACE_SAVE_INPUTS: '{}' is not accepted (accepted: 0, 1)", *v));
  injected_fault();
  env_seconds("KILN_COMPILE_IDLE_SECONDS", 1);
  env_seconds("KILN_COMPILE_TIMEOUT", 1);
}

bool trace_saves_inputs() { return env_value("KILN_TRACE_SAVE_INPUTS").value_or("0") == "1"; }

std::string graph_name_of(const std::string& name) {
  constexpr size_t kMaxName = 128;  // it names kernels and files too
  std::string out;
  for (char c : name.substr(0, kMaxName))
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ? c : '_';
  if (out.empty() || !(std::isalpha(static_cast<unsigned char>(out[0])) || out[0] == '_'))
    out.insert(0, "_");
  return out;
}

ResolvedOptions resolve_options(const CompileOptions& options) {
  check_environment();
  ResolvedOptions r;
  r.name = graph_name_of(options.name);
  r.stages = options.stages;
  r.autotune = options.autotune;
  r.coordinate_descent = options.coordinate_descent;
  r.max_autotune = options.max_autotune;
  r.cuda_graphs = options.cuda_graphs;
  r.freeze_captured = options.freeze_captured;
  if (options.mode) {
    r.mode = *options.mode;
  } else if (auto v = env_value("KILN_COMPILE_MODE")) {
    r.mode = parse_compile_mode(*v, "KILN_COMPILE_MODE");
  }
  if (options.worker_start) {
    r.worker_start = *options.worker_start;
  } else if (auto v = env_value("KILN_WORKER_START")) {
    r.worker_start = parse_worker_start(*v, "KILN_WORKER_START");
  }
  if (options.compile_threads) {
    r.compile_threads = *options.compile_threads;
  } else if (auto v = env_value("KILN_COMPILE_THREADS")) {
    int n = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || end != v->data() + v->size() || n < 1 || n > kMaxCompileThreads)
      throw Error(
          fmt::format("KILN_COMPILE_THREADS: '{}' is not a thread count (accepted: an "
                      "integer from 1 to {})",
                      *v, kMaxCompileThreads));
    r.compile_threads = n;
  } else {
    r.compile_threads = usable_cpus();
  }
  if (r.compile_threads < 1 || r.compile_threads > kMaxCompileThreads)
    throw Error(fmt::format("CompileOptions::compile_threads must be from 1 to {}, got {}",
                            kMaxCompileThreads, r.compile_threads));
  return r;
}

}  // namespace kiln
