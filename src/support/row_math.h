// Row primitives at the CPU's vector width, for library code built for baseline x86-64
// (which otherwise computes one std::exp, one max at a time): exp through glibc's libmvec
// (the _ZGVdN8v_expf / _ZGVeN16v_expf that kiln's generated kernels call). The width is
// chosen from the CPU's features (support/cpu_features.h), once.
#pragma once

#include <cstdint>

namespace kiln {

// x[i] *= scale for i < n; returns their max (-inf for n == 0; a NaN among them may be
// skipped: exp of it still makes the row's softmax NaN).
float scale_and_max(float* x, int64_t n, float scale);

// x[i] = exp(x[i] - shift) for i < n; returns their sum. Within libmvec's 4 ulp.
float exp_shifted_sum(float* x, int64_t n, float shift);

}  // namespace kiln
