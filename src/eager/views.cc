// Views in the eager interpreter: new sizes/strides over the same storage. reshape copies
// only when the strides cannot express the new shape (PyTorch's rule).
#include <fmt/format.h>

#include "eager/dispatch.h"
#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// Strides for viewing `old_sizes`/`old_strides` as `target` without a copy, or nullopt
// (PyTorch's computeStride).
std::optional<Shape> view_strides(const Shape& old_sizes, const Shape& old_strides,
                                  const Shape& target) {
  if (shape_numel(old_sizes) == 0 || old_sizes.empty()) return contiguous_strides(target);
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

std::optional<ViewGeometry> view_geometry(Op op, const Attrs& attrs, const ViewGeometry& in,
                                          const Shape& out_shape) {
  const Shape& st = in.strides;
  int64_t rank = static_cast<int64_t>(in.sizes.size());
  switch (op) {
    case Op::reshape: {
      std::optional<Shape> strides = view_strides(in.sizes, st, out_shape);
      if (!strides) return std::nullopt;
      return ViewGeometry{out_shape, std::move(*strides), in.offset};
    }
    case Op::permute: {
      Shape strides;
      for (int64_t d : attrs.get_ints("dims"))
        strides.push_back(st[normalize_dim(d, rank, "permute")]);
      return ViewGeometry{out_shape, std::move(strides), in.offset};
    }
    case Op::slice: {
      int64_t dim = normalize_dim(attrs.get_int("dim"), rank, "slice");
      Shape strides = st;
      strides[dim] *= attrs.get_int("step", 1);
      const Dim start = attrs.get_dim("start");
      if (!start.is_const())
        throw Error(fmt::format("slice: start {} is not bound", start.to_string()));
      return ViewGeometry{out_shape, std::move(strides), in.offset + start.coeff * st[dim]};
    }
    case Op::expand: {
      Shape strides(out_shape.size(), 0);
      size_t shift = out_shape.size() - in.sizes.size();
      for (size_t i = 0; i < in.sizes.size(); ++i)
        strides[shift + i] = in.sizes[i] == out_shape[shift + i] ? st[i] : 0;
      return ViewGeometry{out_shape, std::move(strides), in.offset};
    }
    default:
      break;
  }
  throw Error(fmt::format("{}: not a view op", op_name(op)));
}

Tensor eager_view(Op op, const Tensor& x, const Attrs& attrs, const TensorType& out_type) {
  require_data(x, op_name(op).data());
  Shape out_shape;
  try_const_shape(out_type.shape, &out_shape);
  std::optional<ViewGeometry> view =
      view_geometry(op, attrs, {x.sizes(), x.strides(), x.offset()}, out_shape);
  if (view) return make_view(x, std::move(view->sizes), std::move(view->strides), view->offset);
  Tensor c = contiguous_eager(x);  // a reshape the strides cannot express
  return make_view(c, out_shape, contiguous_strides(out_shape), c.offset());
}

}  // namespace kiln
