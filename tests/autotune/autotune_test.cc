// Autotuning: configs and spaces as text, the name-agnostic tuning hash, tuning a real
// plan (variants compiled by gcc, timed in the benchmark worker), the autotune cache, the
// lookup table (used without timing the candidate list; where coordinate descent starts),
// and a benchmark that crashes (the kernel keeps its default).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "autotune/benchmark.h"
#include "autotune/tuner.h"
#include "driver/plan_builder.h"
#include "kiln/kiln.h"
#include "support/compare.h"
#include "trace/tracer.h"
#include "worker/pool.h"

namespace kiln::testing {
namespace {

int64_t delta(std::map<std::string, int64_t>& before, const char* name) {
  return stats()[name] - before[name];
}

Graph traced(const std::string& name, const std::vector<Tensor>& examples,
             const std::function<Tensor(const std::vector<Tensor>&)>& fn) {
  Tracer tracer(name, /*freeze_captured=*/false);
  std::vector<Tensor> in = tracer.add_inputs(examples);
  Tensor out;
  {
    RecorderScope scope(&tracer);
    out = fn(in);
  }
  return tracer.finish({out}).graph;
}

Graph sin_cos_graph(const std::string& name = "sincos") {
  return traced(name, {randn({256, 256}), randn({256, 256})},
                [](const std::vector<Tensor>& in) { return cos(sin(in[0] + in[1])); });
}

TuneSetup setup_here(const Graph& graph) {
  TuneSetup setup;
  setup.toolchain = toolchain_for(Tier::optimized, "gcc");
  setup.compile = [toolchain = setup.toolchain](const std::string& name,
                                                const std::string& source) {
    return compile_object(toolchain, name, source);
  };
  setup.benchmark = [](const BenchmarkRequest& request, const std::string& what) {
    return benchmark_in_worker(WorkerStart::Subprocess, false, request, what);
  };
  setup.cache = Cache::open();
  setup.size_hints = graph.size_hints;
  setup.seconds_per_config = 0.002;
  return setup;
}

// Tunes the plan's kernels and rebuilds its units, as the compile driver does.
std::vector<TuneReport> tune(CompiledPlan& plan, const TuneSetup& setup) {
  std::vector<TuneReport> reports = autotune_plan(plan, setup);
  assemble_units(plan, setup.toolchain);
  return reports;
}

// A fresh cache per test: tuned configs of one test must not be another's cache hits.
class Autotune : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fmt::format("{}/autotune-{}-{}", std::filesystem::temp_directory_path().string(),
                       getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    setenv("KILN_CACHE_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("KILN_AUTOTUNE_LOOKUP_TABLE");
    std::filesystem::remove_all(dir_);
  }
  std::string write_table(const std::string& json) {
    std::string path = dir_ + "-table.json";
    std::ofstream(path) << json;
    setenv("KILN_AUTOTUNE_LOOKUP_TABLE", path.c_str(), 1);
    return path;
  }
  std::string dir_;
};

TEST(Config, TextRoundTripsAndBadTextIsRefused) {
  KernelConfig c = parse_config("VEC=256,THREADS=2", "test");
  EXPECT_EQ(config_text(c), "THREADS=2,VEC=256");
  EXPECT_THROW(parse_config("THREADS", "test"), FormatError);
  EXPECT_THROW(parse_config("threads=2", "test"), FormatError);
  EXPECT_THROW(parse_config("THREADS=-1", "test"), FormatError);
  EXPECT_THROW(parse_config("THREADS=1,THREADS=2", "test"), FormatError);
}

TEST(Config, SpaceTextRoundTripsAndNeighboursChangeOneField) {
  TuneSpace space;
  space.fields = {{"CHUNK", {64, 128, 256, 512}}, {"THREADS", {1, 2}}};
  space.defaults = {{"CHUNK", 256}, {"THREADS", 0}};
  space.candidates = {{{"THREADS", 1}}, {{"CHUNK", 64}}};
  TuneSpace back = parse_space(space_text(space), "test");
  EXPECT_EQ(space_text(back), space_text(space));
  EXPECT_EQ(back.candidates, space.candidates);
  // From the defaults: CHUNK to its adjacent values, THREADS (0, outside its list) to each value.
  std::vector<KernelConfig> n = space.neighbours(space.defaults);
  std::vector<KernelConfig> want = {{{"CHUNK", 128}, {"THREADS", 0}},
                                    {{"CHUNK", 512}, {"THREADS", 0}},
                                    {{"CHUNK", 256}, {"THREADS", 1}},
                                    {{"CHUNK", 256}, {"THREADS", 2}}};
  EXPECT_EQ(n, want);
  EXPECT_FALSE(space.admits({{"CHUNK", 100}}));
  EXPECT_FALSE(space.admits({{"BLOCK", 64}}));
  EXPECT_TRUE(space.admits({{"THREADS", 0}}));
  EXPECT_THROW(parse_space("CHUNK=64 default BLOCK=1 try ", "test"), FormatError);
  EXPECT_THROW(parse_space("CHUNK=64 default CHUNK=64 try CHUNK=100", "test"), FormatError);
}

TEST(TuningHash, IgnoresTheKernelNameButNotItsSizesOrBody) {
  Graph g = sin_cos_graph();
  CompiledPlan plan = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
  ASSERT_EQ(plan.kernels.size(), 1u);
  KernelLaunch k = plan.kernels[0];
  const std::string hash = tuning_hash(k, {});
  KernelLaunch renamed = k;
  renamed.source = std::regex_replace(k.source, std::regex(k.name), "cpp_poi_fused_renamed_7");
  renamed.name = "cpp_poi_fused_renamed_7";
  EXPECT_EQ(tuning_hash(renamed, {}), hash);
  EXPECT_NE(tuning_hash(k, {7}), hash);
  KernelLaunch other = k;
  other.source += " ";
  EXPECT_NE(tuning_hash(other, {}), hash);
}

TEST_F(Autotune, BenchmarksCandidatesThenDescendsAndCachesTheWinner) {
  Graph g = sin_cos_graph();
  CompiledPlan plan = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
  const std::string default_source = plan.units[0].source;
  auto before = stats();
  std::vector<TuneReport> reports = tune(plan, setup_here(g));
  ASSERT_EQ(reports.size(), 1u);
  const TuneReport& r = reports[0];
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.tuning, "benchmarked");
  EXPECT_EQ(delta(before, "autotune.runs"), 1);
  const TuneSpace& space = plan.kernels[0].space;
  // The default and every candidate were timed first, then the descent's neighbours.
  ASSERT_GT(r.timed.size(), space.candidates.size() + 1);
  EXPECT_EQ(r.timed[0].first, space.defaults);
  for (size_t i = 0; i < space.candidates.size(); ++i)
    EXPECT_EQ(r.timed[i + 1].first, space.complete(space.candidates[i]));
  EXPECT_EQ(delta(before, "autotune.configs_timed"), static_cast<int64_t>(r.timed.size()));
  EXPECT_GT(r.default_seconds, 0);
  EXPECT_GT(r.chosen_seconds, 0);
  EXPECT_TRUE(space.admits(r.chosen));
  EXPECT_EQ(plan.kernels[0].config, r.chosen);
  EXPECT_EQ(plan.kernels[0].tuning, "benchmarked");
  EXPECT_NE(plan.units[0].source.find("/* config of " + plan.kernels[0].symbol + ": " +
                                      config_text(r.chosen)),
            std::string::npos);
  if (r.chosen != space.defaults) {
    EXPECT_NE(plan.units[0].source, default_source);
  }

