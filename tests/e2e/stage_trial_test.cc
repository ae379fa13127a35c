// The promotion policy of the background stages (driver/stage_trial.h) on given timings: who
// serves each call of a trial, and when the timings decide. The e2e side, with real stages
// and a stage slowed on purpose, is in async_test.cc.
#include "driver/stage_trial.h"

#include <gtest/gtest.h>

#include <iterator>

namespace kiln {
namespace {

using Arm = StageTrial::Arm;

// Serves `calls` calls, the candidate taking `candidate` seconds and the incumbent
// `incumbent`, until the trial decides; returns the decision and counts the calls.
std::optional<bool> run_trial(StageTrial& trial, double candidate, double incumbent, int* calls) {
  *calls = 0;
  while (!trial.decision() && *calls < 1000) {
    StageTrial::Ticket t = trial.next();
    trial.record(t, t.arm == Arm::candidate ? candidate : incumbent);
    ++*calls;
  }
  return trial.decision();
}

TEST(StageTrial, TheCandidateWarmsUpThenTheArmsAlternate) {
  StageTrial trial;
  StageTrial::Ticket first = trial.next();
  EXPECT_EQ(first.arm, Arm::candidate);
  EXPECT_FALSE(first.timed) << "the first call of a new stage pays its page faults";
  for (int i = 0; i < 6; ++i) {
    StageTrial::Ticket t = trial.next();
    EXPECT_TRUE(t.timed);
    EXPECT_EQ(t.arm, i % 2 == 0 ? Arm::incumbent : Arm::candidate) << i;
  }
}

TEST(StageTrial, AClearlySlowerStageIsRefusedAfterTwoTimedCallsEach) {
  StageTrial trial;
  int calls = 0;
  EXPECT_EQ(run_trial(trial, 0.205, 0.042, &calls), std::optional<bool>(false));
  EXPECT_EQ(calls, 1 + 2 * StageTrial::kClearCalls);  // warm-up, then the arms by turns
  EXPECT_DOUBLE_EQ(trial.candidate_median(), 0.205);
  EXPECT_DOUBLE_EQ(trial.incumbent_median(), 0.042);
}

TEST(StageTrial, AClearlyFasterStageIsPromotedAfterTwoTimedCallsEach) {
  StageTrial trial;
  int calls = 0;
  EXPECT_EQ(run_trial(trial, 0.010, 0.042, &calls), std::optional<bool>(true));
  EXPECT_EQ(calls, 1 + 2 * StageTrial::kClearCalls);
}

// What CI once saw: the incumbent's first timed call preempted for 1.2 s (a loaded 2-core
// box) made a stage 40x slower than eager look 24x faster. One call cannot decide.
TEST(StageTrial, OnePreemptedCallDoesNotDecideAClearTrial) {
  StageTrial trial;
  trial.next();                       // warm-up
  trial.record(trial.next(), 1.234);  // incumbent, preempted
  trial.record(trial.next(), 0.051);  // candidate
  EXPECT_EQ(trial.decision(), std::nullopt);
  for (int i = 0; i < 2 * StageTrial::kMaxCalls && !trial.decision(); ++i) {
    StageTrial::Ticket t = trial.next();
    trial.record(t, t.arm == Arm::candidate ? 0.051 : 0.0012);
  }
  EXPECT_EQ(trial.decision(), std::optional<bool>(false));
}

TEST(StageTrial, CloseTimingsTakeTheMinimumCallsAndCompareMedians) {
  StageTrial faster, slower;
  int calls = 0;
  EXPECT_EQ(run_trial(faster, 0.030, 0.033, &calls), std::optional<bool>(true));
  EXPECT_EQ(calls, 1 + 2 * StageTrial::kMinCalls);
  EXPECT_EQ(run_trial(slower, 0.033, 0.030, &calls), std::optional<bool>(false));
  EXPECT_EQ(slower.calls(), StageTrial::kMinCalls);
}

TEST(StageTrial, ShortCallsRunUntilEachArmHasEnoughTimeOrTheCap) {
  StageTrial enough, capped;
  int calls = 0;
  // 2 ms a call: 10 calls each reach kEnoughSeconds (20 ms).
  EXPECT_EQ(run_trial(enough, 0.002, 0.00205, &calls), std::optional<bool>(true));
  EXPECT_EQ(enough.calls(), 10);
  // 2 us a call never does: the cap decides.
  EXPECT_EQ(run_trial(capped, 2.1e-6, 2.0e-6, &calls), std::optional<bool>(false));
  EXPECT_EQ(capped.calls(), StageTrial::kMaxCalls);
}

TEST(StageTrial, AnOutlierDoesNotDecideAgainstTheMedian) {
  StageTrial trial;
  trial.next();                                                                  // warm-up
  const double candidate[] = {0.040, 0.120, 0.040, 0.040, 0.040, 0.040, 0.040};  // one preempted
  static_assert(std::size(candidate) == StageTrial::kMinCalls);
  for (size_t i = 0; i < std::size(candidate); ++i) {
    trial.record(trial.next(), 0.050);
    EXPECT_FALSE(trial.decision() && i + 1 < std::size(candidate)) << i;
    trial.record(trial.next(), candidate[i]);
  }
  EXPECT_EQ(trial.decision(), std::optional<bool>(true));
  EXPECT_DOUBLE_EQ(trial.candidate_median(), 0.040);
}

// A fresh stage's threaded kernels run on one thread in 3 of their first 6 calls (their
// thread choice's early probes): the trial's median must be of the calls that serve.
TEST(StageTrial, AFreshStagesThreadProbesDoNotDecideItsTrial) {
  StageTrial trial;
  trial.next();  // warm-up: the kernels' first call, on their threads
  // Timed calls 2 to 7 alternate a one-thread probe (2x) and a threaded call, then serve.
  const double candidate[] = {0.020, 0.010, 0.020, 0.010, 0.020, 0.010, 0.010};
  for (size_t i = 0; i < std::size(candidate) && !trial.decision(); ++i) {
    trial.record(trial.next(), 0.012);
    trial.record(trial.next(), candidate[i]);
  }
  EXPECT_EQ(trial.decision(), std::optional<bool>(true));
  EXPECT_DOUBLE_EQ(trial.candidate_median(), 0.010);
}

}  // namespace
}  // namespace kiln
