// The background modes, timed from the user's side, with a fresh cache and fresh worker
// pools: AsyncProgressive's first call, eager's time per call alone and while the stages
// compile, each stage's trial (its time against the stage in use, and whether it took over)
// and the final stage against eager. Prints a table; --json writes it.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
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

// Calls `f` in a loop for `seconds`: the median time per call.
double median_call_ms(const std::function<void()>& f, double seconds) {
  std::vector<double> ms;
  auto until = Clock::now() + std::chrono::duration<double>(seconds);
  do {
    auto t = Clock::now();
    f();
    ms.push_back(ms_since(t));
  } while (Clock::now() < until || ms.size() < 3);
  std::nth_element(ms.begin(), ms.begin() + static_cast<long>(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--json" && i + 1 < argc) json_path = argv[++i];
  const std::string cache = fmt::format("/tmp/kiln-async-bench-{}", getpid());
  setenv("KILN_CACHE_DIR", cache.c_str(), 1);
  manual_seed(0);
  auto layer = std::make_shared<nn::TransformerEncoderLayer>(256, 8, 1024, 0.0, "relu", 1e-5,
                                                             /*batch_first=*/true);
  layer->eval();
  // Inference: with parameters that require grad, the backward graph would compile (and
  // tune) in the background too, on the same two cores.
  for (Tensor& p : layer->parameters()) p.requires_grad_(false);
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
      {"softmax * sin.cos, 2048 x 2048",
       [](const Tensor& x, const Tensor&) { return softmax(x, -1) * x.sin().cos(); },
       randn({2048, 2048}), randn({1})},
      {"TransformerEncoderLayer d256, 8x128",
       [layer](const Tensor& x, const Tensor&) { return layer->forward(x); }, randn({8, 128, 256}),
       randn({1})},
  };
  nlohmann::json rows = nlohmann::json::array();
  fmt::print(
      "AsyncProgressive from a cold cache: each stage lands, is timed against the stage in use "
      "on live calls,\nand takes over only if faster. Per-call times are medians.\n\n");
  fmt::print("{:<36} {:>9} {:>10} {:>10} | {:>9} {:>20} | {:>9} {:>20} | {:>20} | {:>18}\n",
             "workload", "eager", "eager+bg", "1st call", "fast", "decision", "optimized",
             "decision", "eager recheck", "final");
  for (const Workload& w : workloads) {
    double eager_ms = median_call_ms([&] { w.fn(w.x, w.y); }, 1.0);
    CompileOptions progressive;
    progressive.mode = CompileMode::AsyncProgressive;
    progressive.name = "progressive_bench";
    std::map<std::string, std::vector<double>> per_stage;
    std::vector<double> settled_ms;
    auto start = Clock::now();
    auto g = compile(w.fn, progressive);
    double first_ms = -1;
    auto decided = [&] {
      std::vector<std::vector<StageDecision>> h = g.stage_history();
      if (h.empty() || h[0].size() < 2) return false;
      for (const StageDecision& d : h[0])
        if (d.outcome == "on_trial") return false;
      return true;
    };
    // Calls until both stages are decided, then 20 more (or a time limit).
    int after = 0;
    while (ms_since(start) < 180000 && after < 20) {
      std::string stage = g.stages().empty() ? "eager" : g.stages().at(0);
      auto t = Clock::now();
      g(w.x, w.y);
      double ms = ms_since(t);
      if (first_ms < 0) first_ms = ms;
      // Calls of a trial are served by either side: only calls outside trials count here.
      bool in_trial = false;
      const std::vector<std::vector<StageDecision>> now = g.stage_history();
      for (const StageDecision& d : now.at(0)) in_trial |= d.outcome == "on_trial";
      if (!in_trial) per_stage[stage].push_back(ms);
      // The final stage's time: once nothing compiles (calls before run on a thread fewer).
      if (decided()) {
        ++after;
        settled_ms.push_back(ms);
      }
    }
    auto median = [](std::vector<double> v) {
      if (v.empty()) return 0.0;
      std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
      return v[v.size() / 2];
    };
    std::map<std::string, StageDecision> decision;
    const std::vector<StageDecision> history = g.stage_history().at(0);
    for (const StageDecision& d : history) decision[d.stage] = d;
    auto describe = [&](const std::string& stage) {
      const StageDecision& d = decision[stage];
      if (d.outcome.empty()) return std::string("-");
      return fmt::format("{} ({:.1f}/{:.1f})", d.outcome == "promoted" ? "promoted" : "refused",
                         d.seconds * 1e3, d.against_seconds * 1e3);
    };
    const std::string final_stage = g.stages().at(0);
    double final_ms = median(settled_ms);
    double eager_bg = median(per_stage["eager"]);
    fmt::print(
        "{:<36} {:>7.2f}ms {:>8.2f}ms {:>8.2f}ms | {:>7.2f}ms {:>20} | {:>7.2f}ms {:>20} | "
        "{:>20} | {:>9} {:>6.2f}x\n",
        w.name, eager_ms, eager_bg, first_ms, decision["fast"].seconds * 1e3, describe("fast"),
        decision["optimized"].seconds * 1e3, describe("optimized"), describe("eager"), final_stage,
        final_ms > 0 ? eager_ms / final_ms : 0.0);
    nlohmann::json stages = nlohmann::json::array();
    for (const StageDecision& d : history)
      stages.push_back({{"stage", d.stage},
                        {"outcome", d.outcome},
                        {"against", d.against},
                        {"ms", d.seconds * 1e3},
                        {"against_ms", d.against_seconds * 1e3},
                        {"calls", d.calls}});
    rows.push_back({{"workload", w.name},
                    {"eager_ms", eager_ms},
                    {"eager_while_compiling_ms", eager_bg},
                    {"first_call_ms", first_ms},
                    {"stages", stages},
                    {"final_stage", final_stage},
                    {"final_ms", final_ms},
                    {"speedup_vs_eager", final_ms > 0 ? eager_ms / final_ms : 0.0}});
  }
  fmt::print(
      "\neager+bg: eager calls while the stages compile (a thread fewer, leaving a core to the "
      "compile) — against 'eager', the "
      "cost of compiling in the background.\ndecision: candidate/incumbent median ms in its "
      "trial. eager recheck: eager timed against the compiled stage serving at the end, when\n"
      "that stage never beat eager on every thread itself. final: the stage serving at the end\n"
      "and eager / its median once every stage is decided.\n");
  std::filesystem::remove_all(cache);
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"benchmark", "async"}, {"rows", rows}}.dump(2)
                             << "\n";
    fmt::print("wrote {}\n", json_path);
  }
  return 0;
}