  // Another plan with the same kernel (another graph name): the cached winner, nothing timed.
  CompiledPlan again = build_plan(sin_cos_graph("other"), toolchain_for(Tier::optimized, "gcc"));
  before = stats();
  std::vector<TuneReport> second = tune(again, setup_here(g));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].tuning, "cached");
  EXPECT_EQ(again.kernels[0].config, r.chosen);
  EXPECT_EQ(delta(before, "autotune.cache_hits"), 1);
  EXPECT_EQ(delta(before, "autotune.configs_timed"), 0);
}

// A background stage's tuning runs on the one core its program's calls leave: the threads
// are not its to decide (they keep their defaults, for the thread choice on live calls), and
// what it chose is not served to a tuning on every core.
TEST_F(Autotune, TuningOnOneCoreLeavesTheThreadsAlone) {
  Graph g = sin_cos_graph();
  CompiledPlan plan = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
  const TuneSpace space = plan.kernels[0].space;
  ASSERT_NE(space.field("THREADS"), nullptr) << "this test needs a machine of 2 cores or more";
  TuneSetup setup = setup_here(g);
  setup.one_core = true;
  setup.benchmark = [](const BenchmarkRequest& request, const std::string& what) {
    return benchmark_in_worker(WorkerStart::Subprocess, /*background=*/true, request, what);
  };
  std::vector<TuneReport> reports = tune(plan, setup);
  ASSERT_EQ(reports.size(), 1u);
  const TuneReport& r = reports[0];
  ASSERT_GT(r.timed.size(), 1u) << "the other fields were still tuned";
  for (const auto& [config, seconds] : r.timed) {
    EXPECT_EQ(config.at("THREADS"), space.defaults.at("THREADS")) << config_text(config);
    EXPECT_EQ(config.at("GRAIN"), space.defaults.at("GRAIN")) << config_text(config);
  }
  EXPECT_EQ(plan.kernels[0].config.at("THREADS"), 0) << "every thread, as the thread choice finds";

  CompiledPlan again = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
  auto before = stats();
  std::vector<TuneReport> every_core = tune(again, setup_here(g));
  ASSERT_EQ(every_core.size(), 1u);
  EXPECT_EQ(every_core[0].tuning, "benchmarked") << "a one-core choice is cached apart";
  EXPECT_EQ(delta(before, "autotune.cache_hits"), 0);
}

