#include "eager/gpu_launch.h"

#include <fmt/format.h>

#include "cuda/eager_cuda.h"
#include "kiln/error.h"

namespace kiln {

cuda::MapArgs map_args(Op op, const StridedLoop& loop, const std::vector<DType>& dtypes) {
  static_assert(cuda::kMapMaxDims == StridedLoop::kMaxDims &&
                cuda::kMapMaxOperands == StridedLoop::kMaxOperands);
  if (dtypes.size() != static_cast<size_t>(loop.noperands))
    throw Error(
        fmt::format("{}: {} dtypes for {} operands", op_name(op), dtypes.size(), loop.noperands));
  cuda::MapArgs a{};
  a.ndim = loop.ndim;
  a.noperands = loop.noperands;
  a.numel = loop.numel;
  a.op = static_cast<int32_t>(op);
  for (int d = 0; d < loop.ndim; ++d) a.sizes[d] = loop.sizes[d];
  for (int k = 0; k < loop.noperands; ++k) {
    a.base[k] = loop.base[k];
    a.dtypes[k] = static_cast<int32_t>(dtypes[static_cast<size_t>(k)]);
    for (int d = 0; d < loop.ndim; ++d) a.strides[k][d] = loop.strides[k][d];
  }
  return a;
}

}  // namespace kiln
