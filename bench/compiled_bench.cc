// kiln compiled (InProcess, native CPU kernels) vs eager vs this machine's memory-copy
// ceiling, on the anchor workloads scaled to this machine, plus cold compile time per tier
// and the host overhead of a compiled call. Prints a table; writes JSON with --json PATH.
#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "driver/graph_compiler.h"
#include "driver/object_store.h"
#include "driver/pipeline.h"
#include "kiln/kiln.h"
#include "trace/tracer.h"

using namespace kiln;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Best of `reps` runs after one warm-up: this VM's noise only ever adds time.
double best_seconds(const std::function<void()>& run, int reps) {
  run();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t = Clock::now();
    run();
    best = std::min(best, seconds_since(t));
  }
  return best;
}

std::string fmt_time(double s) {
  return s < 1e-3 ? fmt::format("{:.1f}us", s * 1e6) : fmt::format("{:.2f}ms", s * 1e3);
}

double copy_ceiling(size_t bytes) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  double s = best_seconds(
      [&] {
#pragma omp parallel
        {
          size_t threads = static_cast<size_t>(omp_get_num_threads());
          size_t chunk = (bytes + threads - 1) / threads;
          size_t begin = std::min(bytes, chunk * static_cast<size_t>(omp_get_thread_num()));
          std::memcpy(dst.data() + begin, src.data() + begin, std::min(chunk, bytes - begin));
        }
      },
      15);
  return 2.0 * static_cast<double>(bytes) / s;
}

struct Workload {
  std::string name;
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> fn;
  std::vector<Tensor> inputs;
  double bytes;  // moved by an ideal kernel (0: not memory-bound)
};

// The workload's graph, its captured weights folded as constants: the executable runs on
// the workload's inputs alone.
Graph trace(const Workload& w) {
  Tracer tracer(w.name, /*freeze_captured=*/true);
  auto in = tracer.add_inputs(w.inputs);
  std::vector<Tensor> out;
  {
    RecorderScope scope(&tracer);
    out = w.fn(in);
  }
  return tracer.finish(out).graph;
}