TEST_F(Autotune, TunedCompiledCodeMatchesEagerInEveryMode) {
  for (CompileMode mode : {CompileMode::InProcess, CompileMode::Subprocess}) {
    CompileOptions o;
    o.mode = mode;
    o.autotune = true;
    o.name = fmt::format("tuned_{}", compile_mode_name(mode));
    auto fn = [](const Tensor& x, const Tensor& y) {
      return softmax(x * y, -1) + layer_norm(x, {x.size(-1)});
    };
    auto f = compile(fn, o);
    Tensor x = randn({64, 300}), y = randn({64, 300});
    EXPECT_EQ(compare_tensors(f(x, y), fn(x, y), 1e-4, 1e-4), "") << compile_mode_name(mode);
    EXPECT_NE(f.build_options().find("autotune=on"), std::string::npos);
    for (const KernelInfo& k : f.kernels())
      EXPECT_NE(k.tuning, "default") << k.name << " in " << compile_mode_name(mode);
  }
}

TEST_F(Autotune, LookupTableEntryReplacesTimingTheCandidates) {
  Graph g = sin_cos_graph();
  CompiledPlan plan = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
  const std::string hash = tuning_hash(plan.kernels[0], g.size_hints);
  write_table(fmt::format(R"({{"{}": {{"config": "VEC=128", "kernel": "{}"}}}})", hash,
                          plan.kernels[0].name));
  TuneSetup setup = setup_here(g);
  setup.table = LookupTable::from_environment();
  setup.coordinate_descent = false;
  auto before = stats();
  std::vector<TuneReport> reports = tune(plan, setup);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].tuning, "lookup_table");
  EXPECT_EQ(plan.kernels[0].config, plan.kernels[0].space.complete({{"VEC", 128}}));
  EXPECT_EQ(delta(before, "autotune.lookup_hits"), 1);
  EXPECT_EQ(delta(before, "autotune.runs"), 0);
  EXPECT_EQ(delta(before, "autotune.configs_timed"), 0)
      << "a lookup hit times nothing without descent";
}

