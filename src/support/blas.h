// OpenBLAS, loaded on first use rather than linked (docs/design.md §9). OpenBLAS chooses its
// kernels from the CPU's model when it loads, and on a virtual machine that hides the model
// (the GPU machine's CPU reports "Intel(R) Xeon(R) Processor") it falls back to Prescott's
// SSE3 kernels: a 1024^3 sgemm at 256 GFLOP/s on 16 cores against PyTorch's 585. Loading it
// here lets kiln name the kernels from the CPU's feature bits first (OPENBLAS_CORETYPE,
// unless the user set it): SkylakeX with AVX-512, Haswell with AVX2 and FMA. It is loaded
// RTLD_GLOBAL, so that generated kernels calling cblas_sgemm (the GEMM template's IMPL=0)
// resolve it; shared_object.cc loads it before any kernel object.
#pragma once

#include <cblas.h>

#include <string>

namespace kiln {

struct Blas {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&cblas_dgemm) dgemm = nullptr;
  void (*set_num_threads)(int) = nullptr;
  std::string core;  // the kernels OpenBLAS runs: "SkylakeX", "Haswell", "Prescott", ...
};

// Loads it once (thread-safe); an Error naming the library and dlerror if it cannot.
const Blas& blas();

// The OPENBLAS_CORETYPE kiln gives a CPU with these features; empty: OpenBLAS's own choice.
std::string blas_core_for(bool avx512, bool avx2_fma);

}  // namespace kiln
