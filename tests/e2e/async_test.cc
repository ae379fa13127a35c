// The background modes with real workers: Async answers at once from the eager
// interpreter and switches to compiled code when it lands and measures faster; Progressive
// waits for the fast stage and moves on to the optimized one; AsyncProgressive passes
// through eager → fast → optimized in order; a stage slower than the one serving the calls
// (KILN_INJECT_FAULT=slow_stage) never takes over; a failed background compile keeps the
// calls answering and is reported once.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "driver/stage_trial.h"
#include "kiln/kiln.h"
#include "support/compare.h"
#include "support/fault_injection.h"
#include "support/modes.h"

namespace kiln::testing {
namespace {

Tensor chained_adds(const Tensor& x) {
  Tensor t = x;
  for (int i = 0; i < 500; ++i) t = t + static_cast<float>(i % 7) * 0.001f;
  return t;
}

constexpr double kSlowStageSecondsForTests = kSlowStageSeconds;

// The calls of a test that expects a compiled stage to beat eager run single-threaded: a
// kernel tuned to two threads on an idle machine waits on its descheduled second thread at
// every OpenMP barrier when another process holds the other core (CI runs tests two at a
// time on two cores), and then loses to eager by measurement, correctly but not what the
// test is about.
class OneThread {
 public:
  OneThread() : before_(get_num_threads()) { set_num_threads(1); }
  ~OneThread() { set_num_threads(before_); }

