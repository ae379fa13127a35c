// conv2d at ResNet-50's shapes (batch 8, f32, CPU), each followed by relu: kiln eager and
// compiled, medians of 7 calls after 2, with the rate of the convolution's multiply-adds.
// bench/compare_conv_cpu.py runs it beside PyTorch's conv2d (oneDNN) in one call.
//   conv_bench [--json FILE] [--batch N]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kiln/kiln.h"

using namespace kiln;

namespace {

struct Shape2d {
  const char* name;
  int64_t c, h, oc, k, stride, pad;
};

// The distinct convolutions of ResNet-50's stem and stages.
const Shape2d kShapes[] = {
    {"stem 7x7/2 3-64 224", 3, 224, 64, 7, 2, 3}, {"3x3 64-64 56", 64, 56, 64, 3, 1, 1},
    {"1x1 64-256 56", 64, 56, 256, 1, 1, 0},      {"1x1 256-64 56", 256, 56, 64, 1, 1, 0},
    {"3x3/2 128-128 56", 128, 56, 128, 3, 2, 1},  {"3x3 128-128 28", 128, 28, 128, 3, 1, 1},
    {"3x3 256-256 14", 256, 14, 256, 3, 1, 1},    {"1x1 1024-256 14", 1024, 14, 256, 1, 1, 0},
    {"3x3 512-512 7", 512, 7, 512, 3, 1, 1},      {"1x1 512-2048 7", 512, 7, 2048, 1, 1, 0},
};

template <class F>
double median_ms(F f) {
  f();
  f();
  std::vector<double> t;
  for (int i = 0; i < 7; ++i) {
    auto start = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count());
  }
  std::nth_element(t.begin(), t.begin() + 3, t.end());
  return t[3];
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int64_t n = 8;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    if (a == "--batch" && i + 1 < argc) n = std::stoll(argv[++i]);
  }
  fmt::print("conv2d + relu, ResNet-50 shapes, batch {}, f32, {} threads\n\n", n,
             get_num_threads());
  fmt::print("{:<22} {:>10} {:>10} {:>10}\n", "shape", "eager", "compiled", "GFLOP/s");
  nlohmann::json rows = nlohmann::json::array();
  manual_seed(5);
  for (const Shape2d& s : kShapes) {
    Tensor x = randn({n, s.c, s.h, s.h});
    Tensor w = randn({s.oc, s.c, s.k, s.k}) * 0.05, b = randn({s.oc});
    auto fn = [&](const Tensor& in) { return relu(conv2d(in, w, b, {s.stride}, {s.pad})); };
    auto f = compile(fn);
    double eager = median_ms([&] { fn(x); });
    double compiled = median_ms([&] { f(x); });
    int64_t o = (s.h + 2 * s.pad - s.k) / s.stride + 1;
    double gflop = 2.0 * n * s.oc * s.c * s.k * s.k * o * o / 1e9;
    fmt::print("{:<22} {:>8.2f}ms {:>8.2f}ms {:>10.0f}\n", s.name, eager, compiled,
               gflop / compiled * 1e3);
    rows.push_back({{"shape", s.name},
                    {"batch", n},
                    {"eager_ms", eager},
                    {"compiled_ms", compiled},
                    {"gflop", gflop}});
  }
  // A ResNet basic block in eval mode (conv, batch_norm, relu, conv, batch_norm, the residual
  // add, relu), 64 channels on 56x56: compiled, the norms, activations and the residual fuse
  // into the products' epilogues; eagerly each is a pass over the activations.
  {
    const int64_t c = 64, h = 56;
    Tensor x = randn({n, c, h, h});
    Tensor w1 = randn({c, c, 3, 3}) * 0.05, w2 = randn({c, c, 3, 3}) * 0.05;
    Tensor mean = randn({c}) * 0.1, var = rand({c}) + 0.5, gamma = rand({c}) + 0.5,
           beta = randn({c}) * 0.1;
    auto block = [&](const Tensor& in) {
      Tensor y = relu(batch_norm(conv2d(in, w1, {}, {1}, {1}), mean, var, gamma, beta));
      y = batch_norm(conv2d(y, w2, {}, {1}, {1}), mean, var, gamma, beta);
      return relu(y + in);
    };
    auto f = compile(block);
    double eager = median_ms([&] { block(x); });
    double compiled = median_ms([&] { f(x); });
    fmt::print(
        "\nResNet basic block (eval), {}x{}x{}x{}: eager {:.2f} ms, compiled {:.2f} ms "
        "({:.2f}x)\n",
        n, c, h, h, eager, compiled, eager / compiled);
    rows.push_back({{"shape", "resnet basic block 64 56 (eval)"},
                    {"batch", n},
                    {"eager_ms", eager},
                    {"compiled_ms", compiled}});
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"benchmark", "conv"}, {"rows", rows}}.dump(2)
                             << "\n";
    fmt::print("wrote {}\n", json_path);
  }
  return 0;
}
