// Observability: the profiler (kernel slices with their metadata, schedules, record_function,
// worker compile tracks, Chrome trace export), launch hooks, the structured trace
// (KILN_TRACE), runnable repros replayed by `kiln repro` in a fresh process with a clean
// environment, and the minifier.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cache/cache.h"
#include "kiln/kiln.h"
#include "observe/repro.h"
#include "support/compare.h"

namespace kiln::testing {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A scratch directory (and cache) per test.
class Observe : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fmt::format("{}/observe-{}-{}", std::filesystem::temp_directory_path().string(),
                       getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/trace");
    setenv("KILN_CACHE_DIR", (dir_ + "/cache").c_str(), 1);
  }
  void TearDown() override {
    unsetenv("KILN_TRACE");
    unsetenv("KILN_TRACE_SAVE_INPUTS");
    set_launch_hooks(nullptr, nullptr);
    std::filesystem::remove_all(dir_);
  }
  std::vector<std::string> runnables() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/trace")) {
      std::string name = e.path().filename().string();
      if (name.rfind("graph_runnable_", 0) == 0 && e.path().extension() == ".json")
        out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // `kiln repro FILE` in a fresh process with a clean environment: its exit code and output.
  std::pair<int, std::string> replay(const std::string& file, const std::string& env = "") const {
    std::string out = dir_ + "/replay.txt";
    // A fresh environment, but for the library choice the run was given (the sanitizer run
    // keeps OpenBLAS: scripts/test.sh).
    const char* sgemm = std::getenv("KILN_SGEMM");
    std::string keep = sgemm ? fmt::format("KILN_SGEMM={}", sgemm) : "";
    std::string cmd = fmt::format("env -i HOME={} PATH=/usr/bin:/bin {} {} {} repro {} > {} 2>&1",
                                  dir_, keep, env, KILN_CLI_PATH, file, out);
    int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_text(out)};
  }
  // `kiln minify FILE` with op `broken`'s rendering broken (KILN_INJECT_FAULT): expects it
  // to succeed and shrink the graph to at most 3 nodes, one of them `broken`.
  void expect_minified_to(const std::string& file, Op broken) const {
    const std::string out = dir_ + "/minimal.json", log = dir_ + "/minify.txt";
    int status = std::system(
        fmt::format("KILN_INJECT_FAULT=lowering:{} KILN_FORCE_DISABLE_CACHES=1 {} minify {} "
                    "--out {} > {} 2>&1",
                    op_name(broken), KILN_CLI_PATH, file, out, log)
            .c_str());
    ASSERT_EQ(status, 0) << read_text(log);
    Repro minimal = read_repro(out);
    EXPECT_LE(minimal.graph.nodes.size(), 3u) << read_text(log);
    bool found = false;
    for (const Node& n : minimal.graph.nodes) found = found || n.op == broken;
    EXPECT_TRUE(found) << read_text(out);
  }
  std::string dir_;
};

Tensor sin_cos(const Tensor& x, const Tensor& y) { return cos(sin(x + y)); }

TEST_F(Observe, ProfilerNamesEachLaunchWithItsMetadata) {
  auto f = compile(sin_cos);
  Tensor x = randn({4, 4}), y = randn({4, 4});
  f(x, y);  // compiled before profiling: the profile holds the launch only
  Profiler p;
  p.start();
  f(x, y);
  p.stop();
  std::vector<ProfileEvent> kernels;
  for (const ProfileEvent& e : p.events())
    if (e.category == "kernel") kernels.push_back(e);
  ASSERT_EQ(kernels.size(), 1u);
  const ProfileEvent& k = kernels[0];
  EXPECT_EQ(k.name, "cpp_poi_fused_add_cos_sin_0");
  EXPECT_EQ(k.input_shapes, (std::vector<Shape>{{4, 4}, {4, 4}}));
  EXPECT_EQ(k.args.at("kernel_backend"), "cpp");
  EXPECT_EQ(k.args.at("stream"), "0");
  EXPECT_EQ(k.args.at("kernel_kind"), "poi");
  EXPECT_NE(k.args.at("kernel_kwargs").find("THREADS="), std::string::npos)
      << k.args.at("kernel_kwargs");
  const std::string file = k.args.at("kernel_file");
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  EXPECT_EQ(k.args.at("kernel_hash"), content_key(read_text(file)));
  const std::string symbol = k.args.at("kernel_symbol");
  EXPECT_EQ(symbol.rfind("cpp_poi_fused_add_cos_sin_", 0), 0u) << symbol;
  EXPECT_NE(read_text(file).find(symbol + "("), std::string::npos) << symbol;
  EXPECT_GT(k.duration_us, 0);
}

