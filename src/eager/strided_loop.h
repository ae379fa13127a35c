// StridedLoop: iteration over up to four operands that share one shape (inputs broadcast to
// the output's shape with zero strides), with dims coalesced where every operand is
// contiguous across them. Kernels receive runs of the innermost dim: pointers, byte strides
// and a length, and pick a unit-stride fast path when they can.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

struct StridedLoop {
  static constexpr int kMaxDims = 16;
  static constexpr int kMaxOperands = 4;
  int ndim = 0;  // after coalescing; sizes[0] is the innermost dim
  int noperands = 0;
  int64_t numel = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxOperands][kMaxDims] = {};  // bytes
  char* base[kMaxOperands] = {};
};

// Operand 0 is the output (its sizes define the loop); the others broadcast to it.
StridedLoop make_strided_loop(const std::vector<const Tensor*>& operands);

// Below this many elements a loop runs on the calling thread.
inline constexpr int64_t kParallelGrain = 32768;

// Calls run(ptrs, strides, n) for each innermost run of elements in [begin, end).
template <class Run>
void for_each_run(const StridedLoop& loop, int64_t begin, int64_t end, Run&& run) {
  if (begin >= end) return;  // also keeps empty loops away from the index arithmetic
  const int nops = loop.noperands;
  int64_t index[StridedLoop::kMaxDims] = {};
  int64_t rest = begin;
  for (int d = 0; d < loop.ndim; ++d) {
    index[d] = rest % loop.sizes[d];
    rest /= loop.sizes[d];
  }
  char* ptrs[StridedLoop::kMaxOperands];
  int64_t inner[StridedLoop::kMaxOperands];
  for (int k = 0; k < nops; ++k) inner[k] = loop.ndim ? loop.strides[k][0] : 0;
  int64_t pos = begin;
  while (pos < end) {
    for (int k = 0; k < nops; ++k) {
      char* p = loop.base[k];
      for (int d = 0; d < loop.ndim; ++d) p += index[d] * loop.strides[k][d];
      ptrs[k] = p;
    }
    int64_t n = loop.ndim ? std::min(loop.sizes[0] - index[0], end - pos) : 1;
    run(ptrs, inner, n);
    pos += n;
    if (loop.ndim == 0) break;
    index[0] += n;
    for (int d = 0; d < loop.ndim - 1 && index[d] == loop.sizes[d]; ++d) {
      index[d] = 0;
      ++index[d + 1];
    }
  }
}

// The whole loop, split across OpenMP threads when large.
template <class Run>
void parallel_for_each_run(const StridedLoop& loop, Run&& run) {
  const int64_t numel = loop.numel;
  if (numel < kParallelGrain || omp_in_parallel()) {
    for_each_run(loop, 0, numel, run);
    return;
  }
#pragma omp parallel
  {
    int64_t threads = omp_get_num_threads();
    int64_t chunk = (numel + threads - 1) / threads;
    chunk = (chunk + 63) / 64 * 64;
    int64_t begin = std::min(numel, chunk * omp_get_thread_num());
    int64_t end = std::min(numel, begin + chunk);
    if (begin < end) for_each_run(loop, begin, end, run);
  }
}

// Splits [0, n) across threads when the work (n * cost_per_item elements) is large.
template <class Body>
void parallel_range(int64_t n, int64_t cost_per_item, Body&& body) {
  if (n * cost_per_item < kParallelGrain || n < 2 || omp_in_parallel()) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    int64_t threads = omp_get_num_threads();
    int64_t chunk = (n + threads - 1) / threads;
    int64_t begin = std::min(n, chunk * omp_get_thread_num());
    int64_t end = std::min(n, begin + chunk);
    if (begin < end) body(begin, end);
  }
}

}  // namespace kiln
