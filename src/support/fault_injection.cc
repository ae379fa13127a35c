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
  constexpr std::string_view kLowering = "lowering:";
  if (value->compare(0, kLowering.size(), kLowering) == 0 && value->size() > kLowering.size())
    return {Kind::lowering, value->substr(kLowering.size())};
  throw Error(
      fmt::format("KILN_INJECT_FAULT: '{}' is not accepted (accepted: compile_error, crash, "
                  "benchmark_crash, lowering:OP)",
                  *value));
}

}  // namespace kiln
