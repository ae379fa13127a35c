// libFuzzer target: compiled-plan JSON (runtime/plan.h), which arrives from the graph cache
// and from compile workers. Any bytes either parse into a plan that validates or raise
// kiln::Error; a plan that parses prints to JSON that parses again.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kiln/error.h"
#include "runtime/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  kiln::CompiledPlan plan;
  try {
    plan = kiln::plan_from_json(json, {}, {}, "fuzz");
  } catch (const kiln::Error&) {
    return 0;
  }
  kiln::plan_from_json(kiln::plan_to_json(plan), {}, {}, "reprinted");
  return 0;
}
