// The compile jobs and their replies, as they cross to a compile worker: one struct per
// message, one encode/decode pair each. Decoding validates: a missing field or an unknown
// word is a WireError naming it (a worker's reply and a host's request are both input from
// another process). The benchmark job is autotune/benchmark.h's.
#pragma once

#include <optional>
#include <string>

#include "compile/toolchain.h"
#include "kiln/dtype.h"
#include "wire/frame.h"
#include "worker/pool.h"

namespace kiln {

// The toolchain a job compiles with: a C tier (and compiler) on the CPU, or NVRTC for a
// GPU architecture.
struct ToolchainSpec {
  Device device = Device::cpu;
  Tier tier = Tier::optimized;   // cpu
  std::string compiler = "gcc";  // cpu, optimized tier: gcc or clang
  std::string arch;              // cuda: the host GPU's, e.g. "sm_90"
};
Toolchain toolchain_of(const ToolchainSpec& spec);
const char* tier_name(Tier tier);  // light, fast, optimized

// compile_graph: the graph as text and its constants as safetensors; the worker answers
// with a PlanReply.
struct CompileGraphJob {
  std::string graph_name;  // in the job's name, for errors
  std::string graph_text;
  std::string constants;
  ToolchainSpec toolchain;
};
struct PlanReply {
  std::string plan;       // plan_to_json
  std::string constants;  // the plan's new constants (folded), as safetensors
};

// compile_unit: one translation unit; the worker answers with a UnitReply: the object and
// its kernel-cache key. With a cache directory the worker also puts the object there (or
// answers with the one it finds there), so other processes hit it.
struct CompileUnitJob {
  std::string name;
  std::string source;
  ToolchainSpec toolchain;
  std::string cache_dir;  // empty: caches off
};
struct UnitReply {
  std::string key;
  std::string object;
};

Job encode(const CompileGraphJob& job);
Fields encode(const PlanReply& reply);
Job encode(const CompileUnitJob& job);
Fields encode(const UnitReply& reply);

CompileGraphJob decode_compile_graph_job(const Fields& fields);
PlanReply decode_plan_reply(const Fields& fields);
CompileUnitJob decode_compile_unit_job(const Fields& fields);
UnitReply decode_unit_reply(const Fields& fields);

}  // namespace kiln
