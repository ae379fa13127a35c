#include "codegen/gemm_template.h"

#include <fmt/format.h>

#include "support/blas.h"

namespace kiln {

namespace {

// The tiled loops (IMPL=1). Each thread owns whole output tiles, accumulated in a local
// BM x BN array (at most 64 x 256 floats: 64 KiB of stack) while K is walked BK at a time.
// B [K, N]: the innermost loop runs along a row of B and of the tile (vectorized);
// B [N, K]: each output element is a dot product along K (a vectorized reduction).
constexpr const char* kTiledLoops =
    R"(  #pragma omp parallel for collapse(2) if(M * N * K >= 262144) KILN_NUM_THREADS
  for (int64_t i0 = 0; i0 < M; i0 += KILN_BM) {
    for (int64_t j0 = 0; j0 < N; j0 += KILN_BN) {
      const int64_t i1 = i0 + KILN_BM < M ? i0 + KILN_BM : M;
      const int64_t j1 = j0 + KILN_BN < N ? j0 + KILN_BN : N;
      float acc[KILN_BM][KILN_BN];
      for (int64_t i = 0; i < i1 - i0; ++i)
        for (int64_t j = 0; j < j1 - j0; ++j) acc[i][j] = 0.0f;
      for (int64_t k0 = 0; k0 < K; k0 += KILN_BK) {
        const int64_t k1 = k0 + KILN_BK < K ? k0 + KILN_BK : K;
        for (int64_t i = i0; i < i1; ++i) {
          float* restrict c = acc[i - i0];
{inner}
        }
      }
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) p0[i * N + j] = acc[i - i0][j - j0];
    }
  }
)";

constexpr const char* kRowsOfB = R"(          for (int64_t k = k0; k < k1; ++k) {
            const float a = p1[i * K + k];
            const float* restrict b = p2 + k * N;
            #pragma omp simd
            for (int64_t j = j0; j < j1; ++j) c[j - j0] += a * b[j];
          })";

constexpr const char* kColumnsOfB = R"(          for (int64_t j = j0; j < j1; ++j) {
            float s = 0.0f;
            #pragma omp simd reduction(+:s)
            for (int64_t k = k0; k < k1; ++k) s += p1[i * K + k] * p2[j * K + k];
            c[j - j0] += s;
          })";

}  // namespace

std::string emit_gemm_template(const std::string& name, const GemmShape& shape, int num_symbols,
                               const Dialect& dialect) {
  std::string src = kernel_signature(name, dialect);
  for (int s = 0; s < num_symbols; ++s)
    src += fmt::format("  const int64_t s{} = sizes[{}];\n", s, s);
  if (num_symbols == 0) src += "  (void)sizes;\n";
  src += "  float* restrict p0 = (float*)buffers[0];\n";
  src += "  const float* restrict p1 = (const float*)buffers[1];\n";
  src += "  const float* restrict p2 = (const float*)buffers[2];\n";
  src += fmt::format("  const int64_t M = {}, N = {}, K = {};\n", shape.m, shape.n, shape.k);
  src += "  if (M == 0 || N == 0) return;\n";
  src += "  if (K == 0) {\n    memset(p0, 0, (size_t)(M * N) * sizeof(float));\n    return;\n  }\n";
  src += "#if KILN_IMPL == 0\n";
  // The library call: the one that serves kiln's f32 products (support/blas.h), loaded
  // RTLD_GLOBAL before any kernel object. oneDNN answers a status: a call it refuses falls
  // through to the tiled loops, so that C is never left unwritten.
  if (blas().dnnl_sgemm) {
    src +=
        "  extern int dnnl_sgemm(char, char, int64_t, int64_t, int64_t, float, const float*, "
        "int64_t,\n"
        "                        const float*, int64_t, float, float*, int64_t);\n";
    src += fmt::format(
        "  if (dnnl_sgemm('N', '{}', M, N, K, 1.0f, p1, K, p2, {}, 0.0f, p0, N) == 0) return;\n",
        shape.b_transposed ? 'T' : 'N', shape.b_transposed ? "K" : "N");
  } else {
    src +=
        "  extern void cblas_sgemm(int, int, int, int, int, int, float, const float*, int, const "
        "float*, int, float,\n"
        "                          float*, int);\n";
    src += fmt::format(
        "  cblas_sgemm(101 /* row major */, 111 /* A as is */, {}, (int)M, (int)N, (int)K, 1.0f, "
        "p1, (int)K, p2, (int){}, 0.0f, p0, (int)N);\n  return;\n",
        shape.b_transposed ? "112 /* B transposed */" : "111 /* B as is */",
        shape.b_transposed ? "K" : "N");
  }
  src += "#endif\n";
  std::string loops = kTiledLoops;
  loops.replace(loops.find("{inner}"), 7, shape.b_transposed ? kColumnsOfB : kRowsOfB);
  src += loops;
  src += "}\n";
  return src;
}

}  // namespace kiln
