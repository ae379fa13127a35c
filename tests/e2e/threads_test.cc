// Compiled kernels' parallel regions: a tuned thread count (THREADS) is an upper bound that
// set_num_threads lowers, as it lowers eager's. Seen through the threads of this process:
// OpenMP starts its pool at the first region of more than one thread, and each test runs in
// a process of its own.
#include <dirent.h>
#include <gtest/gtest.h>

#include "compile/toolchain.h"
#include "driver/object_store.h"
#include "driver/plan_builder.h"
#include "kiln/kiln.h"
#include "runtime/executable.h"
#include "support/compare.h"
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

TEST(Threads, SetNumThreadsBoundsATunedThreadCount) {
  set_num_threads(1);  // before anything runs a parallel region
  Tensor x = randn({1 << 20});
  Tracer tracer("threads", /*freeze_captured=*/false);
  std::vector<Tensor> in = tracer.add_inputs({x});
  Tensor out;
  {
    RecorderScope scope(&tracer);
    out = in[0].sin();
  }
  const Toolchain toolchain = toolchain_for(Tier::optimized, "gcc");
  CompiledPlan plan = build_plan(tracer.finish({out}).graph, toolchain);
  ASSERT_EQ(plan.kernels.size(), 1u);
  KernelConfig two = plan.kernels[0].config;
  two["THREADS"] = 2;
  two["GRAIN"] = 2048;
  ASSERT_TRUE(plan.kernels[0].space.admits(two));
  plan.kernels[0].config = two;
  assemble_units(plan, toolchain);
  auto object = compile_object_here(plan.units[0], toolchain, std::nullopt);
  std::unique_ptr<Executable> exe = make_native_executable(plan, {object});

  const int before = threads_of_this_process();
  EXPECT_EQ(compare_tensors(exe->run({x}).at(0), x.sin(), 1e-5, 1e-5), "");
  EXPECT_EQ(threads_of_this_process(), before) << "THREADS=2 ran on more than set_num_threads(1)";
  set_num_threads(2);
  EXPECT_EQ(compare_tensors(exe->run({x}).at(0), x.sin(), 1e-5, 1e-5), "");
  EXPECT_GT(threads_of_this_process(), before) << "the test sees no pool start at all";
}

}  // namespace
}  // namespace kiln::testing
