// The GEMM template (kernel kind `tem`, docs/design.md §7): C[M, N] = A[M, K] @ B for f32, B being
// [K, N], or [N, K] read transposed (linear's weight). Its config chooses the
// implementation — IMPL=0 calls the library that serves the eager matmul (oneDNN's
// dnnl_sgemm or OpenBLAS's cblas_sgemm: support/blas.h; a oneDNN call that answers an error
// status falls through to the loops), IMPL=1 runs generated tiled loops (BM × BN
// output tiles, BK deep, accumulated in a local tile, tiles spread over threads) — so that
// autotuning under max_autotune keeps whichever is faster at the graph's sizes.
#pragma once

#include <string>

#include "codegen/c_emitter.h"
#include "codegen/kernel_config.h"

namespace kiln {

// C extents as C expressions of the size symbols (s0, ...): M may be a product of A's
// leading dims (a [B, T, K] input is a [B*T, K] matrix).
struct GemmShape {
  std::string m, n, k;
  bool b_transposed = false;
};

// Params: 0 = C (written), 1 = A, 2 = B; contiguous.
std::string emit_gemm_template(const std::string& name, const GemmShape& shape, int num_symbols,
                               const Dialect& dialect);

}  // namespace kiln