 private:
  int before_;
};

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

// Every stage in `f`'s history has been decided (none still on trial), and so has
// AsyncProgressive's final recheck against eager where there is one (one more entry).
template <class F>
bool all_decided(const F& f, size_t stages) {
  std::vector<std::vector<StageDecision>> h = f.stage_history();
  if (h.empty() || h[0].size() < stages) return false;
  for (const StageDecision& d : h[0])
    if (d.outcome == "on_trial") return false;
  return true;
}

// Sets an environment variable for one test. The workers it starts read it too and keep
// it: they are stopped at the end, so that no later test gets a worker with the fault.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* value) : name(n) { setenv(n, value, 1); }
  ~ScopedEnv() {
    unsetenv(name.c_str());
    shutdown_compile_workers();
  }
};

class AsyncMode : public ::testing::TestWithParam<WorkerStart> {};

TEST_P(AsyncMode, AnswersEagerlyThenSwitchesToCompiledCode) {
  OneThread one;
  ModeConfig config{CompileMode::Async, GetParam(), "async"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile([](const Tensor& x, const Tensor&) { return chained_adds(x); },
                   config.options("adds"));
  Tensor x = randn({100, 100});
  call_until(
      f, {x}, [](const std::vector<Tensor>& in) { return chained_adds(in[0]); },
      [&] { return !f.stages().empty() && f.stages()[0] == "optimized"; });
  EXPECT_GT(delta(before, "async.eager_runs"), 0);
  EXPECT_GT(delta(before, "async.compiled_runs"), 0);
  EXPECT_EQ(delta(before, "async.bg_started"), 1);
  EXPECT_EQ(delta(before, "async.bg_finished"), 1);
  EXPECT_EQ(f.stages(), std::vector<std::string>{"optimized"});
  EXPECT_TRUE(f.compile_errors().empty());
  // 500 fused adds against 500 eager passes: measured faster, against eager, and recorded.
  ASSERT_EQ(f.stage_history().size(), 1u);
  ASSERT_EQ(f.stage_history()[0].size(), 1u);
  const StageDecision d = f.stage_history()[0][0];
  EXPECT_EQ(d.stage, "optimized");
  EXPECT_EQ(d.outcome, "promoted");
  EXPECT_EQ(d.against, "eager");
  EXPECT_GE(d.calls, 1);
  EXPECT_LT(d.seconds, d.against_seconds);
  EXPECT_EQ(delta(before, "progressive.promoted"), 1);
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
  shutdown_compile_workers();  // they keep the fault in their environment
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
  ASSERT_EQ(f.stage_history().at(0).size(), 1u);
  EXPECT_EQ(f.stage_history()[0][0].outcome, "failed");
}

Tensor mm_relu(const Tensor& x, const Tensor& y) { return relu(matmul(x, y)); }

// The fast stage is slowed on purpose (two eager runs and 50 ms a call), so that the optimized one
// measures faster whatever the machine's noise.
TEST(Progressive, WaitsForFastThenRunsOptimized) {
  ScopedEnv slow("KILN_INJECT_FAULT", "slow_stage:fast");
  ModeConfig config{CompileMode::Progressive, WorkerStart::Subprocess, "progressive"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile(mm_relu, config.options("mm_relu"));
  Tensor x = randn({64, 48}), y = randn({48, 32});
  std::vector<std::string> stages;
  call_until(
      f, {x, y}, [](const std::vector<Tensor>& in) { return mm_relu(in[0], in[1]); },
      [&] { return delta(before, "progressive.optimized_runs") >= 4 && all_decided(f, 2); },
      &stages);
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
  // Progressive's first stage serves from the first call; the next one was measured.
  std::vector<StageDecision> h = f.stage_history().at(0);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].stage, "fast");
  EXPECT_EQ(h[0].outcome, "promoted");
  EXPECT_EQ(h[0].against, "");
  EXPECT_EQ(h[1].stage, "optimized");
  EXPECT_EQ(h[1].outcome, "promoted");
  EXPECT_EQ(h[1].against, "fast");
  EXPECT_GT(h[1].against_seconds, kSlowStageSecondsForTests);
}

// Which stages take over depends on what they measure; they take over in order, and the one
// serving at the end is the last promoted (500 fused adds beat 500 eager passes: one is).
TEST(AsyncProgressive, PassesThroughEagerFastOptimizedInOrder) {
  OneThread one;
  ModeConfig config{CompileMode::AsyncProgressive, WorkerStart::Subprocess, "async_progressive"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile([](const Tensor& x, const Tensor&) { return chained_adds(x); },
                   config.options("adds_in_order"));
  Tensor x = randn({100, 100});
  std::vector<std::string> stages;
  call_until(
      f, {x}, [](const std::vector<Tensor>& in) { return chained_adds(in[0]); },
      [&] { return all_decided(f, 2); }, &stages);
  ASSERT_FALSE(stages.empty());
  EXPECT_EQ(stages.front(), "eager");
  std::string last_promoted;
  const std::vector<StageDecision> history = f.stage_history().at(0);
  for (const StageDecision& d : history) {
    EXPECT_TRUE(d.outcome == "promoted" || d.outcome == "not_promoted") << d.outcome;
    if (d.outcome == "promoted") {
      EXPECT_LT(d.seconds, d.against_seconds) << d.stage;
      last_promoted = d.stage;
    }
  }
  EXPECT_NE(last_promoted, "");
  EXPECT_EQ(stages.back(), last_promoted);
  // In order: no stage comes back after a later one took over.
  std::vector<std::string> order = {"eager", "fast", "optimized"};
  size_t at = 0;
  for (const std::string& s : stages) {
    while (at < order.size() && order[at] != s) ++at;
    EXPECT_LT(at, order.size()) << "stage " << s << " came out of order";
  }
  EXPECT_EQ(delta(before, "async.bg_started"), 2);
}

// A stage slower than eager (the fast one, slowed on purpose) is measured, refused
// and recorded, and never serves a call as the stage in use; the optimized stage still
// comes and takes over. Every call's result is checked on the way.
TEST(AsyncProgressive, ASlowerStageIsNotPromotedAndTheNextStillComes) {
  OneThread one;
  ScopedEnv slow("KILN_INJECT_FAULT", "slow_stage:fast");
  const std::string trace_dir = ::testing::TempDir() + "kiln_stage_trace";
  std::filesystem::remove_all(trace_dir);
  ScopedEnv trace("KILN_TRACE", trace_dir.c_str());
  ScopedEnv logs("KILN_LOGS", "stages");
  ModeConfig config{CompileMode::AsyncProgressive, WorkerStart::Subprocess, "async_progressive"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile([](const Tensor& x, const Tensor&) { return chained_adds(x); },
                   config.options("adds_slow_fast"));
  Tensor x = randn({100, 100});
  std::vector<std::string> stages;
  ::testing::internal::CaptureStderr();
  call_until(
      f, {x}, [](const std::vector<Tensor>& in) { return chained_adds(in[0]); },
      [&] { return all_decided(f, 2); }, &stages);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(stages, (std::vector<std::string>{"eager", "optimized"})) << err;
  std::vector<StageDecision> h = f.stage_history().at(0);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].stage, "fast");
  EXPECT_EQ(h[0].outcome, "not_promoted");
  EXPECT_EQ(h[0].against, "eager");
  EXPECT_GT(h[0].seconds, kSlowStageSecondsForTests);
  EXPECT_LT(h[0].against_seconds, h[0].seconds);
  EXPECT_EQ(h[1].stage, "optimized");
  EXPECT_EQ(h[1].outcome, "promoted");
  EXPECT_EQ(h[1].against, "eager") << "measured against the stage in use, not the refused one";
  EXPECT_EQ(f.stages(), std::vector<std::string>{"optimized"});
  EXPECT_EQ(delta(before, "progressive.not_promoted"), 1);
  EXPECT_EQ(delta(before, "progressive.promoted"), 1);
  EXPECT_EQ(delta(before, "progressive.eager_rechecks"), 0)
      << "the optimized stage beat eager itself, on every thread, after the last compile";
  EXPECT_LE(delta(before, "progressive.fast_runs"), StageTrial::kMaxCalls + 1)
      << "only its trial's calls";
  // The log says so, and the structured trace records each decision.
  EXPECT_NE(err.find("[kiln:stages] graph adds_slow_fast: stage fast not_promoted vs eager"),
            std::string::npos)
      << err;
  int decisions = 0;
  for (const auto& file : std::filesystem::directory_iterator(trace_dir)) {
    std::ifstream in(file.path());
    for (std::string line; std::getline(in, line);)
      if (line.find("\"stage_decision\"") != std::string::npos &&
          line.find("adds_slow_fast") != std::string::npos &&
          line.find("\"on_trial\"") == std::string::npos)
        ++decisions;
  }
  EXPECT_EQ(decisions, 2);
  std::filesystem::remove_all(trace_dir);
}

// A compiled stage that serves once the last stage has decided, without having beaten eager
// on every thread (here the optimized stage, promoted over the fast one), is timed against eager
// once more; eager serves again when it is faster. KILN_INJECT_FAULT=slow_after_trial makes each
// stage slow once a trial promotes it: the fast stage beats eager while the optimized one
// compiles, the optimized one then beats the slowed fast one, and the recheck finds it slower
// than eager.
TEST(AsyncProgressive, TheStageServingAtTheEndIsRecheckedAgainstEager) {
  OneThread one;
  ScopedEnv slow("KILN_INJECT_FAULT", "slow_after_trial");
  ScopedEnv logs("KILN_LOGS", "stages");
  ModeConfig config{CompileMode::AsyncProgressive, WorkerStart::Subprocess, "async_progressive"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile([](const Tensor& x, const Tensor&) { return chained_adds(x); },
                   config.options("adds_rechecked"));
  Tensor x = randn({100, 100});
  std::vector<std::string> stages;
  ::testing::internal::CaptureStderr();
  call_until(
      f, {x}, [](const std::vector<Tensor>& in) { return chained_adds(in[0]); },
      [&] { return all_decided(f, 3); }, &stages);
  std::string err = ::testing::internal::GetCapturedStderr();
  std::vector<StageDecision> h = f.stage_history().at(0);
  ASSERT_EQ(h.size(), 3u) << err;
  EXPECT_EQ(h[0].stage, "fast");
  EXPECT_EQ(h[0].outcome, "promoted");
  EXPECT_EQ(h[1].stage, "optimized");
  EXPECT_EQ(h[1].outcome, "promoted");
  EXPECT_EQ(h[1].against, "fast");
  EXPECT_EQ(h[2].stage, "eager");
  EXPECT_EQ(h[2].outcome, "promoted");
  EXPECT_EQ(h[2].against, "optimized");
  EXPECT_GT(h[2].against_seconds, kSlowStageSecondsForTests);
  EXPECT_LT(h[2].seconds, h[2].against_seconds);
  EXPECT_EQ(stages, (std::vector<std::string>{"eager", "fast", "optimized", "eager"}));
  EXPECT_EQ(f.stages(), std::vector<std::string>{"eager"});
  EXPECT_TRUE(f.kernels().empty()) << "eager serves: no compiled kernels in use";
  EXPECT_EQ(delta(before, "progressive.eager_rechecks"), 1);
  EXPECT_NE(err.find("stage eager promoted vs optimized"), std::string::npos) << err;
  // Decided once: the calls after it stay with eager and no further trial starts.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(compare_tensors(f(x, x), chained_adds(x), 1e-4, 1e-4), "");
  EXPECT_EQ(f.stage_history().at(0).size(), 3u);
}

// Both stages land after the first call (the test waits for them, making no calls): the fast
// one goes on trial, and the optimized one waits for that trial's verdict instead of cutting it
// short; then it is measured against the stage in use. Which compile finishes when does not change
// the history.
TEST(AsyncProgressive, AStageThatLandsMidTrialWaitsForTheVerdict) {
  OneThread one;
  ScopedEnv slow("KILN_INJECT_FAULT", "slow_stage:fast");
  ScopedEnv logs("KILN_LOGS", "stages");
  ModeConfig config{CompileMode::AsyncProgressive, WorkerStart::Subprocess, "async_progressive"};
  ModeRun run(config);
  auto f = compile([](const Tensor& x, const Tensor&) { return chained_adds(x); },
                   config.options("adds_landed_mid_trial"));
  Tensor x = randn({100, 100});
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(compare_tensors(f(x, x), chained_adds(x), 1e-4, 1e-4), "");
  ASSERT_TRUE(f.wait_for_stages(120));
  std::vector<StageDecision> h = f.stage_history().at(0);
  ASSERT_EQ(h.size(), 1u) << "the optimized stage is not on trial yet";
  EXPECT_EQ(h[0].stage, "fast");
  EXPECT_EQ(h[0].outcome, "on_trial");
  call_until(
      f, {x}, [](const std::vector<Tensor>& in) { return chained_adds(in[0]); },
      [&] { return all_decided(f, 2); });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("stage optimized landed; waits for the trial of fast"), std::string::npos)
      << err;
  h = f.stage_history().at(0);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].outcome, "not_promoted");
  EXPECT_GT(h[0].calls, 0);
  EXPECT_EQ(h[1].stage, "optimized");
  EXPECT_EQ(h[1].against, "eager");
  EXPECT_NE(h[1].outcome, "on_trial");
}

