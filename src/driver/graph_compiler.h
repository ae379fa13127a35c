// A graph to a native executable, by one path in every mode (docs/design.md §5), through
// the caches and an executor (compile_executor.h) that builds here or in the workers:
//   graph cache hit   → the plan, then each unit's object (process table, kernel cache)
//   miss              → the plan built here (InProcess) or by a worker (compile_graph job)
//   missing objects   → compiled here, or in parallel across the workers (compile_unit)
// The graph entry is written once every object exists. In the worker modes this process
// compiles nothing (compile.in_process stays 0); with everything cached it starts no
// worker at all.
#pragma once

#include <functional>
#include <memory>

#include "compile/toolchain.h"
#include "graph/graph.h"
#include "kiln/compile.h"
#include "runtime/executable.h"
#include "worker/jobs.h"

namespace kiln {

struct NativeCompile {
  Tier tier = Tier::optimized;
  std::string compiler = "gcc";
  bool in_workers = false;
  WorkerStart start = WorkerStart::Subprocess;
  int threads = 1;
  // Beside calls being served (Async, AsyncProgressive): workers of the background roles
  // (worker/launch.h), `threads` of them, the cores those calls leave.
  bool background = false;
  bool autotune = false;  // tune the kernels' configs (autotune/tuner.h)
  bool coordinate_descent = true;
  bool max_autotune = false;
  std::vector<int64_t> size_hints;  // the sizes kernels are timed at (Graph::size_hints)
  Device device = Device::cpu;      // cuda: CUDA kernels compiled by NVRTC for `arch`
  std::string arch;                 // "sm_90": the host GPU's, given to the workers
  bool cuda_graphs = false;         // the executable replays CUDA graphs (not a build option)
  // Warm up a CUDA plan's cuBLASLt steps while its kernels compile (runtime/library_warmup.h).
  // Background stages turn it off: a warm-up on a pool thread can still be inside cuBLASLt
  // when the program exits and the library tears itself down, which crashes the process. The
  // eager calls that answer before a stage lands have loaded the library and created the
  // handle; a product fused with its epilogue still chooses its algorithm on first use.
  bool warm_up_libraries = true;
};

// Targets `device`: for cuda, the host GPU's architecture (which needs the driver).
void set_device(NativeCompile& how, Device device);
// The toolchain `how` compiles units with, as a job names it and built.
ToolchainSpec toolchain_spec(const NativeCompile& how);
Toolchain toolchain_of(const NativeCompile& how);

// How `how` builds, in words: the plan's options ("tier=optimized compiler=gcc autotune=on ...").
std::string build_options_text(const NativeCompile& how);

std::unique_ptr<Executable> compile_native(const Graph& graph, const NativeCompile& how);

// The same, reporting through `done` (exactly once): before returning when the caches hold
// everything or the compile runs here, else later on a pool thread.
using ExecutableDone =
    std::function<void(std::exception_ptr error, std::unique_ptr<Executable> executable)>;
void compile_native_async(const Graph& graph, const NativeCompile& how, ExecutableDone done);

// The graph cache key (docs/design.md §6): kiln's build identity, the toolchain's fingerprint,
// the canonical graph text (with its input types), a digest of its constants, and when
// tuning, the tuning options, the size hints and the lookup table's digest.
std::string graph_cache_key(const Graph& graph, const NativeCompile& how);
std::string graph_cache_key_text(const Graph& graph, const NativeCompile& how);  // what it hashes

}  // namespace kiln
