// Convolution and pooling (include/kiln/ops.h), composed from im2col and col2im (ops.def):
// a convolution is its input's columns times the weight (one product, or one per group); a
// transposed convolution is the weight's transpose times the input, summed back by col2im;
// pooling reduces each window's column. Their derivatives follow from those of the parts
// (col2im and im2col are each other's), and a compiled graph runs the columns as a step
// beside the library product and fuses the bias, the reduction and what follows.
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "eager/dispatch.h"
#include "eager/window_ops.h"
#include "kiln/autograd.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "support/limits.h"
#include "support/text.h"

namespace kiln {

Tensor im2col(const Tensor& x, const WindowGeometry& w, double pad_value) {
  Attrs a;
  set_window_attrs(a, w);
  if (pad_value != 0) a.set("pad_value", pad_value);
  return call_op(Op::im2col, {x}, a);
}

Tensor col2im(const Tensor& cols, const std::vector<int64_t>& output_size,
              const WindowGeometry& w) {
  Attrs a;
  set_window_attrs(a, w);
  a.set_ints("output_size", output_size);
  return call_op(Op::col2im, {cols}, a);
}

namespace {

// A size argument for `s` spatial dims: one entry for all of them, or one each.
std::vector<int64_t> per_dim(const char* op, const char* name, const Shape& v, size_t s) {
  if (v.size() == 1) return std::vector<int64_t>(s, v[0]);
  if (v.size() != s)
    throw ShapeError(fmt::format("{}: {} {} has {} entries, expected 1 or {}", op, name,
                                 shape_string(v), v.size(), s));
  return v;
}

// The input with its batch dim: [N, C, *spatial]; `added` when it came unbatched [C, *spatial].
struct Batched {
  Tensor x;
  bool added = false;
  Tensor restore(const Tensor& t) const { return added ? t.squeeze(0) : t; }
};

Batched batched(const char* op, const Tensor& x, size_t s) {
  if (x.dim() == static_cast<int64_t>(s) + 2) return {x, false};
  if (x.dim() == static_cast<int64_t>(s) + 1) return {x.unsqueeze(0), true};
  throw ShapeError(
      fmt::format("{}: input {} must be [N, C, *spatial] or [C, *spatial] with {} "
                  "spatial dims",
                  op, shape_string(x.sizes()), s));
}

std::vector<int64_t> spatial_of(const Tensor& t) {
  return std::vector<int64_t>(t.sizes().begin() + 2, t.sizes().end());
}

// The geometry checked as the op checks it; errors name `op` and `context` (the shapes and
// arguments the caller gave).
void check_geometry(const char* op, const std::string& context, const WindowGeometry& w) {
  try {
    Attrs a;
    set_window_attrs(a, w);
    window_geometry(a);
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}({}): {}", op, context, e.what()));
  }
}

// The checked geometry's window counts over `image`.
std::vector<int64_t> windows_of(const char* op, const std::string& context, const WindowGeometry& w,
                                const std::vector<int64_t>& image) {
  check_geometry(op, context, w);
  try {
    return window_counts(w, image);
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}({}): {}", op, context, e.what()));
  }
}

// The product of window counts (or of spatial sizes), checked: counts over a padded input
// may multiply past int64 before the op's own rule would refuse them.
int64_t product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) {
    std::optional<int64_t> next = limits::checked_mul(p, x);
    if (!next) throw ShapeError(fmt::format("{} windows overflow", shape_string(v)));
    p = *next;
  }
  return p;
}

std::vector<SymInt> sizes_with(const SymInt& n, int64_t c, const std::vector<int64_t>& spatial) {
  std::vector<SymInt> s{n, SymInt(c)};
  for (int64_t d : spatial) s.emplace_back(d);
  return s;
}

Tensor add_bias(const Tensor& out, const Tensor& bias, int64_t channels, size_t s, const char* op) {
  if (!bias.defined()) return out;
  if (bias.dim() != 1 || bias.sizes()[0] != channels)
    throw ShapeError(fmt::format("{}: bias {} must be [{}] (one per output channel)", op,
                                 shape_string(bias.sizes()), channels));
  Shape shape(s + 1, 1);
  shape[0] = channels;
  return out + bias.reshape(shape);
}

