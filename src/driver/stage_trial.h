// Promotion by measurement (docs/design.md §5). A background stage that lands does not take
// over blindly: it serves some of the live calls, interleaved with the stage that serves them
// now (the incumbent: the eager interpreter or an earlier stage), and takes over only if its
// median time per call is lower. A StageTrial is the policy alone — which executable serves
// the next call, and when the timings decide — so that it is tested without timing anything.
#pragma once

#include <optional>
#include <vector>

namespace kiln {

class StageTrial {
 public:
  enum class Arm { candidate, incumbent };
  struct Ticket {
    Arm arm = Arm::candidate;
    bool timed = false;  // the candidate's first call is a warm-up (page faults, threads)
  };

  // Timed calls of each arm at least and at most; with fewer than kMaxCalls, a trial also
  // goes on until each arm has run kEnoughSeconds (short calls are noisy). At least 7: a
  // fresh stage's threaded kernels run on one thread in 3 of their first 6 calls (their
  // thread choice's early probes, runtime/thread_choice.h), and a median of 3 such calls
  // timed the probes (an optimized stage refused at 1.6x its true time, on 2 cores).
  static constexpr int kMinCalls = 7;
  static constexpr int kMaxCalls = 15;
  static constexpr double kEnoughSeconds = 0.02;
  // After kClearCalls timed calls each, a candidate whose every call is this many times
  // slower (or faster) than every call of the incumbent is decided at once: a stage 5x slower
  // than eager should not serve kMinCalls calls. Two calls, not one, so that a single
  // preempted call (seconds on a loaded machine) cannot decide a trial by itself.
  static constexpr int kClearCalls = 2;
  static constexpr double kClearFactor = 2.0;

  // Which arm serves the next call: the candidate's warm-up, then incumbent and candidate by
  // turns. Calls may overlap (several threads): each ticket is recorded when its call ends.
  Ticket next();
  void record(const Ticket& ticket, double seconds);

  // Once decided: true when the candidate was faster.
  std::optional<bool> decision() const;
  double candidate_median() const { return median(candidate_); }
  double incumbent_median() const { return median(incumbent_); }
  int calls() const;  // timed calls of the arm with fewer

 private:
  static double median(std::vector<double> seconds);
  long handed_ = 0;
  std::vector<double> candidate_, incumbent_;
};

}  // namespace kiln