TEST_F(Autotune, CoordinateDescentStartsFromTheLookupTableEntry) {
  Graph g = sin_cos_graph();
  CompiledPlan plan = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
  const std::string hash = tuning_hash(plan.kernels[0], g.size_hints);
  write_table(fmt::format(R"({{"{}": "VEC=128"}})", hash));
  TuneSetup setup = setup_here(g);
  setup.table = LookupTable::from_environment();
  auto before = stats();
  std::vector<TuneReport> reports = tune(plan, setup);
  ASSERT_EQ(reports.size(), 1u);
  const TuneReport& r = reports[0];
  KernelConfig start = plan.kernels[0].space.complete({{"VEC", 128}});
  EXPECT_EQ(r.tuning, "lookup_table");
  EXPECT_EQ(r.start, start);
  ASSERT_FALSE(r.timed.empty());
  EXPECT_EQ(r.timed.front().first, start)
      << "the first round times the table's config beside its neighbours";
  EXPECT_EQ(delta(before, "autotune.runs"), 0) << "the candidate list was not timed";
  EXPECT_EQ(delta(before, "autotune.lookup_hits"), 1);
}

// `kiln cache autotune-table` exports what was tuned; another cache given that table uses
// it instead of timing the candidates.
TEST_F(Autotune, TheExportedTableSeedsAnotherCache) {
  Graph g = sin_cos_graph();
  CompiledPlan plan = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
  std::vector<TuneReport> reports = tune(plan, setup_here(g));
  ASSERT_EQ(reports.size(), 1u);
  std::string path = dir_ + "-exported.json";
  ASSERT_EQ(std::system(fmt::format("{} cache autotune-table > {}", KILN_CLI_PATH, path).c_str()),
            0);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find(reports[0].hash), std::string::npos) << text.str();
  EXPECT_NE(text.str().find(config_text(reports[0].chosen)), std::string::npos) << text.str();

  setenv("KILN_CACHE_DIR", (dir_ + "-second").c_str(), 1);
  setenv("KILN_AUTOTUNE_LOOKUP_TABLE", path.c_str(), 1);
  CompiledPlan again = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
  TuneSetup setup = setup_here(g);
  setup.table = LookupTable::from_environment();
  setup.coordinate_descent = false;
  auto before = stats();
  reports = tune(again, setup);
  std::filesystem::remove_all(dir_ + "-second");
  std::filesystem::remove(path);
  EXPECT_EQ(delta(before, "autotune.lookup_hits"), 1);
  EXPECT_EQ(delta(before, "autotune.configs_timed"), 0);
  EXPECT_EQ(again.kernels[0].config, plan.kernels[0].config);
}

TEST_F(Autotune, ABadLookupTableIsAnErrorNamingTheVariable) {
  std::string path = write_table(R"({"not-a-hash": "VEC=128"})");
  try {
    LookupTable::from_environment();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KILN_AUTOTUNE_LOOKUP_TABLE=" + path), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("not a kernel tuning hash"), std::string::npos)
        << e.what();
  }
  setenv("KILN_AUTOTUNE_LOOKUP_TABLE", "/nonexistent/table.json", 1);
  EXPECT_THROW(LookupTable::from_environment(), Error);
}

