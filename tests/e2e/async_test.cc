// The background modes with real workers: Async answers at once from the eager
// interpreter and switches to compiled code when it lands; Progressive waits for the fast
// stage and moves on to the optimized one; AsyncProgressive passes through eager → fast →
// optimized in order; a failed background compile keeps the calls answering and is
// reported once.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>

#include "kiln/kiln.h"
#include "support/compare.h"
#include "support/modes.h"

namespace kiln::testing {
namespace {

Tensor chained_adds(const Tensor& x) {
  Tensor t = x;
  for (int i = 0; i < 500; ++i) t = t + static_cast<float>(i % 7) * 0.001f;
  return t;
}

int64_t delta(std::map<std::string, int64_t>& before, const char* name) {
  return stats()[name] - before[name];
}

// Calls `f` until `done` says so (or a generous deadline passes), checking every result.
template <class F, class Want, class Done>
void call_until(F& f, const std::vector<Tensor>& inputs, Want want, Done done,
                std::vector<std::string>* stages = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  Tensor expected = want(inputs);
  while (!done()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the background compile never landed";
    Tensor got = f(inputs[0], inputs.size() > 1 ? inputs[1] : inputs[0]);
    ASSERT_EQ(compare_tensors(got, expected, 1e-4, 1e-4), "");
    if (stages && (stages->empty() || stages->back() != f.stages().at(0)))
      stages->push_back(f.stages().at(0));
  }
}

class AsyncMode : public ::testing::TestWithParam<WorkerStart> {};

TEST_P(AsyncMode, AnswersEagerlyThenSwitchesToCompiledCode) {
  ModeConfig config{CompileMode::Async, GetParam(), "async"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile([](const Tensor& x, const Tensor&) { return chained_adds(x); },
                   config.options("adds"));
  Tensor x = randn({100, 100});
  call_until(
      f, {x}, [](const std::vector<Tensor>& in) { return chained_adds(in[0]); },
      [&] { return delta(before, "async.compiled_runs") >= 2; });
  EXPECT_GT(delta(before, "async.eager_runs"), 0);
  EXPECT_EQ(delta(before, "async.bg_started"), 1);
  EXPECT_EQ(delta(before, "async.bg_finished"), 1);
  EXPECT_EQ(f.stages(), std::vector<std::string>{"optimized"});
  EXPECT_TRUE(f.compile_errors().empty());
}

INSTANTIATE_TEST_SUITE_P(Starts, AsyncMode,
                         ::testing::Values(WorkerStart::Subprocess, WorkerStart::Fork,
                                           WorkerStart::Spawn),
                         [](const ::testing::TestParamInfo<WorkerStart>& info) {
                           return std::string(worker_start_name(info.param));
                         });

TEST(AsyncFailure, KeepsAnsweringEagerlyAndReportsOnce) {
  setenv("KILN_INJECT_FAULT", "compile_error", 1);  // read by the workers this test starts
  ModeConfig config{CompileMode::Async, WorkerStart::Subprocess, "async"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile([](const Tensor& x, const Tensor&) { return chained_adds(x); },
                   config.options("adds"));
  Tensor x = randn({100, 100});
  ::testing::internal::CaptureStderr();
  call_until(
      f, {x}, [](const std::vector<Tensor>& in) { return chained_adds(in[0]); },
      [&] { return delta(before, "async.bg_finished") >= 1; });
  for (int i = 0; i < 5; ++i) EXPECT_EQ(compare_tensors(f(x, x), chained_adds(x), 1e-4, 1e-4), "");
  std::string err = ::testing::internal::GetCapturedStderr();
  unsetenv("KILN_INJECT_FAULT");
  EXPECT_EQ(delta(before, "async.compiled_runs"), 0);
  EXPECT_EQ(delta(before, "async.bg_failed"), 1);
  ASSERT_EQ(f.compile_errors().size(), 1u);
  EXPECT_NE(f.compile_errors()[0].find("injected fault"), std::string::npos)
      << f.compile_errors()[0];
  EXPECT_NE(f.compile_errors()[0].find("failed to compile"), std::string::npos)
      << f.compile_errors()[0];
  size_t first = err.find("background compile of graph adds");
  EXPECT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find("background compile of graph adds", first + 1), std::string::npos)
      << "reported twice:\n"
      << err;
  EXPECT_EQ(f.stages(), std::vector<std::string>{"eager"});
}

Tensor mm_relu(const Tensor& x, const Tensor& y) { return relu(matmul(x, y)); }

TEST(Progressive, WaitsForFastThenRunsOptimized) {
  ModeConfig config{CompileMode::Progressive, WorkerStart::Subprocess, "progressive"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile(mm_relu, config.options("mm_relu"));
  Tensor x = randn({64, 48}), y = randn({48, 32});
  std::vector<std::string> stages;
  call_until(
      f, {x, y}, [](const std::vector<Tensor>& in) { return mm_relu(in[0], in[1]); },
      [&] { return delta(before, "progressive.optimized_runs") >= 4; }, &stages);
  EXPECT_GT(delta(before, "progressive.fast_runs"), 0);
  EXPECT_EQ(delta(before, "async.eager_runs"), 0) << "Progressive waits for its first stage";
  EXPECT_EQ(stages, (std::vector<std::string>{"fast", "optimized"}));
  // The final stage records that it was autotuned, and its relu kernel was benchmarked.
  EXPECT_NE(f.build_options().find("tier=optimized"), std::string::npos) << f.build_options();
  EXPECT_NE(f.build_options().find("autotune=on"), std::string::npos) << f.build_options();
  std::vector<KernelInfo> kernels = f.kernels();
  ASSERT_EQ(kernels.size(), 1u);
  EXPECT_EQ(kernels[0].tuning, "benchmarked") << kernels[0].name;
  EXPECT_FALSE(kernels[0].config.empty());
  EXPECT_EQ(delta(before, "autotune.runs"), 1);
}

TEST(AsyncProgressive, PassesThroughEagerFastOptimizedInOrder) {
  ModeConfig config{CompileMode::AsyncProgressive, WorkerStart::Subprocess, "async_progressive"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile(mm_relu, config.options("mm_relu"));
  Tensor x = randn({64, 48}), y = randn({48, 32});
  std::vector<std::string> stages;
  call_until(
      f, {x, y}, [](const std::vector<Tensor>& in) { return mm_relu(in[0], in[1]); },
      [&] { return delta(before, "progressive.optimized_runs") >= 2; }, &stages);
  ASSERT_FALSE(stages.empty());
  EXPECT_EQ(stages.front(), "eager");
  EXPECT_EQ(stages.back(), "optimized");
  // In order: no stage comes back after a later one took over.
  std::vector<std::string> order = {"eager", "fast", "optimized"};
  size_t at = 0;
  for (const std::string& s : stages) {
    while (at < order.size() && order[at] != s) ++at;
    EXPECT_LT(at, order.size()) << "stage " << s << " came out of order";
  }
  EXPECT_EQ(delta(before, "async.bg_started"), 2);
}

TEST(AsyncProgressive, WaitForStagesBlocksUntilTheLastStageLands) {
  ModeConfig config{CompileMode::AsyncProgressive, WorkerStart::Subprocess, "async_progressive"};
  ModeRun run(config);
  auto f = compile(mm_relu, config.options("mm_relu_wait"));
  Tensor x = randn({64, 48}), y = randn({48, 32});
  EXPECT_TRUE(f.wait_for_stages(0)) << "nothing traced yet: nothing to wait for";
  EXPECT_EQ(compare_tensors(f(x, y), mm_relu(x, y), 1e-4, 1e-4), "");
  // Two gcc compiles and an autotune cannot all have landed by the first call's return.
  EXPECT_FALSE(f.wait_for_stages(0));
  EXPECT_TRUE(f.wait_for_stages(300));
  EXPECT_EQ(f.stages(), std::vector<std::string>{"optimized"});
  EXPECT_EQ(compare_tensors(f(x, y), mm_relu(x, y), 1e-4, 1e-4), "");
  EXPECT_TRUE(f.compile_errors().empty());
}

TEST(AsyncFailure, WaitForStagesReturnsOnceTheFailedStageSettled) {
  setenv("KILN_INJECT_FAULT", "compile_error", 1);
  ModeConfig config{CompileMode::Async, WorkerStart::Subprocess, "async"};
  ModeRun run(config);
  auto f = compile([](const Tensor& x, const Tensor&) { return chained_adds(x); },
                   config.options("adds_wait"));
  Tensor x = randn({100, 100});
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(compare_tensors(f(x, x), chained_adds(x), 1e-4, 1e-4), "");
  EXPECT_TRUE(f.wait_for_stages(300));
  ::testing::internal::GetCapturedStderr();
  unsetenv("KILN_INJECT_FAULT");
  EXPECT_EQ(f.stages(), std::vector<std::string>{"eager"});
  EXPECT_EQ(f.compile_errors().size(), 1u);
}

TEST(Staged, AWarmCacheMakesTheFirstCallCompiled) {
  ModeConfig config{CompileMode::Async, WorkerStart::Subprocess, "async"};
  ModeRun run(config);
  Tensor x = randn({100, 100});
  {
    CompileOptions o = config.options("adds");
    o.mode = CompileMode::Subprocess;
    compile([](const Tensor& t) { return chained_adds(t); }, o)(x);  // fills the cache
  }
  auto before = stats();
  auto f = compile([](const Tensor& t) { return chained_adds(t); }, config.options("adds"));
  EXPECT_EQ(compare_tensors(f(x), chained_adds(x), 1e-4, 1e-4), "");
  EXPECT_EQ(delta(before, "async.eager_runs"), 0);
  EXPECT_EQ(delta(before, "async.compiled_runs"), 1);
}

}  // namespace
}  // namespace kiln::testing
