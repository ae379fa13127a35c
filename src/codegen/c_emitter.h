// The C-like emitter: renders a LoopKernel as source. Dialects differ in tables (types,
// function spellings, the parallel-loop prefix), not in control flow; `cpp` renders C99 with
// OpenMP and SIMD pragmas that tcc ignores and gcc vectorizes (vector math from glibc's
// libmvec). Output is deterministic: the same kernel gives byte-identical source.
#pragma once

#include <string>

#include "autotune/config.h"
#include "loop/kernel.h"

namespace kiln {

struct Dialect {
  const char* name;            // cpp
  const char* kernel_prefix;   // what precedes the kernel's signature
  const char* parallel_loop;   // pragma on the outermost loop; {n} is the element count
  const char* simd_loop;       // pragma on the innermost loop
  const char* parallel_simd_loop;  // both, on a single loop
};

const Dialect& cpp_dialect();

// The kernel's ABI: void NAME(const int64_t* sizes, char* const* buffers), sizes being the
// graph's size symbols and buffers the kernel's params (output first). The body reads its
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
// Kernels in one source file, after the shared helpers.
std::string emit_translation_unit(const std::string& graph_name, const std::vector<KernelSource>& kernels,
                                  const Dialect& dialect);

// What autotuning may change in `kernel`'s config on `target`: threads and vector width for
// every kernel; the rows per block of a column reduction; the prefetch chunk of a row
// reduction that streams its inputs.
TuneSpace tuning_space(const LoopKernel& kernel, const TuneTarget& target);

}  // namespace kiln