TEST_F(Autotune, ACrashingBenchmarkKeepsTheDefaultConfig) {
  setenv("KILN_INJECT_FAULT", "benchmark_crash", 1);  // read by the benchmark worker
  shutdown_compile_workers();                         // so that a fresh one reads it
  Graph g = sin_cos_graph();
  CompiledPlan plan = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
  auto before = stats();
  std::vector<TuneReport> reports = tune(plan, setup_here(g));
  unsetenv("KILN_INJECT_FAULT");
  shutdown_compile_workers();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].tuning, "default");
  EXPECT_NE(reports[0].error.find("SIGABRT"), std::string::npos) << reports[0].error;
  EXPECT_EQ(plan.kernels[0].config, plan.kernels[0].space.defaults);
  EXPECT_EQ(delta(before, "autotune.failures"), 1);
}

Tensor mm_relu(const Tensor& x, const Tensor& y) { return relu(matmul(x, y)); }
Tensor linear_gelu(const Tensor& x, const Tensor& w) { return gelu(linear(x, w)); }

// max_autotune: each matmul becomes a GEMM template kernel, tuned between the BLAS call
// and generated tiles; with the lookup table forcing the tiled loops (IMPL=1), both forms
// of B (as is, and linear's transposed weight) still match eager.
TEST_F(Autotune, MaxAutotuneGemmTemplatesMatchEager) {
  for (int forced : {-1, 1}) {
    for (bool transposed : {false, true}) {
      // linear's input is 3-D: its leading dims are the template's rows.
      Tensor x = transposed ? randn({3, 23, 130}) : randn({67, 130});
      Tensor y = transposed ? randn({45, 130}) : randn({130, 45});
      auto fn = transposed ? linear_gelu : mm_relu;
      Graph g =
          traced("gemm", {x, y}, [&](const std::vector<Tensor>& in) { return fn(in[0], in[1]); });
      CompiledPlan plan = build_plan(g, toolchain_for(Tier::optimized, "gcc"));
      add_gemm_templates(plan, toolchain_for(Tier::optimized, "gcc"));
      auto tem = std::find_if(plan.kernels.begin(), plan.kernels.end(), [](const KernelLaunch& k) {
        return k.name.rfind("cpp_tem_fused_mm_", 0) == 0;
      });
      ASSERT_NE(tem, plan.kernels.end());
      if (forced >= 0) {
        write_table(fmt::format(R"({{"{}": "IMPL={},BM=8,BN=32,BK=64"}})",
                                tuning_hash(*tem, g.size_hints), forced));
      } else {
        unsetenv("KILN_AUTOTUNE_LOOKUP_TABLE");
      }
      CompileOptions o;
      o.mode = CompileMode::InProcess;
      o.autotune = true;
      o.max_autotune = true;
      o.coordinate_descent = forced < 0;
      o.name = fmt::format("gemm_{}_{}", forced, transposed);
      auto f = compile(fn, o);
      EXPECT_EQ(compare_tensors(f(x, y), fn(x, y), 1e-4, 1e-4), "") << o.name;
      std::vector<KernelInfo> kernels = f.kernels();
      auto info = std::find_if(kernels.begin(), kernels.end(), [](const KernelInfo& k) {
        return k.name.rfind("cpp_tem_fused_mm_", 0) == 0;
      });
      ASSERT_NE(info, kernels.end()) << o.name;
      if (forced >= 0) {
        EXPECT_EQ(info->tuning, "lookup_table");
        EXPECT_NE(info->config.find("IMPL=1"), std::string::npos) << info->config;
      } else {
        EXPECT_EQ(info->tuning, "benchmarked");
      }
      EXPECT_NE(f.build_options().find("max_autotune=on"), std::string::npos);
    }
  }
}

TEST(BenchmarkWorker, CompileWorkersRefuseBenchmarkJobs) {
  BenchmarkRequest request;
  request.object = "not an object";
  request.kernels = {"k"};
  request.buffers = {{DType::f32, 4}};
  std::future<Fields> reply =
      compile_pool(WorkerStart::Subprocess, 1).submit(benchmark_job(request, "misrouted"));
  try {
    reply.get();
    FAIL() << "a compile worker ran a benchmark";
  } catch (const WorkerError& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected benchmark message"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kiln::testing
