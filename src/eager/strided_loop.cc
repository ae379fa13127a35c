#include "eager/strided_loop.h"

#include <fmt/format.h>

#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

StridedLoop make_strided_loop(const std::vector<const Tensor*>& operands) {
  StridedLoop loop;
  const Shape& shape = operands[0]->sizes();
  const int rank = static_cast<int>(shape.size());
  if (rank > StridedLoop::kMaxDims)
    throw ShapeError(fmt::format("tensors of more than {} dims are not supported (got {})",
                                 StridedLoop::kMaxDims, rank));
  loop.noperands = static_cast<int>(operands.size());
  loop.numel = shape_numel(shape);
  // Innermost first; broadcast dims get stride 0.
  int64_t sizes[StridedLoop::kMaxDims];
  int64_t strides[StridedLoop::kMaxOperands][StridedLoop::kMaxDims];
  for (int d = 0; d < rank; ++d) sizes[d] = shape[rank - 1 - d];
  for (int k = 0; k < loop.noperands; ++k) {
    const Tensor& t = *operands[k];
    const int trank = static_cast<int>(t.dim());
    const int64_t esize = dtype_size(t.dtype());
    loop.base[k] = t.impl()->data_ptr();
    for (int d = 0; d < rank; ++d) {
      int td = trank - 1 - d;
      bool broadcast = td < 0 || t.sizes()[td] == 1;
      strides[k][d] = broadcast ? 0 : t.strides()[td] * esize;
    }
  }
  // Drop size-1 dims, then merge dim d+1 into d where every operand is contiguous across.
  int n = 0;
  for (int d = 0; d < rank; ++d) {
    if (sizes[d] == 1) continue;
    if (n > 0) {
      bool mergeable = true;
      for (int k = 0; k < loop.noperands; ++k)
        mergeable &= strides[k][d] == strides[k][n - 1] * loop.sizes[n - 1];
      if (mergeable) {
        loop.sizes[n - 1] *= sizes[d];
        continue;
      }
    }
    loop.sizes[n] = sizes[d];
    for (int k = 0; k < loop.noperands; ++k) loop.strides[k][n] = strides[k][d];
    ++n;
  }
  loop.ndim = n;
  return loop;
}

}  // namespace kiln
