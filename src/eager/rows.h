// Lays a tensor out as contiguous rows [M, R] with the given dims innermost (R = their
// element count, in order), the layout every reduction-like reference kernel works on.
#pragma once

#include <vector>

#include "kiln/tensor.h"

namespace kiln {

struct Rows {
  Tensor data;         // contiguous, kept dims (in order) then the row dims
  int64_t count = 0;   // M
  int64_t length = 0;  // R
  Shape permutation;   // dims of the source in data's order
};

Rows to_rows(const Tensor& x, const std::vector<int64_t>& row_dims);

// Inverse of the permutation used by to_rows: result of shape `x` laid out as rows back to
// the source's dim order, contiguous.
Tensor from_rows(const Tensor& rows_result, const Shape& source_sizes, const Shape& permutation);

}  // namespace kiln
