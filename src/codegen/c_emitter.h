// The C-like emitter: renders a scheduled LoopKernel as source. The kernel's Schedule
// (loop/schedule.h) picks the loops; dialects differ in tables (types, function spellings,
// the parallel and simd loop spellings), not in decisions; `cpp` renders C99 with OpenMP
// and SIMD pragmas that tcc ignores and gcc vectorizes (vector math from glibc's libmvec).
// Output is deterministic: the same kernel gives byte-identical source.
#pragma once

#include <string>

#include "codegen/kernel_abi.h"
#include "codegen/kernel_config.h"
#include "loop/kernel.h"

namespace kiln {

struct Dialect {
  const char* name;      // cpp, cuda: also the kernels' name prefix
  Device device;         // kernels scheduled for another device are refused
  const char* preamble;  // the shared helpers, once per translation unit
  // The kernel's signature and the lines that give its body `sizes` and `buffers`; {name}.
  const char* signature;
  const char* restrict_word;  // restrict, __restrict__
  // Pragmas ("": none) on a loop across threads (the outermost), a simd loop (the
  // innermost), and one loop that is both; {n} is the element count the loop covers.
  const char* parallel_loop;
  const char* simd_loop;
  const char* parallel_simd_loop;
  // A reduction's simd loop, alone or also across threads; {clauses} are its reductions,
  // each a reduction_clause of {op} (+, *, max, min, |) and {var}.
  const char* simd_reduction;
  const char* parallel_simd_reduction;
  const char* reduction_clause;
  // The loop over a flat index {i} below {n}: OpenMP's parallel simd loop, or a CUDA
  // grid-stride loop (each thread from its global index, striding by the grid's size).
  const char* flat_loop;
  // The random number generator (support/philox.inc) and the double log, cos and sqrt it
  // computes with, after the preamble of a translation unit whose kernels draw.
  const char* random_prelude;
};
// Split GPU reductions (Schedule::split_blocks): a row may be split over several blocks
// (gridDim.x / rows of them, the launch decides), their partials in buffers[params]
// (counters, zeroed) and buffers[params + 1] (8 bytes a block), folded in order by the
// row's last block.

const Dialect& cpp_dialect();
// CUDA C++ for NVRTC: extern "C" __global__ kernels taking one KilnArgs by value (the size
// symbols and the buffer pointers), pointwise work in grid-stride loops.
const Dialect& cuda_dialect();
// `kernel`'s name in `dialect`: cpp_poi_fused_add_0 → cuda_poi_fused_add_0.
std::string dialect_kernel_name(const std::string& name, const Dialect& dialect);
// The signature line(s) of kernel `name`, through the opening brace; `bounds` (cuda): its
// __launch_bounds__.
std::string kernel_signature(const std::string& name, const Dialect& dialect,
                             const std::string& bounds = "");

// The kernel's ABI: void NAME(const int64_t* sizes, char* const* buffers), sizes being the
// graph's size symbols and buffers the kernel's params (outputs first). The body reads its
// config through macros (KILN_NUM_THREADS, KILN_VECTOR_ATTR, KILN_CHUNK, KILN_BLOCK), so it
// is the same text under every config: config_prologue defines them (and KILN_<FIELD> for
// every other field of the config) before it, and config_epilogue removes them after.
std::string emit_kernel(const LoopKernel& kernel, int num_symbols, const Dialect& dialect);
std::string config_prologue(const std::string& kernel_name, const KernelConfig& config);
std::string config_epilogue(const KernelConfig& config);

// A kernel's source as a translation unit holds it: its body and the config it runs with.
struct KernelSource {
  std::string name;
  std::string body;
  KernelConfig config;
};
// Kernels in one source file, after the shared helpers. The text depends on the kernels
// alone (not on the graph they came from), so equal units share one object across graphs.
std::string emit_translation_unit(const std::vector<KernelSource>& kernels, const Dialect& dialect);
// `body` (a kernel's source, naming it `name`) with `name` replaced by `to`: kernels whose
// bodies are equal under one name are the same kernel.
std::string rename_kernel(const std::string& body, const std::string& name, const std::string& to);

// Whether a row kernel prefetches its streamed inputs in chunks (its CHUNK config field).
bool row_streams_inputs(const LoopKernel& kernel);
// The default of a parallel loop's GRAIN config field: elements a kernel must have to run
// on several threads (a parallel region costs a few microseconds); tuning may move it.
constexpr int64_t kDefaultGrain = 32768;

}  // namespace kiln