// What both convolutions check and parse first: the batched input, the context errors name,
// the weight's rank (`layout` says its dims) and the windows (padding on both sides).
struct ConvCall {
  Batched b;
  std::string context;
  WindowGeometry w;
};

ConvCall conv_call(const char* op, const char* layout, const Tensor& input, const Tensor& weight,
                   const Shape& stride, const Shape& padding, const Shape& dilation, int64_t groups,
                   size_t s) {
  ConvCall call{batched(op, input, s), "", {}};
  call.context = fmt::format("input {}, weight {}, groups {}", shape_string(call.b.x.sizes()),
                             shape_string(weight.sizes()), groups);
  if (weight.dim() != static_cast<int64_t>(s) + 2)
    throw ShapeError(fmt::format("{}({}): weight must be [{}, *kernel] with {} kernel dims", op,
                                 call.context, layout, s));
  WindowGeometry& w = call.w;
  w.kernel = spatial_of(weight);
  w.stride = per_dim(op, "stride", stride, s);
  w.padding = per_dim(op, "padding", padding, s);
  w.padding_end = w.padding;
  w.dilation = per_dim(op, "dilation", dilation, s);
  return call;
}

Tensor convolution(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias,
                   const Shape& stride, const Shape& padding, const Shape& dilation, int64_t groups,
                   size_t s) {
  ConvCall call = conv_call(op, "out_channels, in_channels / groups", input, weight, stride,
                            padding, dilation, groups, s);
  const Batched& b = call.b;
  const Tensor& x = b.x;
  const std::string& context = call.context;
  const int64_t c = x.sizes()[1], oc = weight.sizes()[0], cg = weight.sizes()[1];
  if (groups < 1 || oc % groups != 0 || cg * groups != c)
    throw ShapeError(fmt::format(
        "{}({}): the input's {} channels must be groups x the weight's in_channels / groups "
        "({}), and its {} out_channels a multiple of groups",
        op, context, c, cg, oc));
  const WindowGeometry& w = call.w;
  const std::vector<int64_t> out = windows_of(op, context, w, spatial_of(x));
  const int64_t k = w.kernel_elements(), l = product(out);
  const SymInt n = x.sym_sizes()[0];
  // A 1x1 kernel without stride or padding reads each position once: its columns are x.
  const bool pointwise =
      k == 1 && std::all_of(w.stride.begin(), w.stride.end(), [](int64_t v) { return v == 1; }) &&
      std::all_of(w.padding.begin(), w.padding.end(), [](int64_t v) { return v == 0; });
  Tensor cols = pointwise ? x.reshape({n, SymInt(c), SymInt(l)}) : im2col(x, w);
  Tensor y = groups == 1 ? matmul(weight.reshape({oc, c * k}), cols)
                         : matmul(weight.reshape({groups, oc / groups, cg * k}),
                                  cols.reshape({n, SymInt(groups), SymInt(cg * k), SymInt(l)}));
  y = y.reshape(sizes_with(n, oc, out));
  return b.restore(add_bias(y, bias, oc, s, op));
}

