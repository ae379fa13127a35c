// Views in the eager interpreter: new sizes/strides over the same storage. reshape copies
// only when the strides cannot express the new shape (PyTorch's rule).
#include <fmt/format.h>

#include "eager/dispatch.h"
#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// Strides for viewing `x` as `target` without a copy, or nullopt (PyTorch's computeStride).
std::optional<Shape> view_strides(const Tensor& x, const Shape& target) {
  const Shape& old_sizes = x.sizes();
  const Shape& old_strides = x.strides();
  if (x.numel() == 0 || old_sizes.empty()) return contiguous_strides(target);
  Shape out(target.size());
  int64_t view_d = static_cast<int64_t>(target.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_sizes[d];
    if (d == 0 ||
        (old_sizes[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || target[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= target[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

}  // namespace

Tensor eager_view(Op op, const Tensor& x, const Attrs& attrs, const TensorType& out_type) {
  require_data(x, op_name(op).data());
  Shape out_shape;
  try_const_shape(out_type.shape, &out_shape);
  const Shape& st = x.strides();
  switch (op) {
    case Op::reshape: {
      if (auto strides = view_strides(x, out_shape))
        return make_view(x, out_shape, *strides, x.offset());
      Tensor c = contiguous_eager(x);
      return make_view(c, out_shape, contiguous_strides(out_shape), c.offset());
    }
    case Op::permute: {
      Shape strides;
      for (int64_t d : attrs.get_ints("dims"))
        strides.push_back(st[normalize_dim(d, x.dim(), "permute")]);
      return make_view(x, out_shape, strides, x.offset());
    }
    case Op::slice: {
      int64_t dim = normalize_dim(attrs.get_int("dim"), x.dim(), "slice");
      int64_t step = attrs.get_int("step", 1);
      Shape strides = st;
      strides[dim] *= step;
      return make_view(x, out_shape, strides, x.offset() + attrs.get_int("start") * st[dim]);
    }
    case Op::expand: {
      Shape strides(out_shape.size(), 0);
      size_t shift = out_shape.size() - static_cast<size_t>(x.dim());
      for (size_t i = 0; i < static_cast<size_t>(x.dim()); ++i)
        strides[shift + i] = x.sizes()[i] == out_shape[shift + i] ? st[i] : 0;
      return make_view(x, out_shape, strides, x.offset());
    }
    default:
      break;
  }
  throw Error(fmt::format("{}: not a view op", op_name(op)));
}

}  // namespace kiln
