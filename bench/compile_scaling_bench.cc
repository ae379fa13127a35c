// Cold compile time against graph size: an L-layer transformer encoder (d256, 8 heads,
// ff 1024; L = 1, 2, 4, 8, 12) and a mixed graph of N nodes (matmul, sin, softmax, add on
// 64x64; N = 250 .. 2000), each compiled InProcess with every cache off, in a fresh process
// of its own (this binary run again with --one), timed from compile() to the first result.
// Prints a table; --json writes it. Goal (issue 19): L = 12 at most 2x L = 1, N = 1000
// within 2 s.
#include <fmt/format.h>
#include <stdio.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "kiln/kiln.h"

using namespace kiln;
using Clock = std::chrono::steady_clock;

namespace {

// One case, here: prints {"seconds":..,"kernels":..,"objects":..} on stdout.
int run_one(const std::string& kind, int size) {
  setenv("KILN_FORCE_DISABLE_CACHES", "1", 1);
  manual_seed(0);
  CompileOptions options;
  options.mode = CompileMode::InProcess;
  std::function<Tensor(Tensor)> fn;
  Tensor x;
  std::vector<std::shared_ptr<nn::TransformerEncoderLayer>> layers;
  if (kind == "layers") {
    for (int i = 0; i < size; ++i) {
      layers.push_back(std::make_shared<nn::TransformerEncoderLayer>(256, 8, 1024, 0.0, "relu",
                                                                     1e-5, /*batch_first=*/true));
      layers.back()->eval();
    }
    fn = [&](Tensor h) {
      for (auto& layer : layers) h = layer->forward(h);
      return h;
    };
    x = randn({2, 64, 256});
  } else {
    Tensor w = randn({64, 64});
    fn = [size, w](Tensor h) {
      Tensor in = h;
      for (int i = 0; i < size / 4; ++i) h = softmax(matmul(h, w).sin(), -1) + in;
      return h;
    };
    x = randn({64, 64});
  }
  const int64_t objects = stats()["compile.in_process"];
  auto start = Clock::now();
  auto f = compile(fn, options);
  Tensor out = f(x);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  nlohmann::json j{{"seconds", seconds},
                   {"kernels", f.kernels(0).size()},
                   {"objects", stats()["compile.in_process"] - objects}};
  fmt::print("{}\n", j.dump());
  return 0;
}

nlohmann::json run_in_child(const std::string& self, const std::string& kind, int size) {
  std::string command = fmt::format("'{}' --one {} {}", self, kind, size);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("popen failed: " + command);
  std::string text;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe.get())) text.append(buffer, n);
  return nlohmann::json::parse(text.substr(text.rfind('{')));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--one") return run_one(argv[2], std::atoi(argv[3]));
  std::string json_path;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--json" && i + 1 < argc) json_path = argv[++i];
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  nlohmann::json results = nlohmann::json::array();
  fmt::print("{:<34} {:>10} {:>8} {:>8} {:>10}\n", "cold compile, InProcess, caches off", "seconds",
             "kernels", "objects", "vs first");
  for (const char* kind : {"layers", "nodes"}) {
    double first = 0;
    std::vector<int> sizes = std::string(kind) == "layers" ? std::vector<int>{1, 2, 4, 8, 12}
                                                           : std::vector<int>{250, 500, 1000, 2000};
    for (int size : sizes) {
      nlohmann::json r = run_in_child(self, kind, size);
      double s = r.at("seconds").get<double>();
      if (first == 0) first = s;
      std::string label = std::string(kind) == "layers"
                              ? fmt::format("transformer encoder, L = {}", size)
                              : fmt::format("mixed graph, N = {} nodes", size);
      fmt::print("{:<34} {:>10.3f} {:>8} {:>8} {:>9.2f}x\n", label, s, r.at("kernels").get<int>(),
                 r.at("objects").get<int>(), s / first);
      r["case"] = label;
      r["kind"] = kind;
      r["size"] = size;
      results.push_back(r);
    }
  }
  if (!json_path.empty()) std::ofstream(json_path) << results.dump(2) << "\n";
}
