// A training step (forward, backward, AdamW) of an MLP and of a transformer encoder layer:
// kiln eager (eager autograd, eager optimizer) against kiln compiled (the loss compiled with
// its backward graph, the fused AdamW step), on the CPU or the GPU, with the first compiled
// step's time (trace, partition, both compiles). Prints a table; --json PATH writes it;
// bench/train_compare.py runs PyTorch eager and torch.compile on the same steps beside it.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
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

// ms per step (median of `steps` after warm-up) and the first step's ms.
std::pair<double, double> time_steps(const Workload& w, bool compiled, Device device, int steps) {
  optim::AdamW opt(w.model->parameters(), {.lr = 1e-4, .fused = compiled});
  auto compiled_loss = compile(w.loss);
  std::vector<double> times;
  double first = 0;
  for (int i = 0; i < steps + 3; ++i) {
    auto t = Clock::now();
    opt.zero_grad();
    Tensor loss = compiled ? compiled_loss(w.x, w.target) : w.loss(w.x, w.target);
    loss.backward();
    opt.step();
    sync(device);
    double ms = ms_since(t);
    if (i == 0) first = ms;
    if (i >= 3) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], first};
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  Device device = Device::cpu;
  int steps = 10;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    if (a == "--device" && i + 1 < argc)
      device = std::string(argv[++i]) == "cuda" ? Device::cuda : Device::cpu;
    if (a == "--steps" && i + 1 < argc) steps = std::stoi(argv[++i]);
  }
  fmt::print("training step (forward, backward, AdamW) on {}:\n", device_name(device));
  fmt::print("{:<36} {:>12} {:>12} {:>9} {:>16}\n", "workload", "kiln eager", "kiln compiled",
             "speedup", "first compiled");
  nlohmann::json rows = nlohmann::json::array();
  for (auto make : {mlp, transformer}) {
    manual_seed(0);
    Workload w = make(device);
    auto [eager_ms, eager_first] = time_steps(w, false, device, steps);
    auto [compiled_ms, compiled_first] = time_steps(w, true, device, steps);
    fmt::print("{:<36} {:>9.2f} ms {:>9.2f} ms {:>8.2f}x {:>13.1f} ms\n", w.name, eager_ms,
               compiled_ms, eager_ms / compiled_ms, compiled_first);
    rows.push_back({{"workload", w.name},
                    {"kiln_eager_ms", eager_ms},
                    {"kiln_compiled_ms", compiled_ms},
                    {"kiln_first_compiled_step_ms", compiled_first}});
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{
        {"device", device_name(device)},
        {"rows", rows}}.dump(2);
    fmt::print("wrote {}\n", json_path);
  }
  return 0;
}
