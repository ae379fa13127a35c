// The thread choice of a compiled CPU kernel (runtime/thread_choice.h) on given timings:
// which arm serves, when the other is probed, and that a loaded machine moves a kernel to
// one thread and an idle one moves it back. The e2e side, a kernel's tuned threads slowed on
// purpose, is in threads_test.cc.
#include "runtime/thread_choice.h"

#include <gtest/gtest.h>

#include <functional>

namespace kiln {
namespace {

using Arm = ThreadChoice::Arm;

// Runs `calls` calls, each arm taking what `seconds` says; counts the calls of each arm.
struct Counts {
  int threads = 0, serial = 0, probes = 0;
};
Counts run(ThreadChoice& choice, int calls, const std::function<double(Arm)>& seconds) {
  Counts c;
  for (int i = 0; i < calls; ++i) {
    ThreadChoice::Ticket t = choice.next();
    (t.arm == Arm::threads ? c.threads : c.serial) += 1;
    c.probes += t.probe;
    choice.record(t, seconds(t.arm));
  }
  return c;
}

TEST(ThreadChoice, TheTunedThreadsRunFirstThenBothArmsAreSampled) {
  ThreadChoice choice;
  EXPECT_EQ(choice.next().arm, Arm::threads);
  EXPECT_FALSE(choice.next().probe) << "nothing recorded yet: still the tuned arm";
  ThreadChoice fresh;
  run(fresh, 2 * ThreadChoice::kMinSamples, [](Arm a) { return a == Arm::threads ? 1e-4 : 4e-4; });
  EXPECT_EQ(fresh.samples(Arm::threads), ThreadChoice::kMinSamples);
  EXPECT_EQ(fresh.samples(Arm::serial), ThreadChoice::kMinSamples);
  EXPECT_EQ(fresh.serving(), Arm::threads);
}

TEST(ThreadChoice, ProbesOfASlowerArmStayUnderTheirShareOfTheTime) {
  ThreadChoice choice;
  // 16 threads pay 12x: a probe on one thread loses 11 calls' worth.
  Counts c = run(choice, 20000, [](Arm a) { return a == Arm::threads ? 1e-4 : 12e-4; });
  EXPECT_EQ(choice.serving(), Arm::threads);
  double lost = (c.serial - ThreadChoice::kMinSamples) * 11e-4;
  EXPECT_LT(lost, 2 * ThreadChoice::kProbeShare * c.threads * 1e-4) << c.serial << " probes";
  EXPECT_GT(c.serial, ThreadChoice::kMinSamples) << "the serial arm is still probed";
}

TEST(ThreadChoice, ALoadedMachineMovesTheKernelToOneThreadAndAnIdleOneBack) {
  ThreadChoice choice;
  run(choice, 200, [](Arm a) { return a == Arm::threads ? 1.75e-4 : 3.4e-4; });
  ASSERT_EQ(choice.serving(), Arm::threads);
  // Other processes take the cores: the parallel region waits for its threads.
  Counts loaded = run(choice, 50, [](Arm a) { return a == Arm::threads ? 3.4e-3 : 4e-4; });
  EXPECT_EQ(choice.serving(), Arm::serial);
  EXPECT_LE(loaded.threads, ThreadChoice::kWindow) << "moves once the median says so";
  // Load gone: the next probe of the threads, due once the serial calls have served 100x
  // what the stale 3.4 ms promised to lose (about 900 calls, 0.3 s), finds them paying, and
  // the probes that follow at once move the kernel back.
  int calls = 0;
  while (choice.serving() == Arm::serial && calls < 5000) {
    run(choice, 1, [](Arm a) { return a == Arm::threads ? 1.75e-4 : 3.4e-4; });
    ++calls;
  }
  EXPECT_EQ(choice.serving(), Arm::threads);
  EXPECT_LT(calls, 1000);
}

}  // namespace
}  // namespace kiln