Tensor transposed_convolution(const char* op, const Tensor& input, const Tensor& weight,
                              const Tensor& bias, const Shape& stride, const Shape& padding,
                              const Shape& output_padding, int64_t groups, const Shape& dilation,
                              size_t s) {
  ConvCall call = conv_call(op, "in_channels, out_channels / groups", input, weight, stride,
                            padding, dilation, groups, s);
  const Batched& b = call.b;
  const Tensor& x = b.x;
  const std::string& context = call.context;
  const int64_t c = x.sizes()[1], cog = weight.sizes()[1];
  if (groups < 1 || weight.sizes()[0] != c || c % groups != 0)
    throw ShapeError(fmt::format(
        "{}({}): the weight's in_channels must be the input's {} channels, a multiple of groups",
        op, context, c));
  const int64_t cig = c / groups, oc = cog * groups;
  WindowGeometry& w = call.w;
  std::vector<int64_t> extra = per_dim(op, "output_padding", output_padding, s);
  check_geometry(op, context, w);
  // The output's size; col2im sums into all of it but the trailing positions no window
  // reaches (output_padding beyond the padding), which are zeros.
  const std::vector<int64_t> in = spatial_of(x);
  std::vector<int64_t> size(s), summed(s), zeros_after(s);
  for (size_t d = 0; d < s; ++d) {
    if (extra[d] < 0 || (extra[d] >= w.stride[d] && extra[d] >= w.dilation[d]))
      throw ShapeError(
          fmt::format("{}({}): output_padding {} must be smaller than the stride or "
                      "the dilation",
                      op, context, shape_string(output_padding)));
    size[d] = (in[d] - 1) * w.stride[d] - 2 * w.padding[d] + w.dilation[d] * (w.kernel[d] - 1) +
              extra[d] + 1;
    if (size[d] < 1)
      throw ShapeError(
          fmt::format("{}({}): the output's spatial dim {} would be {}", op, context, d, size[d]));
    zeros_after[d] = std::max<int64_t>(extra[d] - w.padding[d], 0);
    w.padding_end[d] = std::max<int64_t>(w.padding[d] - extra[d], 0);
    summed[d] = size[d] - zeros_after[d];
  }
  const int64_t k = w.kernel_elements(), l = product(in);
  const SymInt n = x.sym_sizes()[0];
  Tensor cols = groups == 1
                    ? matmul(weight.reshape({c, oc * k}).t(), x.reshape({n, SymInt(c), SymInt(l)}))
                    : matmul(weight.reshape({groups, cig, cog * k}).transpose(1, 2),
                             x.reshape({n, SymInt(groups), SymInt(cig), SymInt(l)}))
                          .reshape({n, SymInt(oc * k), SymInt(l)});
  Tensor y = col2im(cols, summed, w);
  for (size_t d = 0; d < s; ++d) {
    if (zeros_after[d] == 0) continue;
    std::vector<SymInt> shape = y.sym_sizes();
    shape[2 + d] = SymInt(zeros_after[d]);
    y = cat({y, zeros(shape, y.dtype()).to(y.device())}, static_cast<int64_t>(2 + d));
  }
  return b.restore(add_bias(y, bias, oc, s, op));
}

// A pooling's windows: the stride defaults to the kernel; ceil_mode adds a last window that
// starts inside the input or its leading padding (PyTorch's rule), its overhang read as
// padding after the input.
struct Pooling {
  WindowGeometry w;
  std::vector<int64_t> out;
};

Pooling pooling(const char* op, const Tensor& x, const Shape& kernel, const Shape& stride,
                const Shape& padding, const Shape& dilation, bool ceil_mode, size_t s) {
  Pooling p;
  WindowGeometry& w = p.w;
  w.kernel = per_dim(op, "kernel_size", kernel, s);
  w.stride = stride.empty() ? w.kernel : per_dim(op, "stride", stride, s);
  w.padding = per_dim(op, "padding", padding, s);
  w.dilation = per_dim(op, "dilation", dilation, s);
  const std::string context =
      fmt::format("input {}, kernel_size {}, stride {}, padding {}", shape_string(x.sizes()),
                  shape_string(w.kernel), shape_string(w.stride), shape_string(w.padding));
  const std::vector<int64_t> in = spatial_of(x);
  w.padding_end = w.padding;
  check_geometry(op, context, w);
  for (size_t d = 0; d < s; ++d) {
    if (w.padding[d] > w.kernel[d] / 2)
      throw ShapeError(
          fmt::format("{}({}): padding must be at most half the kernel size", op, context));
    const int64_t span = w.dilation[d] * (w.kernel[d] - 1) + 1;
    const int64_t room = in[d] + 2 * w.padding[d] - span;
    if (room < 0)
      throw ShapeError(
          fmt::format("{}({}): spatial dim {} (padded {}) is smaller than the "
                      "window's span {}",
                      op, context, d, in[d] + 2 * w.padding[d], span));
    int64_t o = (ceil_mode ? room + w.stride[d] - 1 : room) / w.stride[d] + 1;
    if (ceil_mode && (o - 1) * w.stride[d] >= in[d] + w.padding[d]) --o;
    w.padding_end[d] = std::max<int64_t>((o - 1) * w.stride[d] + span - in[d] - w.padding[d], 0);
    p.out.push_back(o);
  }
  return p;
}

void require_floating(const char* op, const Tensor& x) {
  if (!is_floating(x.dtype()))
    throw ShapeError(fmt::format("{}: needs a floating input, got {}; cast with .to(f32)", op,
                                 dtype_name(x.dtype())));
}

