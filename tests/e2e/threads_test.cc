// Compiled kernels' parallel regions: a tuned thread count (THREADS) is an upper bound that
// set_num_threads lowers, as it lowers eager's. Seen through the threads of this process:
// OpenMP starts its pool at the first region of more than one thread, and each test runs in
// a process of its own. And a kernel whose tuned threads measure slower than one thread on
// live calls (KILN_INJECT_FAULT=slow_threads) moves to one thread (runtime/thread_choice.h).
#include <dirent.h>
#include <gtest/gtest.h>

#include <functional>

#include "codegen/c_emitter.h"
#include "compile/toolchain.h"
#include "driver/object_store.h"
#include "driver/plan_builder.h"
#include "kiln/kiln.h"
#include "runtime/executable.h"
#include "runtime/thread_choice.h"
#include "support/compare.h"
#include "support/env.h"
#include "trace/tracer.h"

namespace kiln::testing {
namespace {

int threads_of_this_process() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

// x.sin() compiled by the optimized tier with its one kernel tuned to THREADS=2.
std::unique_ptr<Executable> sin_on_two_threads(const Tensor& x) {
  Tracer tracer("threads", /*freeze_captured=*/false);
  std::vector<Tensor> in = tracer.add_inputs({x});
  Tensor out;
  {
    RecorderScope scope(&tracer);
    out = in[0].sin();
  }
  const Toolchain toolchain = toolchain_for(Tier::optimized, "gcc");
  CompiledPlan plan = build_plan(tracer.finish({out}).graph, toolchain);
  EXPECT_EQ(plan.kernels.size(), 1u);
  KernelConfig two = plan.kernels.at(0).config;
  two["THREADS"] = 2;
  two["GRAIN"] = 2048;
  EXPECT_TRUE(plan.kernels[0].space.admits(two));
  plan.kernels[0].config = two;
  assemble_units(plan, toolchain);
  auto object = compile_object_here(plan.units[0], toolchain, std::nullopt);
  return make_native_executable(plan, {object});
}

int64_t stat_named(const char* name) { return stats().at(name); }

// The GRAIN each kernel of fn(x, y) gets untuned.
std::vector<int64_t> default_grains(const std::function<Tensor(const Tensor&, const Tensor&)>& fn,
                                    const Shape& shape) {
  Tracer tracer("grains", /*freeze_captured=*/false);
  std::vector<Tensor> in = tracer.add_inputs({randn(shape), randn(shape)});
  Tensor out;
  {
    RecorderScope scope(&tracer);
    out = fn(in[0], in[1]);
  }
  CompiledPlan plan = build_plan(tracer.finish({out}).graph, toolchain_for(Tier::optimized, "gcc"));
  std::vector<int64_t> grains;
  for (const KernelLaunch& k : plan.kernels) {
    EXPECT_TRUE(k.space.admits(k.config)) << k.name;
    if (k.config.count("GRAIN")) grains.push_back(k.config.at("GRAIN"));
  }
  return grains;
}

// A parallel region needs about the same work whatever the kernel does: an add of two
// tensors keeps the old 32768 elements, 500 fused adds go parallel at a few hundred, sin and
// cos (vector math calls) in between.
TEST(Threads, TheDefaultGrainFollowsTheWorkPerElement) {
  if (usable_cpus() < 2) GTEST_SKIP() << "one CPU: no GRAIN field";
  EXPECT_EQ(default_grains([](const Tensor& x, const Tensor& y) { return x + y; }, {1 << 16}),
            std::vector<int64_t>{kDefaultGrain});
  std::vector<int64_t> chain = default_grains(
      [](const Tensor& x, const Tensor& y) {
        Tensor t = x;
        for (int i = 0; i < 500; ++i) t = t + y;
        return t;
      },
      {100, 100});
  ASSERT_FALSE(chain.empty());
  for (int64_t g : chain) EXPECT_LE(g, 512);
  std::vector<int64_t> sincos = default_grains(
      [](const Tensor& x, const Tensor& y) { return (x + y).sin().cos(); }, {1 << 14});
  ASSERT_EQ(sincos.size(), 1u);
  EXPECT_LT(sincos[0], kDefaultGrain);
  EXPECT_GT(sincos[0], chain[0]);
}

TEST(Threads, SetNumThreadsBoundsATunedThreadCount) {
  set_num_threads(1);  // before anything runs a parallel region
  Tensor x = randn({1 << 20});
  std::unique_ptr<Executable> exe = sin_on_two_threads(x);
  const int before = threads_of_this_process();
  EXPECT_EQ(compare_tensors(exe->run({x}).at(0), x.sin(), 1e-5, 1e-5), "");
  EXPECT_EQ(threads_of_this_process(), before) << "THREADS=2 ran on more than set_num_threads(1)";
  set_num_threads(2);
  EXPECT_EQ(compare_tensors(exe->run({x}).at(0), x.sin(), 1e-5, 1e-5), "");
  EXPECT_GT(threads_of_this_process(), before) << "the test sees no pool start at all";
}

TEST(Threads, AKernelWhoseThreadsMeasureSlowerMovesToOneThread) {
  set_num_threads(2);
  Tensor x = randn({1 << 16});
  std::unique_ptr<Executable> exe;
  {
    ScopedEnv slow("KILN_INJECT_FAULT", "slow_threads");  // read when the executable is made
    exe = sin_on_two_threads(x);
  }
  const int64_t serial_before = stat_named("threads.serial_runs");
  const int calls = 40;
  for (int i = 0; i < calls; ++i)
    ASSERT_EQ(compare_tensors(exe->run({x}).at(0), x.sin(), 1e-5, 1e-5), "") << "call " << i;
  const int64_t serial = stat_named("threads.serial_runs") - serial_before;
  // The first calls sample both arms; once the median says so, one thread serves.
  EXPECT_GE(serial, calls - 2 * ThreadChoice::kWindow) << "2 ms slower on its threads";
  EXPECT_GT(stat_named("threads.probes"), 0);
  EXPECT_EQ(get_num_threads(), 2) << "the serial arm restores the caller's thread count";
}

// Below its GRAIN a kernel of constant size never forks: nothing to choose, nothing timed.
TEST(Threads, AKernelBelowItsGrainIsNotTimed) {
  set_num_threads(2);
  Tensor x = randn({1000});  // GRAIN=2048
  std::unique_ptr<Executable> exe;
  {
    ScopedEnv slow("KILN_INJECT_FAULT", "slow_threads");
    exe = sin_on_two_threads(x);
  }
  const int64_t serial_before = stat_named("threads.serial_runs");
  const int64_t probes_before = stat_named("threads.probes");
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(compare_tensors(exe->run({x}).at(0), x.sin(), 1e-5, 1e-5), "") << "call " << i;
  EXPECT_EQ(stat_named("threads.serial_runs"), serial_before);
  EXPECT_EQ(stat_named("threads.probes"), probes_before);
}

TEST(Threads, WithoutTheFaultTheFasterArmServesAndTheResultsMatch) {
  set_num_threads(2);
  Tensor x = randn({1 << 20});
  std::unique_ptr<Executable> exe = sin_on_two_threads(x);
  const int64_t serial_before = stat_named("threads.serial_runs");
  const Tensor want = x.sin();
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(compare_tensors(exe->run({x}).at(0), want, 1e-5, 1e-5), "") << "call " << i;
  // Which arm serves is the machine's business; the serial arm was sampled, never everything.
  const int64_t serial = stat_named("threads.serial_runs") - serial_before;
  EXPECT_GE(serial, ThreadChoice::kMinSamples);
  set_num_threads(1);
  const int64_t one_before = stat_named("threads.serial_runs");
  exe->run({x});
  EXPECT_EQ(stat_named("threads.serial_runs"), one_before) << "one thread: nothing to choose";
}

}  // namespace
}  // namespace kiln::testing
