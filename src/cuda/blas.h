// Matrix products on the GPU through cuBLASLt, reached at run time (dlopen of
// libcublasLt.so from the CUDA toolkit or the driver's library path), like NVRTC: kiln links
// against no CUDA library. Row-major operands are handed to cuBLASLt's column-major API
// transposed (C^T = B^T A^T), so no operand is copied.
#pragma once

#include <cstdint>
#include <string>

#include "kiln/dtype.h"

namespace kiln::cuda {

enum class Epilogue { none, relu, gelu };  // gelu: the tanh approximation

// C[n, m] = A[n, k] @ B[k, m] (+ bias[m]) (then relu or gelu), `batches` times, all
// row-major with leading dimensions in elements; a transposed operand is stored as its
// transpose ([k, n] for A, [m, k] for B). Batch strides in elements (0: shared by every
// batch). A, B, C and bias share `dtype` (f32, f64, f16, bf16); f16/bf16 accumulate in f32.
struct GemmRequest {
  DType dtype = DType::f32;
  int64_t n = 0, k = 0, m = 0, batches = 1;
  const void* a = nullptr;
  int64_t lda = 0, stride_a = 0;
  bool a_transposed = false;
  const void* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  bool b_transposed = false;
  void* c = nullptr;
  int64_t ldc = 0, stride_c = 0;
  const void* bias = nullptr;
  Epilogue epilogue = Epilogue::none;
  bool allow_tf32 = false;  // f32 inputs rounded to tf32 on the tensor cores
  // Time cuBLASLt's top heuristic candidates on these very buffers and keep the fastest
  // (max_autotune), remembered in the autotune cache per GPU and cuBLASLt version.
  bool tune_algorithm = false;
};

// Whether cuBLASLt can be loaded here.
bool blas_available();
// Queues the product on kiln's stream. The algorithm is cuBLASLt's first heuristic choice,
// remembered per shape for the process. Returns false, having queued the plain product,
// when cuBLASLt has no algorithm with the requested epilogue (the caller applies it).
// Error naming the shapes on failure.
bool gemm(const GemmRequest& request);

}  // namespace kiln::cuda
