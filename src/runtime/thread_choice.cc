#include "runtime/thread_choice.h"

#include <algorithm>
#include <array>

namespace kiln {

namespace {

ThreadChoice::Arm other(ThreadChoice::Arm arm) {
  return arm == ThreadChoice::Arm::threads ? ThreadChoice::Arm::serial : ThreadChoice::Arm::threads;
}

}  // namespace

double ThreadChoice::median(Arm arm) const {
  const Side& s = side(arm);
  if (s.count == 0) return 0;
  // Insertion sort of at most kWindow values (std::sort over a runtime prefix of the array
  // trips gcc's -Warray-bounds).
  std::array<double, kWindow> sorted{};
  for (int i = 0; i < s.count && i < kWindow; ++i) {
    int j = i;
    for (; j > 0 && sorted[static_cast<size_t>(j - 1)] > s.last[static_cast<size_t>(i)]; --j)
      sorted[static_cast<size_t>(j)] = sorted[static_cast<size_t>(j - 1)];
    sorted[static_cast<size_t>(j)] = s.last[static_cast<size_t>(i)];
  }
  return sorted[static_cast<size_t>(s.count / 2)];
}

double ThreadChoice::latest(Arm arm) const {
  const Side& s = side(arm);
  return s.count == 0 ? 0 : s.last[static_cast<size_t>((s.at + kWindow - 1) % kWindow)];
}

ThreadChoice::Arm ThreadChoice::serving() const {
  if (threads_.count == 0 || serial_.count < kMinSamples) return Arm::threads;
  return median(Arm::serial) < median(Arm::threads) ? Arm::serial : Arm::threads;
}

ThreadChoice::Ticket ThreadChoice::next() {
  Arm serve = serving();
  Arm probe = other(serve);
  if (threads_.count == 0) return {serve, false};  // the tuned arm runs first
  bool due;
  if (side(probe).count < kMinSamples) {
    due = since_probe_ + 1 >= kEarlyEvery;
  } else {
    // What one probe is expected to lose, against the share of the served time it may take:
    // from the probe arm's latest call, so that one probe that found the other arm faster
    // again (the load gone) brings the next probe at once.
    double loss = std::max(0.0, latest(probe) - median(serve));
    due = loss <= kProbeShare * served_since_probe_;
  }
  if (!due) return {serve, false};
  since_probe_ = 0;
  served_since_probe_ = 0;
  return {probe, true};
}

void ThreadChoice::record(const Ticket& ticket, double seconds) {
  Side& s = side(ticket.arm);
  s.last[static_cast<size_t>(s.at)] = seconds;
  s.at = (s.at + 1) % kWindow;
  s.count = std::min(s.count + 1, kWindow);
  if (!ticket.probe) {
    ++since_probe_;
    served_since_probe_ += seconds;
  }
}

}  // namespace kiln
