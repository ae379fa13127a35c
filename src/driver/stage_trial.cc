#include "driver/stage_trial.h"

#include <algorithm>
#include <numeric>

namespace kiln {

StageTrial::Ticket StageTrial::next() {
  long n = handed_++;
  if (n == 0) return {Arm::candidate, false};
  return {n % 2 == 1 ? Arm::incumbent : Arm::candidate, true};
}

void StageTrial::record(const Ticket& ticket, double seconds) {
  if (!ticket.timed) return;
  (ticket.arm == Arm::candidate ? candidate_ : incumbent_).push_back(seconds);
}

int StageTrial::calls() const {
  return static_cast<int>(std::min(candidate_.size(), incumbent_.size()));
}

double StageTrial::median(std::vector<double> seconds) {
  if (seconds.empty()) return 0;
  auto mid = seconds.begin() + static_cast<long>(seconds.size() / 2);
  std::nth_element(seconds.begin(), mid, seconds.end());
  return *mid;
}

std::optional<bool> StageTrial::decision() const {
  if (calls() < kClearCalls) return std::nullopt;
  auto [c_min, c_max] = std::minmax_element(candidate_.begin(), candidate_.end());
  auto [i_min, i_max] = std::minmax_element(incumbent_.begin(), incumbent_.end());
  if (*c_min > kClearFactor * *i_max) return false;
  if (kClearFactor * *c_max < *i_min) return true;
  auto total = [](const std::vector<double>& s) {
    return std::accumulate(s.begin(), s.end(), 0.0);
  };
  bool enough =
      calls() >= kMaxCalls || (calls() >= kMinCalls && total(candidate_) >= kEnoughSeconds &&
                               total(incumbent_) >= kEnoughSeconds);
  if (!enough) return std::nullopt;
  return candidate_median() < incumbent_median();
}

}  // namespace kiln
