// The background modes, timed from the user's side, with a fresh cache and fresh worker
// pools: how long the first call takes (against one eager run), how long until compiled
// code answers (Async), and when each progressive stage takes over and how fast it runs
// (AsyncProgressive: eager → fast → optimized). Prints a table; --json writes it.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "kiln/kiln.h"

using namespace kiln;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Workload {
  std::string name;
  std::function<Tensor(const Tensor&, const Tensor&)> fn;
  Tensor x, y;
};

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--json" && i + 1 < argc) json_path = argv[++i];
  const std::string cache = fmt::format("/tmp/kiln-async-bench-{}", getpid());
  setenv("KILN_CACHE_DIR", cache.c_str(), 1);
  std::vector<Workload> workloads = {
      {"(x+y).sin().cos(), 2^20 f32",
       [](const Tensor& x, const Tensor& y) { return cos(sin(x + y)); }, randn({1 << 20}),
       randn({1 << 20})},
      {"500 chained adds, 100x100",
       [](const Tensor& x, const Tensor&) {
         Tensor t = x;
         for (int i = 0; i < 500; ++i) t = t + 1.0f;
         return t;
       },
       randn({100, 100}), randn({1})},
      {"softmax rows, 1024 x 1024 f32",
       [](const Tensor& x, const Tensor&) { return softmax(x, -1); }, randn({1024, 1024}),
       randn({1})},
  };
  nlohmann::json rows = nlohmann::json::array();
  fmt::print("{:<32} {:>10} {:>12} {:>14} | {:>10} {:>10} {:>10} | {:>9} {:>9} {:>9}\n", "workload",
             "eager run", "first call", "compiled by", "fast at", "opt. at", "", "eager/call",
             "fast/call", "opt./call");
  for (const Workload& w : workloads) {
    auto eager_start = Clock::now();
    w.fn(w.x, w.y);
    double eager_ms = ms_since(eager_start);
    // Async: first call and time until compiled code answers.
    CompileOptions async;
    async.mode = CompileMode::Async;
    async.name = "async_bench";
    auto start = Clock::now();
    auto f = compile(w.fn, async);
    f(w.x, w.y);
    double first_ms = ms_since(start);
    double compiled_at = -1;
    while (ms_since(start) < 60000) {
      int64_t before = stats()["async.compiled_runs"];
      f(w.x, w.y);
      if (stats()["async.compiled_runs"] > before) {
        compiled_at = ms_since(start);
        break;
      }
    }
    // AsyncProgressive: when each stage took over, and its time per call.
    CompileOptions progressive;
    progressive.mode = CompileMode::AsyncProgressive;
    progressive.name = "progressive_bench";
    std::map<std::string, double> took_over, total;
    std::map<std::string, int> calls;
    start = Clock::now();
    auto g = compile(w.fn, progressive);
    while (ms_since(start) < 120000 && calls["optimized"] < 20) {
      // The stage that serves this call (read before it: one may land during the call).
      std::string stage = g.stages().empty() ? "eager" : g.stages().at(0);
      auto t = Clock::now();
      g(w.x, w.y);
      double ms = ms_since(t);
      if (!took_over.count(stage)) took_over[stage] = ms_since(start);
      total[stage] += ms;
      ++calls[stage];
    }
    auto per_call = [&](const std::string& s) { return calls[s] ? total[s] / calls[s] : 0.0; };
    fmt::print(
        "{:<32} {:>8.2f}ms {:>10.2f}ms {:>12.1f}ms | {:>8.1f}ms {:>8.1f}ms {:>10} | {:>7.3f}ms "
        "{:>7.3f}ms {:>7.3f}ms\n",
        w.name, eager_ms, first_ms, compiled_at, took_over["fast"], took_over["optimized"], "",
        per_call("eager"), per_call("fast"), per_call("optimized"));
    rows.push_back({{"workload", w.name},
                    {"eager_ms", eager_ms},
                    {"async_first_call_ms", first_ms},
                    {"async_compiled_at_ms", compiled_at},
                    {"fast_took_over_ms", took_over["fast"]},
                    {"optimized_took_over_ms", took_over["optimized"]},
                    {"eager_per_call_ms", per_call("eager")},
                    {"fast_per_call_ms", per_call("fast")},
                    {"optimized_per_call_ms", per_call("optimized")}});
  }
  std::filesystem::remove_all(cache);
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"benchmark", "async"}, {"rows", rows}}.dump(2)
                             << "\n";
    fmt::print("wrote {}\n", json_path);
  }
  return 0;
}