// Async with its single stage slowed: eager stays in use.
TEST(Async, EagerStaysInUseWhenTheStageIsSlower) {
  ScopedEnv slow("KILN_INJECT_FAULT", "slow_stage:optimized");
  ModeConfig config{CompileMode::Async, WorkerStart::Subprocess, "async"};
  ModeRun run(config);
  auto f = compile([](const Tensor& x, const Tensor&) { return chained_adds(x); },
                   config.options("adds_slow_optimized"));
  Tensor x = randn({100, 100});
  std::vector<std::string> stages;
  call_until(
      f, {x}, [](const std::vector<Tensor>& in) { return chained_adds(in[0]); },
      [&] { return all_decided(f, 1); }, &stages);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(compare_tensors(f(x, x), chained_adds(x), 1e-4, 1e-4), "");
  EXPECT_EQ(stages, std::vector<std::string>{"eager"});
  EXPECT_EQ(f.stage_history().at(0).at(0).outcome, "not_promoted");
  EXPECT_TRUE(f.kernels().empty()) << "eager serves: no compiled kernels in use";
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
  // Both landed: the fast one is on trial, the optimized one waits for its verdict; the
  // calls after it decide both trials (and the recheck against eager, if there is one).
  ASSERT_EQ(f.stage_history().at(0).size(), 1u);
  EXPECT_EQ(f.stage_history()[0][0].stage, "fast");
  for (int i = 0; i < 3 * (2 * StageTrial::kMaxCalls + 1) && !all_decided(f, 2); ++i)
    EXPECT_EQ(compare_tensors(f(x, y), mm_relu(x, y), 1e-4, 1e-4), "");
  EXPECT_TRUE(all_decided(f, 2));
  std::string serving = "eager";
  const std::vector<StageDecision> history = f.stage_history().at(0);
  for (const StageDecision& d : history)
    if (d.outcome == "promoted") serving = d.stage;
  EXPECT_EQ(f.stages(), std::vector<std::string>{serving});
  EXPECT_TRUE(f.compile_errors().empty());
}

