// Attention on the CPU in one pass over the keys (the flash-attention recurrence): for each
// block of query rows of each batch, the scores of one block of keys at a time (an sgemm on
// the calling thread), their exp against a running row max (support/row_math.h), and the
// running sum and output rescaled when the max grows. The [T, S] scores are never written
// whole; the blocks of rows spread over the threads.
#pragma once

#include "kiln/tensor.h"

namespace kiln {

// softmax(q @ k^T * scale (or / scale when divide), -1) @ v for f32 q [..., T, D],
// k [..., S, D], v [..., S, Dv] on the CPU, sharing their batch dims; operands whose last
// dim is strided are copied first. Other dtypes are the caller's (an empty Tensor).
Tensor cpu_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool divide);

}  // namespace kiln