// Every plane as its own one-channel image: [N*C, 1, *spatial].
Tensor planes(const Tensor& x) {
  std::vector<SymInt> shape{SymInt(-1), SymInt(1)};
  for (int64_t d : spatial_of(x)) shape.emplace_back(d);
  return x.reshape(shape);
}

std::tuple<Tensor, Tensor> max_pool(const char* op, const Tensor& input, const Shape& kernel,
                                    const Shape& stride, const Shape& padding,
                                    const Shape& dilation, bool ceil_mode, bool with_indices,
                                    size_t s) {
  require_floating(op, input);
  Batched b = batched(op, input, s);
  Pooling p = pooling(op, b.x, kernel, stride, padding, dilation, ceil_mode, s);
  const SymInt n = b.x.sym_sizes()[0];
  const int64_t c = b.x.sizes()[1];
  Tensor cols = im2col(planes(b.x), p.w, -std::numeric_limits<double>::infinity());
  // Without a gradient or indices to give, each window's maximum is a reduction (one fused
  // kernel when compiled). Otherwise the first maximum (as PyTorch's kernels pick it) is
  // gathered, so that the gradient goes to that one position and not spread over ties.
  if (!with_indices && !(is_grad_enabled() && input.requires_grad()))
    return {b.restore(cols.amax({1}).reshape(sizes_with(n, c, p.out))), Tensor()};
  Tensor pick = cols.argmax(1, true);
  Tensor values = gather(cols, 1, pick).reshape(sizes_with(n, c, p.out));
  if (!with_indices) return {b.restore(values), Tensor()};
  // Each window position's flat index in its plane, through the same windows.
  const std::vector<int64_t> in = spatial_of(b.x);
  std::vector<SymInt> plane{SymInt(1), SymInt(1)};
  for (int64_t d : in) plane.emplace_back(d);
  Tensor positions = im2col(arange(product(in)).reshape(plane), p.w, -1);
  Tensor indices = gather(positions.expand({cols.sym_sizes()[0], SymInt(-1), SymInt(-1)}), 1, pick)
                       .reshape(sizes_with(n, c, p.out));
  return {b.restore(values), b.restore(indices)};
}

Tensor avg_pool(const char* op, const Tensor& input, const Shape& kernel, const Shape& stride,
                const Shape& padding, bool ceil_mode, bool count_include_pad,
                std::optional<int64_t> divisor_override, size_t s) {
  require_floating(op, input);
  Batched b = batched(op, input, s);
  Pooling p = pooling(op, b.x, kernel, stride, padding, {1}, ceil_mode, s);
  if (divisor_override && *divisor_override == 0)
    throw ShapeError(fmt::format("{}: divisor_override must not be 0", op));
  const SymInt n = b.x.sym_sizes()[0];
  const int64_t c = b.x.sizes()[1];
  Tensor sums = im2col(planes(b.x), p.w).sum({1});
  Tensor divisor;
  if (divisor_override) {
    divisor = full({}, static_cast<double>(*divisor_override), sums.dtype()).to(sums.device());
  } else {
    // Each window's count: of the positions it covers in the input, or in the input and its
    // padding (not the ceil_mode overhang beyond it), as PyTorch counts them.
    std::vector<int64_t> image = spatial_of(b.x);
    WindowGeometry counted = p.w;
    if (count_include_pad) {
      for (size_t d = 0; d < s; ++d) {
        image[d] += 2 * p.w.padding[d];
        counted.padding_end[d] = std::max<int64_t>(p.w.padding_end[d] - p.w.padding[d], 0);
        counted.padding[d] = 0;
      }
    }
    std::vector<SymInt> shape{SymInt(1), SymInt(1)};
    for (int64_t d : image) shape.emplace_back(d);
    divisor = im2col(ones(shape, sums.dtype()), counted).sum({1}).to(sums.device());
  }
  return b.restore((sums / divisor).reshape(sizes_with(n, c, p.out)));
}

}  // namespace

Tensor unfold(const Tensor& x, const Shape& kernel_size, const Shape& dilation,
              const Shape& padding, const Shape& stride) {
  Batched b = batched("unfold", x, 2);
  WindowGeometry w;
  w.kernel = per_dim("unfold", "kernel_size", kernel_size, 2);
  w.dilation = per_dim("unfold", "dilation", dilation, 2);
  w.padding = per_dim("unfold", "padding", padding, 2);
  w.padding_end = w.padding;
  w.stride = per_dim("unfold", "stride", stride, 2);
  windows_of("unfold", fmt::format("input {}", shape_string(b.x.sizes())), w, spatial_of(b.x));
  return b.restore(im2col(b.x, w));
}

