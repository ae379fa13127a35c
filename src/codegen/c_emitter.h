// The C-like emitter: renders a LoopKernel as source. Dialects differ in tables (types,
// function spellings, the parallel-loop prefix), not in control flow; `cpp` renders C99 with
// OpenMP and SIMD pragmas that tcc ignores and gcc vectorizes (vector math from glibc's
// libmvec). Output is deterministic: the same kernel gives byte-identical source.
#pragma once

#include <string>

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
// graph's size symbols and buffers the kernel's params (output first).
std::string emit_kernel(const LoopKernel& kernel, int num_symbols, const Dialect& dialect);
// All kernels of a program in one source file, with the shared helpers once.
std::string emit_translation_unit(const std::string& graph_name,
                                  const std::vector<LoopKernel>& kernels, int num_symbols,
                                  const Dialect& dialect);

}  // namespace kiln