TEST_F(Observe, ForeachTemplateAndLibraryLaunchesShowTheirKinds) {
  CompileOptions o;
  o.autotune = true;
  o.max_autotune = true;
  auto f = compile(
      [](const Tensor& a, const Tensor& b) {
        return std::vector<Tensor>{a + 1.0f, b + 1.0f, relu(matmul(a, b))};
      },
      o);
  auto g = compile([](const Tensor& a, const Tensor& b) { return matmul(a, b); });
  Tensor a = randn({16, 16}), b = randn({16, 16});
  f(a, b);
  g(a, b);
  Profiler p;
  p.start();
  f(a, b);
  g(a, b);
  p.stop();
  std::set<std::string> kinds;
  for (const ProfileEvent& e : p.events())
    if (e.category == "kernel") kinds.insert(e.args.at("kernel_kind"));
  EXPECT_TRUE(kinds.count("for")) << "foreach";
  EXPECT_TRUE(kinds.count("tem")) << "template";
  EXPECT_TRUE(kinds.count("ext")) << "library call";
}

TEST_F(Observe, TheScheduleKeepsExactlyTheActiveSteps) {
  auto f = compile(sin_cos);
  Tensor x = randn({4, 4}), y = randn({4, 4});
  f(x, y);
  ProfilerOptions options;
  options.schedule = ProfilerSchedule{1, 1, 1, 2, 1};  // skip 1, wait 1, warm 1, active 2, once
  Profiler p(options);
  p.start();
  for (int step = 0; step < 10; ++step) {
    auto scope = record_function(fmt::format("step{}", step));
    f(x, y);
    p.step();
  }
  p.stop();
  std::vector<std::string> kept;
  int launches = 0;
  for (const ProfileEvent& e : p.events()) {
    if (e.category == "user") kept.push_back(e.name);
    if (e.category == "kernel") ++launches;
  }
  EXPECT_EQ(kept, (std::vector<std::string>{"step3", "step4"}));
  EXPECT_EQ(launches, 2);
}

TEST_F(Observe, ChromeTraceParsesNestsAndShowsWorkerCompileTracks) {
  CompileOptions o;
  o.mode = CompileMode::Subprocess;
  auto f = compile(sin_cos, o);
  Tensor x = randn({4, 4}), y = randn({4, 4});
  Profiler p;
  p.start();
  {
    auto scope = record_function("first call");
    f(x, y);
  }
  p.stop();
  const std::string path = dir_ + "/trace.json";
  p.export_chrome_trace(path);
  nlohmann::json doc = nlohmann::json::parse(read_text(path));
  ASSERT_TRUE(doc.contains("traceEvents"));
  std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<double, double>>> slices;
  std::map<std::pair<int64_t, int64_t>, std::vector<std::string>> names;  // for the message
  bool worker_compile = false, kernel = false, process_names = false;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "M") {
      process_names = process_names || e["name"] == "process_name";
      continue;
    }
    ASSERT_EQ(e["ph"], "X");
    double ts = e["ts"].get<double>(), dur = e["dur"].get<double>();
    slices[{e["pid"].get<int64_t>(), e["tid"].get<int64_t>()}].push_back({ts, ts + dur});
    names[{e["pid"].get<int64_t>(), e["tid"].get<int64_t>()}].push_back(
        e["name"].get<std::string>());
    if (e["pid"].get<int64_t>() != getpid() && e["cat"] == "compile") worker_compile = true;
    if (e["cat"] == "kernel") kernel = true;
  }
  EXPECT_TRUE(worker_compile) << "no compile slices on a worker's track";
  EXPECT_TRUE(kernel);
  EXPECT_TRUE(process_names);
  // Per thread, slices are disjoint or nested (a stack), in the file's order (a slice that
  // broke this once in a few runs under load was two back-to-back stages, within rounding).
  for (auto& [track, list] : slices) {
    std::vector<std::pair<double, size_t>> open;  // ends, and which slice
    for (size_t i = 0; i < list.size(); ++i) {
      auto [begin, end] = list[i];
      // Microsecond timestamps near 1e10 as doubles: a slice that ends where the next begins
      // may round a few picoseconds past it, which is not an overlap.
      while (!open.empty() && open.back().first <= begin + 1e-3) open.pop_back();
      if (!open.empty()) {
        EXPECT_LE(end, open.back().first + 1e-3)
            << "overlapping slices on track " << track.first << "/" << track.second << ": '"
            << names[track][i] << "' [" << begin << ", " << end << "] in '"
            << names[track][open.back().second] << "' [" << list[open.back().second].first << ", "
            << open.back().first << "]";
      }
      open.push_back({end, i});
    }
  }
}

