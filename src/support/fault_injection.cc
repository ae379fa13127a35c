#include "support/fault_injection.h"

#include <fmt/format.h>

#include "kiln/error.h"
#include "support/env.h"

namespace kiln {

InjectedFault injected_fault() {
  std::optional<std::string> value = env_value("KILN_INJECT_FAULT");
  if (!value) return {};
  using Kind = InjectedFault::Kind;
  if (*value == "compile_error") return {Kind::compile_error, ""};
  if (*value == "crash") return {Kind::crash, ""};
  if (*value == "benchmark_crash") return {Kind::benchmark_crash, ""};
  if (*value == "slow_threads") return {Kind::slow_threads, ""};
  if (*value == "slow_after_trial") return {Kind::slow_after_trial, ""};
  constexpr std::string_view kLowering = "lowering:";
  if (value->compare(0, kLowering.size(), kLowering) == 0 && value->size() > kLowering.size())
    return {Kind::lowering, value->substr(kLowering.size())};
  constexpr std::string_view kSlowStage = "slow_stage:";
  if (value->compare(0, kSlowStage.size(), kSlowStage) == 0) {
    std::string stage = value->substr(kSlowStage.size());
    if (stage == "fast" || stage == "optimized") return {Kind::slow_stage, stage};
  }
  throw Error(fmt::format(
      "KILN_INJECT_FAULT: '{}' is not accepted (accepted: compile_error, crash, "
      "benchmark_crash, lowering:OP, slow_stage:fast, slow_stage:optimized, slow_after_trial, "
      "slow_threads)",
      *value));
}

}  // namespace kiln
