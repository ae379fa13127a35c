// OpenBLAS, loaded on first use rather than linked (docs/design.md §9). OpenBLAS chooses its
// kernels from the CPU's model when it loads, and on a virtual machine that hides the model
// (the GPU machine's CPU reports "Intel(R) Xeon(R) Processor") it falls back to Prescott's
// SSE3 kernels: a 1024^3 sgemm at 256 GFLOP/s on 16 cores against PyTorch's 585. Loading it
// here lets kiln name the kernels from the CPU's feature bits first (OPENBLAS_CORETYPE,
// unless the user set it): SkylakeX with AVX-512, Haswell with AVX2 and FMA. It is loaded
// RTLD_GLOBAL, so that generated kernels calling cblas_sgemm (the GEMM template's IMPL=0)
// resolve it; shared_object.cc loads it before any kernel object.
//
// f32 products go through oneDNN's sgemm when libdnnl (Debian's libdnnl2, built on the same
// OpenMP runtime as kiln, so one thread pool serves both) is there: its JIT kernels for the
// CPU in hand match or beat OpenBLAS 0.3.21's (16 cores: 1.0x at 2048x2048x512 to 4.7x at
// 2048x256x64, 1024^3 1.33x; 2 Sapphire Rapids cores: 1.0-1.2x, within a noisy VM's spread,
// 256x10x1024 2.5x). It is optional: without it
// (or with KILN_SGEMM=openblas) OpenBLAS serves them. f64 and the rest stay with OpenBLAS.
#pragma once

#include <cblas.h>

#include <string>

namespace kiln {

// oneDNN's row-major sgemm (dnnl.h; dnnl_dim_t is int64_t, the status 0 on success).
using DnnlSgemm = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha,
                          const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                          float* c, int64_t ldc);

struct Blas {
  decltype(&cblas_sgemm) sgemm = nullptr;
  DnnlSgemm dnnl_sgemm = nullptr;  // null: oneDNN absent or not chosen
  std::string sgemm_library;       // "oneDNN" or "OpenBLAS": what serves f32 products
  decltype(&cblas_dgemm) dgemm = nullptr;
  void (*set_num_threads)(int) = nullptr;
  std::string core;  // the kernels OpenBLAS runs: "SkylakeX", "Haswell", "Prescott", ...
};

// Loads them once (thread-safe); an Error naming the library and dlerror if OpenBLAS cannot
// load, or if KILN_SGEMM (openblas, onednn; unset: oneDNN when it loads) is another value or
// asks for a oneDNN that does not load.
const Blas& blas();

// C[m, n] = op(A) @ op(B) + beta * C, row-major f32 (op: transposed when trans_*), through
// blas().sgemm_library; an Error naming the sizes if that library refuses them.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, float* c, int64_t ldc, float beta = 0.0f);

// The OPENBLAS_CORETYPE kiln gives a CPU with these features; empty: OpenBLAS's own choice.
std::string blas_core_for(bool avx512, bool avx2_fma);

}  // namespace kiln