TEST_F(Observe, LaunchHooksFireOncePerLaunchWithTheKernelName) {
  auto f = compile(sin_cos);
  Tensor x = randn({4, 4}), y = randn({4, 4});
  f(x, y);
  std::vector<std::string> calls;
  set_launch_hooks([&](const LaunchInfo& i) { calls.push_back("enter " + std::string(i.name)); },
                   [&](const LaunchInfo& i) { calls.push_back("exit " + std::string(i.name)); });
  f(x, y);
  f(x, y);
  set_launch_hooks(nullptr, nullptr);
  f(x, y);
  EXPECT_EQ(calls, (std::vector<std::string>{
                       "enter cpp_poi_fused_add_cos_sin_0", "exit cpp_poi_fused_add_cos_sin_0",
                       "enter cpp_poi_fused_add_cos_sin_0", "exit cpp_poi_fused_add_cos_sin_0"}));
}

TEST_F(Observe, StructuredTraceHasTheNamedArtifacts) {
  setenv("KILN_TRACE", (dir_ + "/trace").c_str(), 1);
  CompileOptions o;
  o.mode = CompileMode::Subprocess;
  o.worker_start = WorkerStart::Fork;  // a pool of its own: its workers start in this test
  auto f = compile(sin_cos, o);
  f(randn({4, 4}), randn({4, 4}));
  std::set<std::string> artifacts;
  std::ifstream in(fmt::format("{}/trace/kiln_trace_{}.jsonl", dir_, getpid()));
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    artifacts.insert(j.at("artifact").get<std::string>());
    if (j["artifact"] == "graph_runnable") {
      EXPECT_TRUE(std::filesystem::exists(j["path"].get<std::string>()));
    }
  }
  for (const char* a : {"graph", "fused_graph", "kernel_source", "compile_timings",
                        "graph_runnable", "worker_start"})
    EXPECT_TRUE(artifacts.count(a)) << a;
}

// Each case compiles under KILN_TRACE, then replays every repro it wrote in a fresh process.
TEST_F(Observe, ReprosReplayInAFreshProcess) {
  setenv("KILN_TRACE", (dir_ + "/trace").c_str(), 1);
  TensorMap w = load_safetensors(data_path("model_mlp.safetensors"));
  auto mlp = [&](const Tensor& x) {
    Tensor h = relu(linear(x, w.at("w.0.weight"), w.at("w.0.bias")));
    h = relu(linear(h, w.at("w.2.weight"), w.at("w.2.bias")));
    return linear(h, w.at("w.4.weight"), w.at("w.4.bias"));
  };
  compile([](const Tensor& x) { return x + 1.0f; })(randn({5}));
  compile([](const Tensor& x, const Tensor& y) { return relu(matmul(x, y)); })(randn({8, 6}),
                                                                               randn({6, 4}));
  compile([](const Tensor& x) { return x * 2.5f; })(
      randn({3, 7}).transpose(0, 1));  // a strided input
  Tensor a = randn({6, 5}), b = randn({5, 3});
  mark_dynamic(a, 0);
  compile([](const Tensor& x, const Tensor& y) { return matmul(x, y); })(a, b);
  Tensor c = randn({4, 3}), d = randn({3});
  mark_dynamic(c, 0);
  compile([](const Tensor& x, const Tensor& y) { return x + y; })(c, d);
  compile(mlp)(w.at("input"));
  Tensor batch = w.at("input").narrow(0, 0, 3).contiguous();
  mark_dynamic(batch, 0);
  compile(mlp)(batch);
  auto pool = compile([](const Tensor& x, const Tensor& y) {
    return std::vector<Tensor>{adaptive_avg_pool2d(x, {2, 2}), adaptive_avg_pool2d(y, {3, 1})};
  });
  pool(randn({1, 2, 6, 6}), randn({2, 1, 5, 4}));
  setenv("KILN_TRACE_SAVE_INPUTS", "1", 1);
  Profiler p;
  p.start();
  compile(sin_cos)(randn({4, 4}), randn({4, 4}));
  p.stop();
  std::vector<std::string> files = runnables();
  ASSERT_EQ(files.size(), 9u);
  int saved = 0;
  for (const std::string& file : files) {
    auto [code, output] = replay(file);
    EXPECT_EQ(code, 0) << file << "\n" << output;
    EXPECT_NE(output.find("match eager"), std::string::npos) << output;
    saved += read_text(file).find(".inputs.safetensors") != std::string::npos;
  }
  EXPECT_EQ(saved, 1) << "KILN_TRACE_SAVE_INPUTS saves the real inputs";
}