// While a stage compiles, a call runs on a thread fewer than set_num_threads allows, leaving
// the compile a core (a compiler on the calls' cores stalls their parallel regions);
// the caller's count is restored after each call, and calls after the last stage settled
// run on every thread again.
TEST(AsyncProgressive, CallsLeaveACoreToTheCompileUntilTheLastStageSettles) {
  const int before_threads = get_num_threads();
  set_num_threads(2);
  ModeConfig config{CompileMode::AsyncProgressive, WorkerStart::Subprocess, "async_progressive"};
  ModeRun run(config);
  auto f = compile(mm_relu, config.options("mm_relu_core"));
  Tensor x = randn({64, 48}), y = randn({48, 32});
  auto before = stats();
  EXPECT_EQ(compare_tensors(f(x, y), mm_relu(x, y), 1e-4, 1e-4), "");
  EXPECT_FALSE(f.wait_for_stages(0)) << "two gcc compiles and a tuning cannot have landed yet";
  EXPECT_EQ(delta(before, "async.runs_leaving_a_core"), 1);
  EXPECT_EQ(get_num_threads(), 2) << "the caller's thread count comes back after the call";
  ASSERT_TRUE(f.wait_for_stages(300));
  before = stats();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(compare_tensors(f(x, y), mm_relu(x, y), 1e-4, 1e-4), "");
  EXPECT_EQ(delta(before, "async.runs_leaving_a_core"), 0);
  // One thread is all a call has: it keeps it.
  set_num_threads(1);
  auto g = compile(mm_relu, config.options("mm_relu_core_one"));
  before = stats();
  EXPECT_EQ(compare_tensors(g(x, y), mm_relu(x, y), 1e-4, 1e-4), "");
  EXPECT_EQ(delta(before, "async.runs_leaving_a_core"), 0);
  EXPECT_EQ(get_num_threads(), 1);
  EXPECT_TRUE(g.wait_for_stages(300));
  set_num_threads(before_threads);
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
  shutdown_compile_workers();
  EXPECT_EQ(f.stages(), std::vector<std::string>{"eager"});
  EXPECT_EQ(f.compile_errors().size(), 1u);
  EXPECT_EQ(f.stage_history().at(0).at(0).outcome, "failed");
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