Tensor fold(const Tensor& x, const Shape& output_size, const Shape& kernel_size,
            const Shape& dilation, const Shape& padding, const Shape& stride) {
  if (x.dim() != 2 && x.dim() != 3)
    throw ShapeError(
        fmt::format("fold: input {} must be [N, C*K, L] or [C*K, L]", shape_string(x.sizes())));
  const bool added = x.dim() == 2;
  WindowGeometry w;
  w.kernel = per_dim("fold", "kernel_size", kernel_size, 2);
  w.dilation = per_dim("fold", "dilation", dilation, 2);
  w.padding = per_dim("fold", "padding", padding, 2);
  w.padding_end = w.padding;
  w.stride = per_dim("fold", "stride", stride, 2);
  Tensor y = col2im(added ? x.unsqueeze(0) : x, per_dim("fold", "output_size", output_size, 2), w);
  return added ? y.squeeze(0) : y;
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Shape& stride,
              const Shape& padding, const Shape& dilation, int64_t groups) {
  return convolution("conv1d", x, weight, bias, stride, padding, dilation, groups, 1);
}
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Shape& stride,
              const Shape& padding, const Shape& dilation, int64_t groups) {
  return convolution("conv2d", x, weight, bias, stride, padding, dilation, groups, 2);
}
Tensor conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Shape& stride,
              const Shape& padding, const Shape& dilation, int64_t groups) {
  return convolution("conv3d", x, weight, bias, stride, padding, dilation, groups, 3);
}
Tensor conv_transpose1d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Shape& stride, const Shape& padding, const Shape& output_padding,
                        int64_t groups, const Shape& dilation) {
  return transposed_convolution("conv_transpose1d", x, weight, bias, stride, padding,
                                output_padding, groups, dilation, 1);
}
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Shape& stride, const Shape& padding, const Shape& output_padding,
                        int64_t groups, const Shape& dilation) {
  return transposed_convolution("conv_transpose2d", x, weight, bias, stride, padding,
                                output_padding, groups, dilation, 2);
}
Tensor conv_transpose3d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Shape& stride, const Shape& padding, const Shape& output_padding,
                        int64_t groups, const Shape& dilation) {
  return transposed_convolution("conv_transpose3d", x, weight, bias, stride, padding,
                                output_padding, groups, dilation, 3);
}

Tensor max_pool1d(const Tensor& x, const Shape& kernel_size, const Shape& stride,
                  const Shape& padding, const Shape& dilation, bool ceil_mode) {
  return std::get<0>(
      max_pool("max_pool1d", x, kernel_size, stride, padding, dilation, ceil_mode, false, 1));
}
Tensor max_pool2d(const Tensor& x, const Shape& kernel_size, const Shape& stride,
                  const Shape& padding, const Shape& dilation, bool ceil_mode) {
  return std::get<0>(
      max_pool("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode, false, 2));
}
std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& x, const Shape& kernel_size,
                                                   const Shape& stride, const Shape& padding,
                                                   const Shape& dilation, bool ceil_mode) {
  return max_pool("max_pool1d_with_indices", x, kernel_size, stride, padding, dilation, ceil_mode,
                  true, 1);
}
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const Shape& kernel_size,
                                                   const Shape& stride, const Shape& padding,
                                                   const Shape& dilation, bool ceil_mode) {
  return max_pool("max_pool2d_with_indices", x, kernel_size, stride, padding, dilation, ceil_mode,
                  true, 2);
}
Tensor avg_pool1d(const Tensor& x, const Shape& kernel_size, const Shape& stride,
                  const Shape& padding, bool ceil_mode, bool count_include_pad) {
  return avg_pool("avg_pool1d", x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  std::nullopt, 1);
}
Tensor avg_pool2d(const Tensor& x, const Shape& kernel_size, const Shape& stride,
                  const Shape& padding, bool ceil_mode, bool count_include_pad,
                  std::optional<int64_t> divisor_override) {
  return avg_pool("avg_pool2d", x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                  divisor_override, 2);
}

}  // namespace kiln
