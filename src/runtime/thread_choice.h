// Threads that pay, decided on live calls (docs/design.md §5). A compiled CPU kernel built
// to run on several threads (its config's THREADS is not 1) has two arms: its tuned threads,
// and one thread. The arm with the lower median over its last kWindow calls serves; the
// other is probed now and then so that its time stays current. The tuned count won on an
// idle machine, but when other processes hold the cores a parallel region waits at its
// barrier for threads the scheduler has not run yet (a 32K-element add: 3.4 ms with the
// default threads on a loaded machine, 62 us on one), and then the kernel moves to one
// thread until probes show the threads paying again.
//
// Probes cost what the losing arm loses; after kMinSamples of them, which come every
// kEarlyEvery calls, they are spaced so that this stays under kProbeShare of the time the
// kernel serves. A stale time of the losing arm does not keep a worse arm serving: the
// serving arm's own time is current, and it is replaced once it gets slower. A ThreadChoice is the
// policy alone, tested on given timings (tests/e2e/thread_choice_test.cc); NativeExecutable times
// the calls and runs the serial arm by lowering the calling thread's OpenMP thread count.
#pragma once

#include <array>

namespace kiln {

class ThreadChoice {
 public:
  static constexpr int kWindow = 5;
  static constexpr int kMinSamples = 3;
  static constexpr int kEarlyEvery = 2;
  static constexpr double kProbeShare = 0.01;

  enum class Arm { threads, serial };
  struct Ticket {
    Arm arm = Arm::threads;
    bool probe = false;  // the arm that does not serve, run to keep its time current
  };

  // Which arm runs the next call. Calls may overlap (several threads): each ticket is
  // recorded when its call ends.
  Ticket next();
  void record(const Ticket& ticket, double seconds);
  Arm serving() const;  // the arm that serves between probes
  double median(Arm arm) const;
  double latest(Arm arm) const;  // its last call's seconds
  int samples(Arm arm) const { return side(arm).count; }

 private:
  struct Side {
    std::array<double, kWindow> last{};  // a ring of the last calls' seconds
    int count = 0;                       // calls recorded, up to kWindow
    int at = 0;                          // where the next one goes
  };
  const Side& side(Arm arm) const { return arm == Arm::threads ? threads_ : serial_; }
  Side& side(Arm arm) { return arm == Arm::threads ? threads_ : serial_; }

  Side threads_, serial_;
  long since_probe_ = 0;           // calls served since the last probe
  double served_since_probe_ = 0;  // their seconds
};

}  // namespace kiln