// A compiled function with its backward: the forward and the backward graph each leave a
// repro file (the backward's at its first run) that replays, and the profile of a training
// call shows both graphs' kernels.
TEST_F(Observe, BackwardGraphsReplayAndProfile) {
  setenv("KILN_TRACE", (dir_ + "/trace").c_str(), 1);
  setenv("KILN_TRACE_SAVE_INPUTS", "1", 1);
  Tensor w = randn({6, 4}).requires_grad_();
  auto f = compile([&w](const Tensor& x) { return matmul(x, w).tanh().sum(); });
  Tensor x = randn({3, 6});
  f(x).backward();
  std::vector<std::string> files = runnables();
  ASSERT_EQ(files.size(), 2u);
  bool backward_seen = false;
  for (const std::string& file : files) {
    backward_seen |= read_text(file).find("compiled_backward") != std::string::npos;
    auto [code, output] = replay(file);
    EXPECT_EQ(code, 0) << file << "\n" << output;
    EXPECT_NE(output.find("match eager"), std::string::npos) << output;
  }
  EXPECT_TRUE(backward_seen);
  Profiler p;
  p.start();
  f(x).backward();
  p.stop();
  int kernels = 0;
  for (const ProfileEvent& e : p.events()) kernels += e.category == "kernel";
  EXPECT_GE(kernels, 2) << "forward and backward kernels";
}

TEST_F(Observe, AMismatchingReproExitsNonZeroWithAReport) {
  setenv("KILN_TRACE", (dir_ + "/trace").c_str(), 1);
  compile(sin_cos)(randn({4, 4}), randn({4, 4}));
  ASSERT_EQ(runnables().size(), 1u);
  auto [code, output] =
      replay(runnables()[0], "KILN_INJECT_FAULT=lowering:sin KILN_FORCE_DISABLE_CACHES=1");
  EXPECT_EQ(code, 1) << output;
  EXPECT_NE(output.find("MISMATCH"), std::string::npos) << output;
  EXPECT_NE(output.find("output 0"), std::string::npos) << output;
}

TEST_F(Observe, MinifierShrinksToTheBrokenOp) {
  setenv("KILN_TRACE", (dir_ + "/trace").c_str(), 1);
  // About 40 nodes: a chain of cheap ops with one sin in the middle, a reduction at the end.
  compile([](const Tensor& x) {
    Tensor t = x;
    for (int i = 0; i < 18; ++i) t = (i == 9 ? sin(t) : t * 0.9f) + 0.1f;
    return tanh(t) * 2.0f + sum(t, {-1}, true);
  })(randn({8, 16}));
  ASSERT_EQ(runnables().size(), 1u);
  const std::string file = runnables()[0];
  Repro original = read_repro(file);
  EXPECT_GE(original.graph.nodes.size(), 36u);
  expect_minified_to(file, Op::sin);
}

// The minifier on a backward graph's repro: the derivative of sin is a cos that only the
// backward graph computes; with cos broken, the forward's repro still matches and the
// backward's shrinks to the cos.
TEST_F(Observe, MinifierShrinksABackwardGraphToTheBrokenOp) {
  setenv("KILN_TRACE", (dir_ + "/trace").c_str(), 1);
  setenv("KILN_TRACE_SAVE_INPUTS", "1", 1);
  Tensor w = randn({16}).requires_grad_();
  compile([&w](const Tensor& x) {
    Tensor t = x * w;
    for (int i = 0; i < 8; ++i) t = (i == 4 ? sin(t) : t * 0.9f) + 0.1f;
    return (t * t).sum();
  })(randn({8, 16}))
      .backward();
  std::vector<std::string> files = runnables();
  ASSERT_EQ(files.size(), 2u);
  std::string backward_file;
  for (const std::string& file : files) {
    auto [code, output] =
        replay(file, "KILN_INJECT_FAULT=lowering:cos KILN_FORCE_DISABLE_CACHES=1");
    if (read_text(file).find("compiled_backward") == std::string::npos) {
      EXPECT_EQ(code, 0) << "the forward has no cos: " << output;
      continue;
    }
    EXPECT_EQ(code, 1) << output;
    backward_file = file;
  }
  ASSERT_FALSE(backward_file.empty());
  EXPECT_GE(read_repro(backward_file).graph.nodes.size(), 10u);
  expect_minified_to(backward_file, Op::cos);
}

}  // namespace
}  // namespace kiln::testing
