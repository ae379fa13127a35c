// A compiled graph as the runtime runs it and as it travels: from a compile worker to the
// host, and to and from the graph cache. It holds the optimized graph, the translation
// units that hold its kernels (their source and their object's cache key), each kernel
// launch (its buffers) and the order of steps. It holds no code: objects are loaded from
// the kernel cache or a worker's reply by key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "codegen/kernel_config.h"
#include "graph/graph.h"
#include "kiln/safetensors.h"

namespace kiln {

// One translation unit: kernels compiled together into one shared object.
struct ObjectUnit {
  std::string name;    // its first kernel's symbol (file names, errors)
  std::string key;     // the kernel-cache key of its object: toolchain identity + source
  std::string source;  // C or CUDA source, kept so a missing object can be rebuilt without passes
  Device device = Device::cpu;  // cpu: a shared object; cuda: a cubin
  // Every kernel in it is small (kLightKernelElements): the fast stage builds it with the
  // light tier (compile/toolchain.h). Part of the key through the toolchain's identity.
  bool light = false;
};

struct KernelLaunch {
  std::string name;  // what profiles, errors and kernels() call it: cpp_poi_fused_add_0
  std::string kind;  // poi, red, per, for (loop/kernel.h's kernel_kind_word), tem (GEMM template)
  // Its function in its unit's object, named after its body and config, not its place in
  // the graph (cpp_poi_fused_add_3f9a0c2e7b41): kernels built the same share one function,
  // in this graph and in any other (assemble_units, driver/plan_builder.h).
  std::string symbol;
  int unit = 0;
  // Small enough for the light tier (kLightKernelElements): the fast stage builds a unit of
  // only such kernels with tcc.
  bool light = false;
  std::vector<ValueId> params;   // its buffers (ABI order: outputs first)
  std::vector<ValueId> outputs;  // the params it writes
  // Reads every input at the index it writes (may run in place): a flat pointwise kernel,
  // or a foreach of them, whose parts are independent loops.
  bool elementwise = false;
  // Foreach: each part's number of params, in order (its params are theirs, concatenated).
  // Empty for other kernels: one part of all the params.
  std::vector<int> part_params;
  // Elementwise kernels: the values they also load at a constant index (x - x[0]), which
  // they must not run over in place.
  std::vector<ValueId> read_at_constant_index;
  std::string source;   // its body, the same text under every config (c_emitter.h)
  TuneSpace space;      // what autotuning may change
  KernelConfig config;  // the config it is built with (complete over the space)
  std::string tuning =
      "default";  // how config was chosen: default, benchmarked, lookup_table, cached
  // The independent work items of one launch (their count is the product): elements of a
  // pointwise kernel, rows of a reduction. A CUDA launch sizes its grid by it; the kernels
  // grid-stride, so any grid is correct and this only decides how full the GPU is.
  SymShape work;
  bool row_per_block = false;  // CUDA: one work item (a row) per block, else one per thread
  int columns_per_block = 0;   // CUDA column kernels: the work items (rows) of a block (32)
  int threads = 256;           // CUDA: threads per block (the kernel's code assumes it)
  bool split = false;          // CUDA: rows may be split over blocks (Schedule::split_blocks)
  int phases = 0;              // CUDA, split kernels: the reductions per row (partials per block)
  SymShape reduced_work;       // CUDA: the reduced dims of a row kernel (their product: R)
};

struct PlanStep {
  enum class Kind { Kernel, Ext } kind = Kind::Kernel;
  int kernel = -1;  // Kernel: index into kernels
  int node = -1;    // Ext: the graph node the eager op executor runs
};

struct CompiledPlan {
  Graph graph;                  // optimized; constants attached
  Device device = Device::cpu;  // where its kernels run: the dialect of its units
  bool cuda_graphs = false;     // run by replaying a captured CUDA graph (set per use, not stored)
  std::string options;          // how it was built: "tier=optimized compiler=gcc autotune=on"
  std::vector<ObjectUnit> units;
  std::vector<KernelLaunch> kernels;
  std::vector<PlanStep> steps;
  std::vector<bool> read_by_kernel;  // per value: must be a contiguous buffer
};

// JSON text for the plan (the graph as canonical text). Constants travel apart: the ones
// the caller gave the compile are found again by name; those the compile made (folded) are
// returned by new_constants().
std::string plan_to_json(const CompiledPlan& plan);
TensorMap new_constants(const CompiledPlan& plan, const TensorMap& given);

// Parses and validates a plan: every index in range, every kernel in a unit, steps in
// order, constants from `given` or `made` with matching types. Throws FormatError naming
// `source` and the problem.
CompiledPlan plan_from_json(std::string_view json, const TensorMap& given, const TensorMap& made,
                            const std::string& source);

}  // namespace kiln
