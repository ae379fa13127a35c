// Eager interpreter throughput against this machine's memory-copy ceiling. Prints a table
// and writes JSON (--json PATH). Each op runs on fresh results like a user's call would
// (the caching allocator recycles them); the figure is the best of repeated runs.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace {

using Clock = std::chrono::steady_clock;

double best_seconds(const std::function<void()>& run, int reps) {
  run();  // warm: page faults, allocator cache
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto start = Clock::now();
    run();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t.front();  // the least-disturbed run: this VM's noise only ever adds time
}

struct Row {
  std::string name;
  double seconds;
  double bytes;  // moved (read + written); 0 for compute-bound rows
  double flops;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace kiln;
  std::string json_path;
  int64_t n = int64_t{1} << 24;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    if (a == "--small") n = int64_t{1} << 20;
  }
  const int reps = 15;
  const double fb = 4.0 * static_cast<double>(n);  // bytes of one f32 tensor

  // The ceiling: a parallel memcpy of one tensor's bytes (read + written), threads as OpenMP.
  std::vector<char> src(static_cast<size_t>(fb), 1), dst(static_cast<size_t>(fb), 0);
  double copy_s = best_seconds(
      [&] {
#pragma omp parallel
        {
          size_t threads = static_cast<size_t>(omp_get_num_threads());
          size_t chunk = (src.size() + threads - 1) / threads;
          size_t begin = std::min(src.size(), chunk * static_cast<size_t>(omp_get_thread_num()));
          size_t len = std::min(chunk, src.size() - begin);
          std::memcpy(dst.data() + begin, src.data() + begin, len);
        }
      },
      reps);
  double ceiling = 2 * fb / copy_s;

  manual_seed(1);
  Tensor x = randn({n}), y = randn({n});
  Tensor rows = randn({n / 1024, 1024});
  Tensor square = randn({4096, n / 4096});
  Tensor a = randn({1024, 1024}), b = randn({1024, 1024});
  Tensor small = randn({100, 100});

  std::vector<Row> table;
  auto add_row = [&](std::string name, double bytes, double flops, std::function<void()> run) {
    table.push_back({std::move(name), best_seconds(run, reps), bytes, flops});
  };
  add_row("add(x, y)", 3 * fb, 0, [&] { add(x, y); });
  add_row("mul(x, 0.5)", 2 * fb, 0, [&] { mul(x, 0.5f); });
  add_row("relu(x)", 2 * fb, 0, [&] { relu(x); });
  add_row("where(x > 0, x, y)", 3 * fb + fb / 4, 0, [&] { where(x > 0, x, y); });
  add_row("x.to(f16)", fb + fb / 2, 0, [&] { x.to(DType::f16); });
  add_row("sum(x)", fb, 0, [&] { x.sum(); });
  add_row("sum(rows, -1)", fb, 0, [&] { rows.sum({-1}); });
  add_row("softmax(rows, -1)", 2 * fb, 0, [&] { softmax(rows, -1); });
  add_row("transpose(4096 x n/4096).contiguous()", 2 * fb, 0, [&] { square.t().contiguous(); });
  add_row("sin(x)", 0, static_cast<double>(n), [&] { sin(x); });
  add_row("cos(sin(x + y))", 0, static_cast<double>(n), [&] { cos(sin(x + y)); });
  add_row("matmul 1024^3 f32", 0, 2.0 * 1024 * 1024 * 1024, [&] { matmul(a, b); });
  add_row("500 chained adds, 100x100", 0, 0, [&] {
    Tensor t = small;
    for (int i = 0; i < 500; ++i) t = t + small;
  });

  fmt::print("kiln eager, {} threads, {} f32 elements per tensor\n", omp_get_max_threads(), n);
  fmt::print("memory-copy ceiling: {:.1f} GB/s (read + written)\n\n", ceiling / 1e9);
  fmt::print("{:<42} {:>10} {:>10} {:>10}\n", "op", "time", "GB/s", "of ceiling");
  nlohmann::json rows_json = nlohmann::json::array();
  for (const Row& r : table) {
    std::string rate = "", share = "";
    if (r.bytes > 0) {
      rate = fmt::format("{:.1f}", r.bytes / r.seconds / 1e9);
      share = fmt::format("{:.0f}%", 100 * r.bytes / r.seconds / ceiling);
    } else if (r.flops > 0) {
      rate = fmt::format("{:.2f} G/s", r.flops / r.seconds / 1e9);
    }
    fmt::print("{:<42} {:>8.3f}ms {:>10} {:>10}\n", r.name, r.seconds * 1e3, rate, share);
    rows_json.push_back(
        {{"op", r.name},
         {"seconds", r.seconds},
         {"bytes", r.bytes},
         {"flops", r.flops},
         {"gbps", r.bytes > 0 ? r.bytes / r.seconds / 1e9 : 0.0},
         {"fraction_of_ceiling", r.bytes > 0 ? r.bytes / r.seconds / ceiling : 0.0}});
  }
  if (!json_path.empty()) {
    nlohmann::json doc = {{"benchmark", "eager"},
                          {"threads", omp_get_max_threads()},
                          {"elements", n},
                          {"copy_ceiling_gbps", ceiling / 1e9},
                          {"rows", rows_json}};
    std::ofstream(json_path) << doc.dump(2) << "\n";
    fmt::print("\nwrote {}\n", json_path);
  }
  return 0;
}
