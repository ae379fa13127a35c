// kiln on the GPU, on the anchor workloads (../shared/anchors): steady-state time per call of
// the compiled function and of kiln's eager interpreter, cold compile (empty cache) and warm
// start (filled cache, nothing loaded in the process), the async first result, and the
// device-to-device copy ceiling, all in one process. Prints a table; writes JSON rows (the
// format bench/compare_inductor.py merges with PyTorch's) with --json PATH. Times a call as
// triton's do_bench does: CUDA events around one call, after flushing the L2 cache, median.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <tuple>

#include "cuda/device_memory.h"
#include "cuda/driver.h"
#include "driver/object_store.h"
#include "kiln/kiln.h"
#include "kiln/profiler.h"
#include "tensor/tensor_impl.h"

using namespace kiln;

namespace {

using Clock = std::chrono::steady_clock;
using Fn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Median device time of `run` (CUDA events around each call), each call after a 256 MiB
// L2 flush, for about `budget` seconds after a warm-up.
double gpu_seconds(const std::function<void()>& run, double budget = 0.3) {
  const cuda::Driver& d = cuda::driver();
  static void* flush = [] {
    int64_t capacity = 0;
    return cuda::allocate(int64_t{256} << 20, &capacity);
  }();
  cuda::CUevent start = nullptr, end = nullptr;
  cuda::check(d.cuEventCreate(&start, 0), "cuEventCreate");
  cuda::check(d.cuEventCreate(&end, 0), "cuEventCreate");
  for (int i = 0; i < 5; ++i) run();
  cuda::synchronize("warm-up");
  std::vector<double> times;
  const auto deadline = Clock::now() + std::chrono::duration<double>(budget);
  while (Clock::now() < deadline || times.size() < 10) {
    d.cuMemsetD8Async(reinterpret_cast<cuda::CUdeviceptr>(flush), 0, size_t{256} << 20,
                      cuda::stream());
    d.cuEventRecord(start, cuda::stream());
    run();
    d.cuEventRecord(end, cuda::stream());
    d.cuEventSynchronize(end);
    float ms = 0;
    d.cuEventElapsedTime(&ms, start, end);
    times.push_back(ms * 1e-3);
    if (times.size() > 2000) break;
  }
  d.cuEventDestroy(start);
  d.cuEventDestroy(end);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

double copy_ceiling_gbps() {
  const int64_t bytes = int64_t{1} << 30;
  Tensor a = empty({bytes / 4}).cuda(), b = empty({bytes / 4}).cuda();
  double s =
      gpu_seconds([&] { cuda::copy_on_device(b.impl()->data_ptr(), a.impl()->data_ptr(), bytes); });
  return 2.0 * static_cast<double>(bytes) / s / 1e9;
}

struct Workload {
  std::string name;
  Fn fn;
  std::vector<Tensor> inputs;  // on the GPU
  double bytes = 0;            // an ideal kernel's traffic (0: not memory-bound)
  double flops = 0;
};

Tensor gpu_randn(const Shape& shape, DType dtype = DType::f32) {
  return randn(shape).to(dtype).cuda();
}

// nn.Linear's default init scale, so activations stay O(1) through the layers.
Tensor weight(int64_t out, int64_t in) {
  return (rand({out, in}) * 2.0 - 1.0) * (1.0 / std::sqrt(double(in)));
}

std::vector<Workload> workloads() {
  std::vector<Workload> out;
  const int64_t n = int64_t{1} << 26;
  out.push_back({"pointwise",
                 [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{(in[0] + in[1]).sin().cos()};
                 },
                 {gpu_randn({n}), gpu_randn({n})},
                 3.0 * 4 * n});
  // Training's dropout: the mask drawn inside the kernel (support/philox.inc), fresh every
  // call; an ideal kernel reads x and writes the result.
  out.push_back(
      {"dropout",
       [](const std::vector<Tensor>& in) { return std::vector<Tensor>{dropout(in[0], 0.1)}; },
       {gpu_randn({n})},
       2.0 * 4 * n});
  out.push_back({"addchain500",
                 [](const std::vector<Tensor>& in) {
                   Tensor x = in[0];
                   for (int i = 0; i < 500; ++i) x = x + in[1];
                   return std::vector<Tensor>{x};
                 },
                 {gpu_randn({100, 100}), gpu_randn({100, 100})},
                 3.0 * 4 * 100 * 100});
  out.push_back({"mm_relu",
                 [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{matmul(in[0], in[1]).relu()};
                 },
                 {gpu_randn({1152, 1024}, DType::bf16), gpu_randn({1024, 1024}, DType::bf16)},
                 0,
                 2.0 * 1152 * 1024 * 1024});
  {
    auto w = std::make_shared<std::vector<Tensor>>(std::vector<Tensor>{
        weight(1024, 784).cuda(), (randn({1024}) * 0.01).cuda(), weight(1024, 1024).cuda(),
        (randn({1024}) * 0.01).cuda(), weight(10, 1024).cuda(), (randn({10}) * 0.01).cuda()});
    out.push_back({"mlp",
                   [w](const std::vector<Tensor>& in) {
                     const std::vector<Tensor>& p = *w;
                     Tensor h = linear(in[0], p[0], p[1]).relu();
                     h = linear(h, p[2], p[3]).relu();
                     return std::vector<Tensor>{linear(h, p[4], p[5])};
                   },
                   {gpu_randn({256, 784})},
                   0,
                   2.0 * 256 * (784 * 1024 + 1024 * 1024 + 1024 * 10)});
  }
  out.push_back(
      {"softmax",
       [](const std::vector<Tensor>& in) { return std::vector<Tensor>{softmax(in[0], -1)}; },
       {gpu_randn({8192, 8192})},
       2.0 * 4 * 8192 * 8192});
  {
    auto wb = std::make_shared<std::vector<Tensor>>(
        std::vector<Tensor>{gpu_randn({8192}), gpu_randn({8192})});
    out.push_back({"layernorm",
                   [wb](const std::vector<Tensor>& in) {
                     return std::vector<Tensor>{
                         layer_norm(in[0], {8192}, (*wb)[0], (*wb)[1], 1e-5)};
                   },
                   {gpu_randn({8192, 8192})},
                   2.0 * 4 * 8192 * 8192});
  }
  {
    // nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True), post-norm, relu, eval.
    const int64_t d = 512, ff = 2048;
    auto p = std::make_shared<std::vector<Tensor>>(std::vector<Tensor>{
        weight(3 * d, d).cuda(), (randn({3 * d}) * 0.01).cuda(), weight(d, d).cuda(),
        (randn({d}) * 0.01).cuda(), weight(ff, d).cuda(), (randn({ff}) * 0.01).cuda(),
        weight(d, ff).cuda(), (randn({d}) * 0.01).cuda(), ones({d}).cuda(), zeros({d}).cuda(),
        ones({d}).cuda(), zeros({d}).cuda()});
    out.push_back(
        {"transformer",
         [p](const std::vector<Tensor>& in) {
           const std::vector<Tensor>& w = *p;
           const Tensor& x = in[0];
           const int64_t heads = 8, d = x.size(-1), dh = d / heads, b = x.size(0), t = x.size(1);
           Tensor qkv = linear(x, w[0], w[1]);
           auto head = [&](int64_t i) {
             return qkv.narrow(-1, i * d, d).reshape({b, t, heads, dh}).transpose(1, 2);
           };
           Tensor scores = matmul(head(0), head(1).transpose(-2, -1)) / std::sqrt(double(dh));
           Tensor attn = matmul(softmax(scores, -1), head(2)).transpose(1, 2).reshape({b, t, d});
           Tensor h = layer_norm(x + linear(attn, w[2], w[3]), {d}, w[8], w[9], 1e-5);
           Tensor f = linear(linear(h, w[4], w[5]).relu(), w[6], w[7]);
           return std::vector<Tensor>{layer_norm(h + f, {d}, w[10], w[11], 1e-5)};
         },
         {gpu_randn({8, 256, 512})}});
  }
  // A BERT-base encoder layer (d768, 12 heads, ff 3072, erf GELU, post-norm, batch 16 x 256
  // tokens, eval), as PyTorch's nn.TransformerEncoderLayer with the same arguments: f32 and
  // bf16 (the module cast with to(DType), as torch's .to(dtype)).
  for (DType dtype : {DType::f32, DType::bf16}) {
    auto layer = std::make_shared<nn::TransformerEncoderLayer>(768, 12, 3072, 0.0, "gelu", 1e-5,
                                                               /*batch_first=*/true);
    layer->eval();
    for (Tensor& p : layer->parameters()) p.requires_grad_(false);
    layer->to(Device::cuda);
    layer->to(dtype);
    out.push_back({dtype == DType::bf16 ? "bert_layer_bf16" : "bert_layer",
                   [layer](const std::vector<Tensor>& in) {
                     return std::vector<Tensor>{layer->forward(in[0])};
                   },
                   {gpu_randn({16, 256, 768}, dtype)}});
  }
  // Attention as PyTorch's scaled_dot_product_attention computes it, in bf16 (kiln: one
  // fused step on the half-precision tensor cores): BERT-base heads (16 x 12 heads, 256
  // tokens) and GPT-2-length sequences (8 x 12 heads, 1024 tokens), head dim 64.
  for (auto [name, b, t] :
       {std::tuple{"attention_bf16", 16, 256}, std::tuple{"attention_t1024_bf16", 8, 1024}}) {
    const int64_t h = 12, d = 64;
    out.push_back({name,
                   [](const std::vector<Tensor>& in) {
                     return std::vector<Tensor>{scaled_dot_product_attention(in[0], in[1], in[2])};
                   },
                   {gpu_randn({b, h, t, d}, DType::bf16), gpu_randn({b, h, t, d}, DType::bf16),
                    gpu_randn({b, h, t, d}, DType::bf16)},
                   0,
                   4.0 * double(b) * h * t * t * d});
  }
  return out;
}

std::string fmt_time(double s) {
  return s < 1e-3 ? fmt::format("{:.1f}us", s * 1e6)
         : s < 1  ? fmt::format("{:.2f}ms", s * 1e3)
                  : fmt::format("{:.2f}s", s);
}

// The first call of a fresh compiled function, synchronized: the compile's wall time.
double first_call_seconds(const Workload& w, const CompileOptions& options) {
  auto f = compile([fn = w.fn](std::vector<Tensor> in) { return fn(in); }, options);
  auto t = Clock::now();
  f(w.inputs);
  cuda::synchronize("first call");
  return seconds_since(t);
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  std::string only;
  bool profile = false;
  bool max_autotune = false;  // cuBLASLt's top candidates timed (CompileOptions::max_autotune)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc)
      json_path = argv[++i];
    else if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    else if (a == "--profile")
      profile = true;
    else if (a == "--max-autotune")
      max_autotune = true;
  }
  if (!cuda::available()) {
    fmt::print("no usable GPU: {}\n", cuda::unavailable_reason());
    return 2;
  }
  const cuda::DeviceInfo& info = cuda::device_info();
  // A fresh directory of its own: a pid repeats across runs in a container, and background
  // stages may still write into a removed cache after the run, so a pid-named cache could
  // be warm at a later run's "cold" compile.
  char cache_template[] = "/tmp/kiln-cuda-bench-XXXXXX";
  if (!mkdtemp(cache_template)) {
    fmt::print("cannot create a cache directory under /tmp\n");
    return 1;
  }
  const std::string cache_root = cache_template;
  const double ceiling = copy_ceiling_gbps();
  fmt::print("{} ({}), {} SMs; device-to-device copy ceiling {:.0f} GB/s\n", info.name, info.arch,
             info.multiprocessors, ceiling);
  fmt::print("{:<12} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10} {:>12} {:>12}\n", "workload",
             "compiled", "+graphs", "eager", "GB/s", "cold", "warm", "async 1st", "async swap");
  nlohmann::json rows = nlohmann::json::array();
  for (const Workload& w : workloads()) {
    // --only a,b,c: those names exactly (bert_layer is not bert_layer_bf16).
    if (!only.empty() && ("," + only + ",").find("," + w.name + ",") == std::string::npos) continue;
    const std::string cache = fmt::format("{}/{}", cache_root, w.name);
    setenv("KILN_CACHE_DIR", cache.c_str(), 1);
    CompileOptions options;
    options.name = w.name;
    options.mode = CompileMode::InProcess;
    options.max_autotune = max_autotune;
    forget_loaded_objects();
    std::unique_ptr<Profiler> cold_profile;
    if (profile) {
      cold_profile = std::make_unique<Profiler>();
      cold_profile->start();
    }
    const double cold = first_call_seconds(w, options);
    if (cold_profile) {
      cold_profile->stop();
      fmt::print("  {} cold compile ({:.2f} ms):", w.name, cold * 1e3);
      for (const ProfileEvent& e : cold_profile->events())
        if (e.category == "compile" || e.category == "autotune")
          fmt::print(" [{} {:.2f} ms]", e.name, e.duration_us * 1e-3);
      fmt::print("\n");
    }
    forget_loaded_objects();
    std::unique_ptr<Profiler> warm_profile;
    if (profile) {
      warm_profile = std::make_unique<Profiler>();
      warm_profile->start();
    }
    const double warm = first_call_seconds(w, options);
    if (warm_profile) {
      warm_profile->stop();
      fmt::print("  {} warm start ({:.2f} ms):", w.name, warm * 1e3);
      for (const ProfileEvent& e : warm_profile->events())
        if (e.category == "compile") fmt::print(" [{} {:.2f} ms]", e.name, e.duration_us * 1e-3);
      fmt::print("\n");
    }
    auto f = compile([fn = w.fn](std::vector<Tensor> in) { return fn(in); }, options);
    const double compiled = gpu_seconds([&] { f(w.inputs); });
    CompileOptions graph_options = options;
    graph_options.cuda_graphs = true;
    auto fg = compile([fn = w.fn](std::vector<Tensor> in) { return fn(in); }, graph_options);
    const double graphed = gpu_seconds([&] { fg(w.inputs); });
    const double eager = gpu_seconds([&] { w.fn(w.inputs); });
    // Async, caches off: the first call answers from the eager interpreter while NVRTC
    // compiles in a worker; then calls until compiled code answers.
    setenv("KILN_FORCE_DISABLE_CACHES", "1", 1);
    CompileOptions async_options = options;
    async_options.mode = CompileMode::Async;
    auto a = compile([fn = w.fn](std::vector<Tensor> in) { return fn(in); }, async_options);
    std::unique_ptr<Profiler> first_profile;
    if (profile) {
      first_profile = std::make_unique<Profiler>();
      first_profile->start();
    }
    auto t0 = Clock::now();
    a(w.inputs);
    cuda::synchronize("async first call");
    const double first_result = seconds_since(t0);
    if (first_profile) {
      first_profile->stop();
      fmt::print("  {} async first result ({:.2f} ms), host spans over 0.1 ms:", w.name,
                 first_result * 1e3);
      for (const ProfileEvent& e : first_profile->events())
        if (e.category != "gpu_kernel" && e.duration_us > 100)
          fmt::print(" [{}: {} {:.2f} ms]", e.category, e.name, e.duration_us * 1e-3);
      fmt::print("\n");
    }
    // Until the compiled stage serves, or its trial refused it (it measured no faster than
    // eager: an attention graph whose compiled step is the eager kernel), or a minute.
    double swap = -1;
    std::string no_swap = "never";
    while (seconds_since(t0) < 60) {
      a(w.inputs);
      cuda::synchronize("async call");
      if (!a.stages().empty() && a.stages().at(0) != "eager") {
        swap = seconds_since(t0);
        break;
      }
      const std::vector<std::vector<StageDecision>> history = a.stage_history();
      const std::string outcome =
          history.empty() || history[0].empty() ? "" : history[0].back().outcome;
      if (outcome == "not_promoted" || outcome == "failed") {
        no_swap = outcome == "failed" ? "failed" : "refused";
        break;
      }
    }
    unsetenv("KILN_FORCE_DISABLE_CACHES");
    if (profile) {
      // One profiled call: every kernel and library step's device duration, largest first.
      Profiler p;
      p.start();
      f(w.inputs);
      p.stop();
      std::vector<ProfileEvent> gpu;
      for (const ProfileEvent& e : p.events())
        if (e.category == "gpu_kernel") gpu.push_back(e);
      std::sort(gpu.begin(), gpu.end(), [](const ProfileEvent& a, const ProfileEvent& b) {
        return a.duration_us > b.duration_us;
      });
      double total = 0;
      for (const ProfileEvent& e : gpu) total += e.duration_us;
      fmt::print("  {} on the GPU track: {} steps, {:.1f} us in all\n", w.name, gpu.size(), total);
      for (size_t i = 0; i < gpu.size() && i < 12; ++i)
        fmt::print("    {:>9.1f} us  {} (grid {}, block {}{})\n", gpu[i].duration_us, gpu[i].name,
                   gpu[i].args["grid"], gpu[i].args["block"],
                   gpu[i].args.count("kernel") ? ", kernel " + gpu[i].args["kernel"] : "");
    }
    const double gbps = w.bytes > 0 ? w.bytes / compiled / 1e9 : 0;
    fmt::print("{:<12} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10} {:>12} {:>12}\n", w.name,
               fmt_time(compiled), fmt_time(graphed), fmt_time(eager),
               gbps > 0 ? fmt::format("{:.0f}", gbps) : "-", fmt_time(cold), fmt_time(warm),
               fmt_time(first_result), swap < 0 ? no_swap : fmt_time(swap));
    std::fflush(stdout);
    nlohmann::json row = {{"workload", w.name},
                          {"system", "kiln"},
                          {"run_s", compiled},
                          {"cold_compile_s", cold},
                          {"warm_start_s", warm},
                          {"copy_ceiling_gbps", ceiling},
                          {"async_first_result_s", first_result},
                          {"async_compiled_after_s", swap},
                          {"async_stage", swap < 0 ? no_swap : "promoted"},
                          {"kernels", f.kernels().size()}};
    if (w.bytes > 0) row["gbps"] = gbps;
    if (w.flops > 0) row["tflops"] = w.flops / compiled / 1e12;
    rows.push_back(row);
    nlohmann::json graph_row = {{"workload", w.name},
                                {"system", "kiln_cuda_graphs"},
                                {"run_s", graphed},
                                {"copy_ceiling_gbps", ceiling}};
    if (w.bytes > 0) graph_row["gbps"] = w.bytes / graphed / 1e9;
    rows.push_back(graph_row);
    nlohmann::json eager_row = {{"workload", w.name},
                                {"system", "kiln_eager"},
                                {"run_s", eager},
                                {"copy_ceiling_gbps", ceiling}};
    if (w.bytes > 0) eager_row["gbps"] = w.bytes / eager / 1e9;
    rows.push_back(eager_row);
  }
  std::filesystem::remove_all(cache_root);
  if (!json_path.empty()) {
    std::ofstream(json_path) << rows.dump(1) << "\n";
    fmt::print("wrote {}\n", json_path);
  }
  return 0;
}