Tensor mlp_layer(const Tensor& x, const Tensor& w, const Tensor& b, bool relu_after) {
  Tensor y = linear(x, w, b);
  return relu_after ? relu(y) : y;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--json" && i + 1 < argc) json_path = argv[++i];
  // Every compile here is a real one; the warm-start row turns a cache on for itself.
  setenv("KILN_FORCE_DISABLE_CACHES", "1", 1);
  manual_seed(3);
  const int64_t n = int64_t{1} << 24;
  const double ceiling = copy_ceiling(static_cast<size_t>(4 * n));
  const double fb = 4.0 * static_cast<double>(n);

  // MLP 784-1024-1024-10, batch 256, and a transformer encoder layer d512 h8 at 8 x 256.
  Tensor w1 = randn({1024, 784}) * 0.03, b1 = randn({1024}) * 0.1, w2 = randn({1024, 1024}) * 0.03,
         b2 = randn({1024}) * 0.1, w3 = randn({10, 1024}) * 0.03, b3 = randn({10}) * 0.1;
  const int64_t d = 512, heads = 8, ff = 2048;
  Tensor in_w = randn({3 * d, d}) * 0.04, in_b = zeros({3 * d}), out_w = randn({d, d}) * 0.04,
         out_b = zeros({d}), l1 = randn({ff, d}) * 0.04, lb1 = zeros({ff}),
         l2 = randn({d, ff}) * 0.02, lb2 = zeros({d}), n1w = ones({d}), n1b = zeros({d}),
         n2w = ones({d}), n2b = zeros({d});
  auto transformer = [&](const Tensor& x) {
    const int64_t b = x.size(0), t = x.size(1), dh = d / heads;
    Tensor qkv = linear(x, in_w, in_b);
    auto head = [&](int64_t i) {
      return qkv.narrow(-1, i * d, d).reshape({b, t, heads, dh}).transpose(1, 2);
    };
    Tensor att = matmul(
        softmax(matmul(head(0), head(1).transpose(-2, -1)) / std::sqrt(double(dh)), -1), head(2));
    Tensor h = layer_norm(x + linear(att.transpose(1, 2).reshape({b, t, d}), out_w, out_b), {d},
                          n1w, n1b, 1e-5);
    return layer_norm(h + linear(relu(linear(h, l1, lb1)), l2, lb2), {d}, n2w, n2b, 1e-5);
  };

  std::vector<Workload> workloads = {
      {"(x+y).sin().cos(), 2^24 f32",
       [](const std::vector<Tensor>& in) { return std::vector<Tensor>{cos(sin(in[0] + in[1]))}; },
       {randn({n}), randn({n})},
       3 * fb},
      {"(x+y).sin().cos(), 2^14 f32",
       [](const std::vector<Tensor>& in) { return std::vector<Tensor>{cos(sin(in[0] + in[1]))}; },
       {randn({n >> 10}), randn({n >> 10})},
       3 * fb / 1024},
      {"x * 0.5 + y (memory-bound), 2^24 f32",
       [](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] * 0.5f + in[1]}; },
       {randn({n}), randn({n})},
       3 * fb},
      {"softmax rows, 4096 x 4096 f32",
       [](const std::vector<Tensor>& in) { return std::vector<Tensor>{softmax(in[0], -1)}; },
       {randn({4096, 4096})},
       2 * fb},
      {"layer_norm, 4096 x 4096 f32",
       [](const std::vector<Tensor>& in) {
         return std::vector<Tensor>{layer_norm(in[0], {4096}, in[1], in[2])};
       },
       {randn({4096, 4096}), randn({4096}), randn({4096})},
       2 * fb},
      {"gelu (erf), 2^24 f32",
       [](const std::vector<Tensor>& in) { return std::vector<Tensor>{gelu(in[0])}; },
       {randn({n})},
       2 * fb},
      {"gelu (tanh), 2^24 f32",
       [](const std::vector<Tensor>& in) { return std::vector<Tensor>{gelu(in[0], "tanh")}; },
       {randn({n})},
       2 * fb},
      {"500 chained adds, 100x100",
       [](const std::vector<Tensor>& in) {
         Tensor t = in[0];
         for (int i = 0; i < 500; ++i) t = t + in[1];
         return std::vector<Tensor>{t};
       },
       {randn({100, 100}), randn({100, 100})},
       0},
      {"(x@y).relu(), f32 1024^3",
       [](const std::vector<Tensor>& in) {
         return std::vector<Tensor>{relu(matmul(in[0], in[1]))};
       },
       {randn({1024, 1024}), randn({1024, 1024})},
       0},
      {"MLP 784-1024-1024-10, batch 256",
       [&](const std::vector<Tensor>& in) {
         return std::vector<Tensor>{
             mlp_layer(mlp_layer(mlp_layer(in[0], w1, b1, true), w2, b2, true), w3, b3, false)};
       },
       {randn({256, 784})},
       0},
      {"TransformerEncoderLayer d512 h8, 8x256",
       [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{transformer(in[0])}; },
       {randn({8, 256, 512})},
       0},
      {"x + 1, 4 elements (host overhead)",
       [](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] + 1.0f}; },
       {randn({4})},
       0},
  };

  CompileOptions inprocess;
  inprocess.mode = CompileMode::InProcess;
  ResolvedOptions options = resolve_options(inprocess);
  fmt::print("kiln compiled vs eager, {} threads; memory-copy ceiling {:.1f} GB/s\n\n",
             omp_get_max_threads(), ceiling / 1e9);
  fmt::print("{:<40} {:>11} {:>11} {:>8} {:>10} {:>10}\n", "workload", "eager", "compiled",
             "speedup", "GB/s", "ceiling");
  nlohmann::json rows = nlohmann::json::array();
  for (const Workload& w : workloads) {
    auto start = Clock::now();
    auto exe = compile_graph(trace(w), options);
    double compile_s = seconds_since(start);
    int reps = w.bytes > 0 ? 10 : 30;
    double eager = best_seconds([&] { w.fn(w.inputs); }, reps);
    double compiled = best_seconds([&] { exe->run(w.inputs); }, reps);
    std::string rate, share;
    if (w.bytes > 0) {
      rate = fmt::format("{:.1f}", w.bytes / compiled / 1e9);
      share = fmt::format("{:.0f}%", 100 * w.bytes / compiled / ceiling);
    }
    fmt::print("{:<40} {:>11} {:>11} {:>7.2f}x {:>10} {:>10}\n", w.name, fmt_time(eager),
               fmt_time(compiled), eager / compiled, rate, share);
    rows.push_back({{"workload", w.name},
                    {"eager_s", eager},
                    {"compiled_s", compiled},
                    {"speedup", eager / compiled},
                    {"gbps", w.bytes > 0 ? w.bytes / compiled / 1e9 : 0.0},
                    {"fraction_of_ceiling", w.bytes > 0 ? w.bytes / compiled / ceiling : 0.0},
                    {"first_compile_s", compile_s},
                    {"kernels", exe->kernel_names()}});
  }

  // What observing launches costs a call: the host-overhead workload with no hooks (the
  // one-load check), with no-op launch hooks, and under a recording profiler.
  nlohmann::json observe = nlohmann::json::object();
  {
    const Workload& tiny = workloads.back();
    auto exe = compile_graph(trace(tiny), options);
    auto per_call = [&] {
      return best_seconds(
                 [&] {
                   for (int i = 0; i < 1000; ++i) exe->run(tiny.inputs);
                 },
                 20) /
             1000;
    };
    double plain = per_call();
    set_launch_hooks([](const LaunchInfo&) {}, [](const LaunchInfo&) {});
    double hooked = per_call();
    set_launch_hooks(nullptr, nullptr);
    Profiler profiler;
    profiler.start();
    double profiled = per_call();
    profiler.stop();
    double unset_again = per_call();
    fmt::print(
        "\nlaunch observation, x + 1 on 4 elements per call: no hooks {:.2f}us (again {:.2f}us), "
        "no-op hooks "
        "{:.2f}us, profiler recording {:.2f}us\n",
        plain * 1e6, unset_again * 1e6, hooked * 1e6, profiled * 1e6);
    observe = {{"no_hooks_s", plain},
               {"no_hooks_again_s", unset_again},
               {"noop_hooks_s", hooked},
               {"profiler_s", profiled}};
  }

  // compile()'s own per-call cost on a tiny function with four captured parameters: bound
  // by reference (the default: guards, captured tensors locked, no write-back), frozen as
  // constants (the behaviour before captured tensors were inputs: guards plus a version
  // check each), and the executable alone (no guards), all in this one run.
  nlohmann::json call_overhead = nlohmann::json::object();
  {
    Tensor w1 = randn({4}), b1 = randn({4}), w2 = randn({4}), b2 = randn({4});
    auto fn = [&](const Tensor& x) { return (x * w1 + b1) * w2 + b2; };
    auto by_reference = compile(fn, inprocess);
    CompileOptions frozen_options = inprocess;
    frozen_options.freeze_captured = true;
    auto frozen = compile(fn, frozen_options);
    Tensor x = randn({4});
    Tensor m = zeros({4});
    auto sgd = compile([&](const Tensor& g) { return m.mul_(0.9).add_(g).sum(); }, inprocess);
    Tensor g = randn({4});
    auto sgd_fn = [&] { sgd(g); };
    // The same update with a learning rate that changes every call: a SymFloat parameter,
    // a graph scalar after its first change (bound as a fresh 0-d tensor per call).
    Tensor p = randn({4});
    auto sgd_lr = compile(
        [&](const Tensor& grad, SymFloat lr) { return p.sub_(m.mul_(0.9).add_(grad), lr).sum(); },
        inprocess);
    double lr = 1e-3;
    auto sgd_lr_fn = [&] {
      lr *= 0.999;
      sgd_lr(g, lr);
    };
    auto per_call = [&](const std::function<void()>& call) {
      return best_seconds(
                 [&] {
                   for (int i = 0; i < 1000; ++i) call();
                 },
                 20) /
             1000;
    };
    Workload tiny_params{
        "captured_params",
        [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{fn(in[0])}; },
        {x},
        0};
    auto exe = compile_graph(trace(tiny_params), options);
    std::vector<Tensor> exe_inputs{x};
    double ref_s = per_call([&] { by_reference(x); });
    double frozen_s = per_call([&] { frozen(x); });
    double exe_s = per_call([&] { exe->run(exe_inputs); });
    double sgd_s = per_call(sgd_fn);
    double sgd_lr_s = per_call(sgd_lr_fn);
    fmt::print(
        "\ncompile() per call, (x*w1+b1)*w2+b2 on 4 elements, 4 captured parameters: by reference "
        "{:.2f}us, frozen {:.2f}us, executable alone {:.2f}us (guards and binding: {:.2f}us); "
        "in-place momentum update with write-back {:.2f}us; with a new SymFloat learning rate "
        "each call (graph scalar, {} graphs) {:.2f}us\n",
        ref_s * 1e6, frozen_s * 1e6, exe_s * 1e6, (ref_s - exe_s) * 1e6, sgd_s * 1e6,
        sgd_lr.graphs().size(), sgd_lr_s * 1e6);
    call_overhead = {{"by_reference_s", ref_s},
                     {"frozen_s", frozen_s},
                     {"executable_s", exe_s},
                     {"guards_and_binding_s", ref_s - exe_s},
                     {"inplace_write_back_s", sgd_s},
                     {"graph_scalar_lr_s", sgd_lr_s},
                     {"graph_scalar_lr_graphs", sgd_lr.graphs().size()}};
  }

  // Random numbers generated inside the fused kernels (support/philox.inc): dropout and
  // noise injection compiled through compile() (the generator state is the graph's input)
  // against eager, which materializes the draw, and a compiled variant that must keep the
  // draw (it returns it: the cost of a materialized mask).
  nlohmann::json random_rows = nlohmann::json::array();
  {
    fmt::print("\nrandom numbers in fused kernels, 2^24 f32:\n");
    fmt::print("{:<44} {:>11} {:>11} {:>8} {:>10} {:>10}\n", "workload", "eager", "compiled",
               "speedup", "GB/s", "ceiling");
    Tensor x = randn({n});
    struct RandomRow {
      const char* name;
      std::function<std::vector<Tensor>(const Tensor&)> fn;
      double bytes;
    };
    const std::vector<RandomRow> random_workloads = {
        {"dropout(x, 0.1)", [](const Tensor& in) { return std::vector<Tensor>{dropout(in, 0.1)}; },
         2 * fb},
        {"x + 0.1 * randn_like(x)",
         [](const Tensor& in) { return std::vector<Tensor>{in + randn_like(in) * 0.1}; }, 2 * fb},
        {"rand(n) alone", [](const Tensor&) { return std::vector<Tensor>{rand({n})}; }, fb},
        {"dropout keeping its draw (returned)",
         [](const Tensor& in) {
           Tensor u = rand_like(in);
           return std::vector<Tensor>{u, in * (u >= 0.1) * (1 / 0.9)};
         },
         3 * fb},
    };
    for (const RandomRow& r : random_workloads) {
      auto f = compile(r.fn, inprocess);
      f(x);  // traced and compiled
      double eager = best_seconds([&] { r.fn(x); }, 10);
      double compiled = best_seconds([&] { f(x); }, 10);
      fmt::print("{:<44} {:>11} {:>11} {:>7.2f}x {:>10.1f} {:>9.0f}%\n", r.name, fmt_time(eager),
                 fmt_time(compiled), eager / compiled, r.bytes / compiled / 1e9,
                 100 * r.bytes / compiled / ceiling);
      random_rows.push_back({{"workload", r.name},
                             {"eager_s", eager},
                             {"compiled_s", compiled},
                             {"speedup", eager / compiled},
                             {"gbps", r.bytes / compiled / 1e9},
                             {"fraction_of_ceiling", r.bytes / compiled / ceiling}});
    }
  }

  // Autotuning's gain: each workload built untuned and tuned (max_autotune: GEMM templates
  // compete with the BLAS call), timed side by side; what tuning cost and what it chose.
  fmt::print("\nautotune (max_autotune, coordinate descent) vs the untuned optimized build:\n");
  fmt::print("{:<40} {:>11} {:>11} {:>8} {:>9}  {}\n", "workload", "untuned", "tuned", "gain",
             "tuning", "chosen configs");
  nlohmann::json tuned_rows = nlohmann::json::array();
  CompileOptions tuned_options = inprocess;
  tuned_options.autotune = true;
  tuned_options.max_autotune = true;
  for (const Workload& w : workloads) {
    if (w.name.rfind("x + 1", 0) == 0) continue;
    Workload renamed = w;
    renamed.name = "tuned_" + w.name;
    auto untuned_exe = compile_graph(trace(w), options);
    auto start = Clock::now();
    auto tuned_exe = compile_graph(trace(renamed), resolve_options(tuned_options));
    double tuning_s = seconds_since(start);
    int reps = w.bytes > 0 ? 10 : 30;
    double untuned = best_seconds([&] { untuned_exe->run(w.inputs); }, reps);
    double tuned = best_seconds([&] { tuned_exe->run(w.inputs); }, reps);
    std::string chosen;
    for (const KernelInfo& k : tuned_exe->kernels())
      if (k.tuning != "default")
        chosen += fmt::format("{}{}: {}", chosen.empty() ? "" : "; ", k.name, k.config);
    fmt::print("{:<40} {:>11} {:>11} {:>7.0f}% {:>8.2f}s  {}\n", w.name, fmt_time(untuned),
               fmt_time(tuned), 100 * (untuned / tuned - 1), tuning_s, chosen);
    tuned_rows.push_back({{"workload", w.name},
                          {"untuned_s", untuned},
                          {"tuned_s", tuned},
                          {"gain", untuned / tuned - 1},
                          {"tuning_s", tuning_s},
                          {"chosen", chosen}});
  }

  // Cold compile per tier: the pointwise graph through passes, lowering, codegen and the
  // toolchain, in a fresh process's first compile of that source (each tier's first use),
  // here and in a compile worker (started beforehand); then a warm start from a populated
  // cache (the compiled graph and its object loaded, nothing compiled).
  fmt::print("\ncold compile of the pointwise graph (passes + lowering + codegen + toolchain):\n");
  nlohmann::json tiers = nlohmann::json::object();
  CompileOptions worker_options;
  worker_options.compile_threads = 1;
  wait_pool_ready(60, worker_options);
  struct Cold {
    const char* label;
    NativeCompile how;
    bool cached;
  };
  NativeCompile fast, optimized, in_worker;
  fast.tier = Tier::fast;  // gcc -O1 vectorized (this graph is too large for the light tier)
  in_worker.in_workers = true;
  const std::string cache_dir = fmt::format("/tmp/kiln-bench-cache-{}", getpid());
  for (const Cold& c : {Cold{"fast (gcc -O1, vectorized)", fast, false},
                        Cold{"optimized (gcc -O3 -march=native)", optimized, false},
                        Cold{"optimized, in a compile worker", in_worker, false},
                        Cold{"warm start: graph + object from the cache", optimized, true}}) {
    Workload cold = workloads[0];
    cold.name = fmt::format("cold_{}", tiers.size());  // a source no cache holds
    if (c.cached) {
      setenv("KILN_CACHE_DIR", cache_dir.c_str(), 1);
      unsetenv("KILN_FORCE_DISABLE_CACHES");
      compile_native(trace(cold), c.how);  // populates the cache
      forget_loaded_objects();
    }
    auto start = Clock::now();
    auto exe = compile_native(trace(cold), c.how);
    double s = seconds_since(start);
    setenv("KILN_FORCE_DISABLE_CACHES", "1", 1);
    double run = best_seconds([&] { exe->run(workloads[0].inputs); }, 10);
    fmt::print("  {:<44} {:>8.1f} ms   kernel run {:.2f} ms ({:.0f}% of ceiling)\n", c.label,
               s * 1e3, run * 1e3, 100 * workloads[0].bytes / run / ceiling);
    tiers[c.label] = {{"compile_s", s}, {"run_s", run}};
  }
  std::filesystem::remove_all(cache_dir);

  // Parallel compile: a graph of 32 row kernels (4 translation units) compiled in workers,
  // by one worker and by two (both pools started beforehand).
  fmt::print("\nparallel compile of a 32-kernel graph in compile workers:\n");
  Workload many{"many_kernels",
                [](const std::vector<Tensor>& in) {
                  Tensor t = in[0];
                  for (int i = 0; i < 32; ++i) t = softmax(t * static_cast<float>(i + 1), -1);
                  return std::vector<Tensor>{t};
                },
                {randn({64, 64})},
                0};
  nlohmann::json parallel = nlohmann::json::object();
  double one_worker = 0;
  for (auto [start, threads] :
       {std::pair{WorkerStart::Fork, 1}, std::pair{WorkerStart::Spawn, 2}}) {
    CompileOptions o;
    o.worker_start = start;
    o.compile_threads = threads;
    wait_pool_ready(60, o);
    NativeCompile how;
    how.in_workers = true;
    how.start = start;
    how.threads = threads;
    many.name = fmt::format("many_kernels_{}", threads);  // new source: nothing cached
    auto start_time = Clock::now();
    auto exe = compile_native(trace(many), how);
    double s = seconds_since(start_time);
    if (threads == 1) one_worker = s;
    fmt::print("  {} worker{}: {:>8.1f} ms{}\n", threads, threads > 1 ? "s" : " ", s * 1e3,
               threads > 1 ? fmt::format("   speed-up {:.2f}x", one_worker / s) : std::string());
    parallel[fmt::format("workers_{}", threads)] = {
        {"compile_s", s}, {"units", 4}, {"kernels", exe->kernel_names().size()}};
  }
  shutdown_compile_workers();
  if (!json_path.empty()) {
    nlohmann::json doc = {{"benchmark", "compiled"},
                          {"threads", omp_get_max_threads()},
                          {"copy_ceiling_gbps", ceiling / 1e9},
                          {"rows", rows},
                          {"launch_observation", observe},
                          {"compile_call_overhead", call_overhead},
                          {"random", random_rows},
                          {"autotune", tuned_rows},
                          {"cold_compile", tiers},
                          {"parallel_compile", parallel}};
    std::ofstream(json_path) << doc.dump(2) << "\n";
    fmt::print("\nwrote {}\n", json_path);
  }
  return 0;
}
