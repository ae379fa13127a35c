#include "eager/rows.h"

#include <algorithm>

#include "eager/dispatch.h"
#include "tensor/tensor_impl.h"

namespace kiln {

Rows to_rows(const Tensor& x, const std::vector<int64_t>& row_dims) {
  Rows rows;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (std::find(row_dims.begin(), row_dims.end(), d) == row_dims.end())
      rows.permutation.push_back(d);
  rows.permutation.insert(rows.permutation.end(), row_dims.begin(), row_dims.end());
  Shape sizes, strides;
  rows.length = 1;
  for (size_t i = 0; i < rows.permutation.size(); ++i) {
    int64_t d = rows.permutation[i];
    sizes.push_back(x.sizes()[d]);
    strides.push_back(x.strides()[d]);
    if (i >= rows.permutation.size() - row_dims.size()) rows.length *= x.sizes()[d];
  }
  rows.count = rows.length == 0 ? 0 : x.numel() / rows.length;
  if (rows.length == 0) {
    rows.count = 1;
    for (size_t i = 0; i + row_dims.size() < rows.permutation.size(); ++i) rows.count *= sizes[i];
  }
  rows.data = contiguous_eager(make_view(x, sizes, strides, x.offset()));
  return rows;
}

Tensor from_rows(const Tensor& result, const Shape& source_sizes, const Shape& permutation) {
  Shape sizes(source_sizes.size()), strides(source_sizes.size());
  Shape permuted_strides = contiguous_strides([&] {
    Shape s;
    for (int64_t d : permutation) s.push_back(source_sizes[d]);
    return s;
  }());
  for (size_t i = 0; i < permutation.size(); ++i) {
    sizes[permutation[i]] = source_sizes[permutation[i]];
    strides[permutation[i]] = permuted_strides[i];
  }
  return contiguous_eager(make_view(result, sizes, strides, result.offset()));
}

}  // namespace kiln
