// A training step (forward, backward, AdamW) of an MLP and of a transformer encoder layer:
// kiln eager (eager autograd, eager optimizer) against kiln compiled (the loss compiled with
// its backward graph, the fused AdamW step), on the CPU or the GPU, with the first compiled
// step's time (trace, partition, both compiles) and the peak memory of a step (memory.h:
// parameters, gradients and optimizer state included). Prints a table; --json PATH writes it;
// bench/train_compare.py runs PyTorch eager and torch.compile on the same steps beside it.
// --first-step prints the first compiled step's compile work by stage (run it with an empty
// KILN_CACHE_DIR for the cold compile); --workload NAME keeps the workloads whose name
// contains NAME. --profile prints, per workload, where one compiled step's
// device time goes (the profiler's kernel slices; on the GPU its CUPTI device durations, library
// kernels under their own names), most first.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "cuda/driver.h"
#include "kiln/kiln.h"

using namespace kiln;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Workload {
  std::string name;
  std::shared_ptr<nn::Module> model;
  std::function<Tensor(const Tensor&, const Tensor&)> loss;
  Tensor x, target;
};

Workload mlp(Device device) {
  auto net = std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{
      std::make_shared<nn::Linear>(784, 1024), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(1024, 1024), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(1024, 10)});
  net->to(device);
  Tensor labels = randint(10, {256}).to(device);
  return {"mlp 784-1024-1024-10, batch 256", net,
          [net](const Tensor& x, const Tensor& y) { return cross_entropy(net->forward(x), y); },
          randn({256, 784}).to(device), labels};
}

Workload transformer(Device device) {
  auto layer = std::make_shared<nn::TransformerEncoderLayer>(512, 8, 2048, 0.0, "relu", 1e-5, true);
  layer->to(device);
  return {"transformer layer d512 h8, 8x128", layer,
          [layer](const Tensor& x, const Tensor& y) { return mse_loss(layer->forward(x), y); },
          randn({8, 128, 512}).to(device), randn({8, 128, 512}).to(device)};
}

void sync(Device device) {
  if (device == Device::cuda) cuda::synchronize("train_bench");
}

struct StepTimes {
  double ms;        // median of the timed steps
  double first_ms;  // the first step (the compiles, when compiled)
  double peak_mib;  // the most memory live at once during the last step
};

// ms per step (median of `steps` after warm-up), the first step's ms, and the last step's
// peak memory.
StepTimes time_steps(const Workload& w, bool compiled, Device device, int steps) {
  optim::AdamW opt(w.model->parameters(), {.lr = 1e-4, .fused = compiled});
  auto compiled_loss = compile(w.loss);
  std::vector<double> times;
  double first = 0;
  double peak_mib = 0;
  for (int i = 0; i < steps + 3; ++i) {
    const bool last = i == steps + 2;
    if (last) reset_peak_memory_stats(device);
    auto t = Clock::now();
    opt.zero_grad();
    Tensor loss = compiled ? compiled_loss(w.x, w.target) : w.loss(w.x, w.target);
    loss.backward();
    opt.step();
    sync(device);
    double ms = ms_since(t);
    if (last) peak_mib = static_cast<double>(max_memory_allocated(device)) / (1 << 20);
    if (i == 0) first = ms;
    if (i >= 3) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], first, peak_mib};
}

using ProfileRows = std::vector<std::pair<std::string, std::pair<double, int>>>;

// The events of `category`, summed by name (a library step's kernels under their own
// names), most time first.
ProfileRows by_name(const std::vector<ProfileEvent>& events, const std::string& category,
                    double* total) {
  std::map<std::string, std::pair<double, int>> sums;  // total µs, launches
  *total = 0;
  for (const ProfileEvent& e : events) {
    if (e.category != category) continue;
    auto inner = e.args.find("kernel");
    std::string name = inner == e.args.end() ? e.name : e.name + " / " + inner->second;
    sums[name].first += e.duration_us;
    sums[name].second += 1;
    *total += e.duration_us;
  }
  ProfileRows rows(sums.begin(), sums.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  return rows;
}

void print_rows(const std::string& title, const ProfileRows& rows, double total, size_t top) {
  fmt::print("  {}: {:.1f} us in {} names\n", title, total, rows.size());
  for (size_t i = 0; i < rows.size() && i < top; ++i)
    fmt::print("  {:>9.1f} us {:>4}x  {}\n", rows[i].second.first, rows[i].second.second,
               rows[i].first.substr(0, 140));
}

// One more compiled step under the profiler: its phases' host time, the kernels by device
// time (on the GPU through CUPTI), the launches by host time, and the host's waits for the
// GPU.
void print_profile(const Workload& w, Device device) {
  optim::AdamW opt(w.model->parameters(), {.lr = 1e-4, .fused = true});
  auto compiled_loss = compile(w.loss);
  auto step = [&] {
    {
      auto scope = record_function("zero_grad");
      opt.zero_grad();
    }
    Tensor loss;
    {
      auto scope = record_function("forward");
      loss = compiled_loss(w.x, w.target);
    }
    {
      auto scope = record_function("backward");
      loss.backward();
    }
    {
      auto scope = record_function("optimizer step");
      opt.step();
    }
    auto scope = record_function("synchronize");
    sync(device);
  };
  step();
  step();
  const int64_t syncs = stats()["cuda.synchronizations"];
  Profiler profiler;
  profiler.start();
  step();
  profiler.stop();
  fmt::print("  {}: {} host waits for the GPU in the step\n", w.name,
             stats()["cuda.synchronizations"] - syncs);
  const std::vector<ProfileEvent> events = profiler.events();
  double total = 0;
  ProfileRows phases = by_name(events, "user", &total);
  print_rows("phases (host)", phases, total, phases.size());
  if (device == Device::cuda) {
    ProfileRows kernels = by_name(events, "gpu_kernel", &total);
    print_rows("kernels (device)", kernels, total, 25);
  }
  ProfileRows launches = by_name(events, "kernel", &total);
  print_rows("launches (host)", launches, total, 20);
}

// The first compiled step (empty caches make it the cold compile) under the profiler: the
// compile work by stage, summed over this process and its workers, and the step's wall time.
void print_first_step(const Workload& w, Device device) {
  optim::AdamW opt(w.model->parameters(), {.lr = 1e-4, .fused = true});
  auto compiled_loss = compile(w.loss);
  Profiler profiler;
  profiler.start();
  auto t = Clock::now();
  opt.zero_grad();
  compiled_loss(w.x, w.target).backward();
  opt.step();
  sync(device);
  const double ms = ms_since(t);
  profiler.stop();
  const std::vector<ProfileEvent> events = profiler.events();
  fmt::print("  {}: first compiled step {:.1f} ms\n", w.name, ms);
  for (const char* category : {"compile", "autotune", "user"}) {
    double total = 0;
    ProfileRows rows = by_name(events, category, &total);
    print_rows(fmt::format("{} spans (all processes)", category), rows, total, 25);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  Device device = Device::cpu;
  int steps = 10;
  bool profile = false, first = false;
  std::string only;  // --workload: only the workloads whose name contains it
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    if (a == "--device" && i + 1 < argc)
      device = std::string(argv[++i]) == "cuda" ? Device::cuda : Device::cpu;
    if (a == "--steps" && i + 1 < argc) steps = std::stoi(argv[++i]);
    if (a == "--profile") profile = true;
    if (a == "--first-step") first = true;
    if (a == "--workload" && i + 1 < argc) only = argv[++i];
  }
  fmt::print("training step (forward, backward, AdamW) on {}:\n", device_name(device));
  fmt::print("{:<36} {:>12} {:>12} {:>9} {:>16} {:>11} {:>11}\n", "workload", "kiln eager",
             "kiln compiled", "speedup", "first compiled", "peak eager", "peak comp.");
  if (first) {
    for (auto make : {mlp, transformer}) {
      manual_seed(0);
      Workload w = make(device);
      if (w.name.find(only) != std::string::npos) print_first_step(w, device);
    }
    return 0;
  }
  nlohmann::json rows = nlohmann::json::array();
  for (auto make : {mlp, transformer}) {
    manual_seed(0);
    Workload w = make(device);
    StepTimes eager = time_steps(w, false, device, steps);
    StepTimes compiled = time_steps(w, true, device, steps);
    fmt::print("{:<36} {:>9.2f} ms {:>9.2f} ms {:>8.2f}x {:>13.1f} ms {:>7.1f} MiB {:>7.1f} MiB\n",
               w.name, eager.ms, compiled.ms, eager.ms / compiled.ms, compiled.first_ms,
               eager.peak_mib, compiled.peak_mib);
    rows.push_back({{"workload", w.name},
                    {"kiln_eager_ms", eager.ms},
                    {"kiln_compiled_ms", compiled.ms},
                    {"kiln_first_compiled_step_ms", compiled.first_ms},
                    {"kiln_eager_peak_mib", eager.peak_mib},
                    {"kiln_compiled_peak_mib", compiled.peak_mib}});
    if (profile) print_profile(w, device);
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{
        {"device", device_name(device)},
        {"rows", rows}}.dump(2);
    fmt::print("wrote {}\n", json_path);
  }
  return 0;
}
