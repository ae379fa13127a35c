// Tensor operations, named after PyTorch's: torch.X(...) is kiln::X(...). Each runs at once
// on the eager interpreter, or is recorded into the graph while compile() traces.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

// Unary.
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tan(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
// approximate: "none" (erf form) or "tanh".
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor erf(const Tensor& x);
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
Tensor round(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor isnan(const Tensor& x);
Tensor logical_not(const Tensor& x);

// Binary, broadcasting, with PyTorch's type promotion; each also takes a Scalar either side.
#define KILN_DECLARE_BINARY(name)                \
  Tensor name(const Tensor& a, const Tensor& b); \
  Tensor name(const Tensor& a, Scalar b);        \
  Tensor name(Scalar a, const Tensor& b);
KILN_DECLARE_BINARY(add)
KILN_DECLARE_BINARY(sub)
KILN_DECLARE_BINARY(mul)
KILN_DECLARE_BINARY(div)
KILN_DECLARE_BINARY(pow)
KILN_DECLARE_BINARY(maximum)
KILN_DECLARE_BINARY(minimum)
KILN_DECLARE_BINARY(atan2)
KILN_DECLARE_BINARY(fmod)
KILN_DECLARE_BINARY(remainder)
KILN_DECLARE_BINARY(eq)
KILN_DECLARE_BINARY(ne)
KILN_DECLARE_BINARY(lt)
KILN_DECLARE_BINARY(le)
KILN_DECLARE_BINARY(gt)
KILN_DECLARE_BINARY(ge)
KILN_DECLARE_BINARY(logical_and)
KILN_DECLARE_BINARY(logical_or)
KILN_DECLARE_BINARY(logical_xor)
#undef KILN_DECLARE_BINARY

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
// x with `value` where `mask` (bool, broadcast to x) is true.
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value);
// A copy of `self` with `values` written where `indices` point, as torch.index_put:
// indices[d] (i32/i64, negative from the end; the tensors broadcast together) index dim d of
// the first indices.size() dims, and `values` (self's dtype) broadcast to the picked shape
// (index shape + the remaining dims). accumulate adds instead, duplicates included; without
// it, of duplicate positions the last write wins.
Tensor index_put(const Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                 bool accumulate = false);
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max);

// Reductions over `dims` (empty: all dims); negative dims count from the end.
Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor prod(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor var(const Tensor& x, const Shape& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Shape& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Shape& dims, bool keepdim = false);

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Normalizes over the last normalized_shape.size() dims; weight and bias may be undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);

// torch.nn.functional.rms_norm: x / sqrt(mean(x^2 over the last normalized_shape.size() dims)
// + eps) * weight, computed in f32 for f16/bf16 inputs (f64 for f64) and cast back before the
// weight; eps defaults to that math type's machine epsilon. Written with the ops above, so a
// compiled graph fuses it into one row kernel and autograd differentiates it.
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                std::optional<double> eps = std::nullopt);

// torch.matmul's rank cases (1-D dot, matrix-vector, batched with broadcasting); OpenBLAS.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
// x @ weight^T + bias; bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});
// softmax(q @ k^T * scale, -1) @ v over q [..., T, D], k [..., S, D], v [..., S, Dv] with
// the same batch dims; scale defaults to 1/sqrt(D). One fused kernel on the GPU (D, Dv <= 64
// in f32, <= 128 in f16 and bf16).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    std::optional<double> scale = std::nullopt);
// Like torch.set_float32_matmul_precision: "highest" (the default) keeps float32 matrix
// products in float32; "high" lets GPU products round their inputs to TF32 on the tensor
// cores (about 1e-3 relative error, several times faster).
void set_float32_matmul_precision(std::string_view precision);

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor embedding(const Tensor& indices, const Tensor& weight);
Tensor adaptive_avg_pool2d(const Tensor& x, const Shape& output_size);

// torch.nn.functional.pad: `pad` holds (before, after) pairs, the last dim's first; modes
// "constant" (value, default 0; negative pads crop), "reflect" (pads shorter than the dim),
// "replicate", "circular" (pads at most the dim).
Tensor pad(const Tensor& x, const Shape& pad, const std::string& mode = "constant",
           std::optional<double> value = std::nullopt);

// torch.flip, torch.roll (no dims: the flattened tensor rolled), torch.tril, torch.triu.
Tensor flip(const Tensor& x, const Shape& dims);
Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims = {});
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);

// Normalizations over channels, as torch.nn.functional's (x [N, C, ...]; per-channel weight
// and bias optional). In training mode batch_norm uses the batch's statistics and, when
// given, updates running_mean and running_var in place (momentum-weighted; the unbiased
// variance); otherwise it uses them.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                  double momentum = 0.1, double eps = 1e-5);
Tensor instance_norm(const Tensor& x, const Tensor& running_mean = {},
                     const Tensor& running_var = {}, const Tensor& weight = {},
                     const Tensor& bias = {}, bool use_input_stats = true, double momentum = 0.1,
                     double eps = 1e-5);
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);
Tensor local_response_norm(const Tensor& x, int64_t size, double alpha = 1e-4, double beta = 0.75,
                           double k = 1.0);

// Convolution and pooling, with torch.nn.functional's names, argument orders and defaults. A
// size argument has one entry per spatial dim or one for all of them; x is [N, C, *spatial]
// or unbatched [C, *spatial]; an undefined bias is none. They are composed from sliding
// windows (im2col, col2im) and matrix products, so they have derivatives and compile (the
// windows a step, the product a library call, bias and reductions fused). On CUDA tensors the
// windows are computed on the host for now (two copies); the products run in cuBLASLt.
// F.unfold: [N, C, H, W] → [N, C*kh*kw, L], one column per window.
Tensor unfold(const Tensor& x, const Shape& kernel_size, const Shape& dilation = {1},
              const Shape& padding = {0}, const Shape& stride = {1});
// F.fold: the columns of unfold summed back into [N, C, *output_size].
Tensor fold(const Tensor& x, const Shape& output_size, const Shape& kernel_size,
            const Shape& dilation = {1}, const Shape& padding = {0}, const Shape& stride = {1});
// weight [out_channels, in_channels / groups, *kernel]; padding on both sides.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
              const Shape& stride = {1}, const Shape& padding = {0}, const Shape& dilation = {1},
              int64_t groups = 1);
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
              const Shape& stride = {1}, const Shape& padding = {0}, const Shape& dilation = {1},
              int64_t groups = 1);
Tensor conv3d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
              const Shape& stride = {1}, const Shape& padding = {0}, const Shape& dilation = {1},
              int64_t groups = 1);
// weight [in_channels, out_channels / groups, *kernel]; output_padding (smaller than the
// stride or the dilation) lengthens the output at its end.
Tensor conv_transpose1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
                        const Shape& stride = {1}, const Shape& padding = {0},
                        const Shape& output_padding = {0}, int64_t groups = 1,
                        const Shape& dilation = {1});
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
                        const Shape& stride = {1}, const Shape& padding = {0},
                        const Shape& output_padding = {0}, int64_t groups = 1,
                        const Shape& dilation = {1});
Tensor conv_transpose3d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
                        const Shape& stride = {1}, const Shape& padding = {0},
                        const Shape& output_padding = {0}, int64_t groups = 1,
                        const Shape& dilation = {1});
// An empty stride is the kernel size. Padding is at most half the kernel and reads as -inf;
// the gradient goes to each window's first maximum, as PyTorch's. The indices are flat
// positions in each input plane (i64).
Tensor max_pool1d(const Tensor& x, const Shape& kernel_size, const Shape& stride = {},
                  const Shape& padding = {0}, const Shape& dilation = {1}, bool ceil_mode = false);
Tensor max_pool2d(const Tensor& x, const Shape& kernel_size, const Shape& stride = {},
                  const Shape& padding = {0}, const Shape& dilation = {1}, bool ceil_mode = false);
std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& x, const Shape& kernel_size,
                                                   const Shape& stride = {},
                                                   const Shape& padding = {0},
                                                   const Shape& dilation = {1},
                                                   bool ceil_mode = false);
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const Shape& kernel_size,
                                                   const Shape& stride = {},
                                                   const Shape& padding = {0},
                                                   const Shape& dilation = {1},
                                                   bool ceil_mode = false);
Tensor avg_pool1d(const Tensor& x, const Shape& kernel_size, const Shape& stride = {},
                  const Shape& padding = {0}, bool ceil_mode = false,
                  bool count_include_pad = true);
Tensor avg_pool2d(const Tensor& x, const Shape& kernel_size, const Shape& stride = {},
                  const Shape& padding = {0}, bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);

// Random (the generator of manual_seed; fresh numbers at every call, compiled or not).
// 1 with probability p (each element of `p`, or the one `p`), in p's (x's) dtype.
Tensor bernoulli(const Tensor& p);
Tensor bernoulli(const Tensor& x, double p);
// torch.nn.functional.dropout: with `train`, zeroes each element with probability p and
// scales the rest by 1 / (1 - p); x itself otherwise.
Tensor dropout(const Tensor& x, double p = 0.5, bool train = true);

// Operators, between tensors and with scalars of any arithmetic type.
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, Scalar b);
Tensor operator-(const Tensor& a, Scalar b);
Tensor operator*(const Tensor& a, Scalar b);
Tensor operator/(const Tensor& a, Scalar b);
Tensor operator+(Scalar a, const Tensor& b);
Tensor operator-(Scalar a, const Tensor& b);
Tensor operator*(Scalar a, const Tensor& b);
Tensor operator/(Scalar a, const Tensor& b);
// In-place: add_, sub_, mul_, div_ (they return the tensor written).
const Tensor& operator+=(const Tensor& a, const Tensor& b);
const Tensor& operator-=(const Tensor& a, const Tensor& b);
const Tensor& operator*=(const Tensor& a, const Tensor& b);
const Tensor& operator/=(const Tensor& a, const Tensor& b);
const Tensor& operator+=(const Tensor& a, Scalar b);
const Tensor& operator-=(const Tensor& a, Scalar b);
const Tensor& operator*=(const Tensor& a, Scalar b);
const Tensor& operator/=(const Tensor& a, Scalar b);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, Scalar b);
Tensor operator!=(const Tensor& a, Scalar b);
Tensor operator<(const Tensor& a, Scalar b);
Tensor operator<=(const Tensor& a, Scalar b);
Tensor operator>(const Tensor& a, Scalar b);
Tensor operator>=(const Tensor& a, Scalar b);

// With a SymFloat (include/kiln/sym_float.h) on either side: a graph scalar while compile()
// traces one (acting as a number does in type promotion), else its value as a Scalar.
#define KILN_SYMFLOAT_BINARY(name)                                                  \
  template <class S, detail::IfSymFloat<S> = 0>                                     \
  Tensor name(const Tensor& a, const S& b) {                                        \
    return b.is_symbolic() ? name(a, b.operand_for(a)) : name(a, Scalar(b.hint())); \
  }                                                                                 \
  template <class S, detail::IfSymFloat<S> = 0>                                     \
  Tensor name(const S& a, const Tensor& b) {                                        \
    return a.is_symbolic() ? name(a.operand_for(b), b) : name(Scalar(a.hint()), b); \
  }
KILN_SYMFLOAT_BINARY(add)
KILN_SYMFLOAT_BINARY(sub)
KILN_SYMFLOAT_BINARY(mul)
KILN_SYMFLOAT_BINARY(div)
KILN_SYMFLOAT_BINARY(pow)
KILN_SYMFLOAT_BINARY(maximum)
KILN_SYMFLOAT_BINARY(minimum)
KILN_SYMFLOAT_BINARY(atan2)
KILN_SYMFLOAT_BINARY(fmod)
KILN_SYMFLOAT_BINARY(remainder)
KILN_SYMFLOAT_BINARY(eq)
KILN_SYMFLOAT_BINARY(ne)
KILN_SYMFLOAT_BINARY(lt)
KILN_SYMFLOAT_BINARY(le)
KILN_SYMFLOAT_BINARY(gt)
KILN_SYMFLOAT_BINARY(ge)
#undef KILN_SYMFLOAT_BINARY

#define KILN_SYMFLOAT_OPERATOR(op, name)            \
  template <class S, detail::IfSymFloat<S> = 0>     \
  Tensor operator op(const Tensor& a, const S& b) { \
    return name(a, b);                              \
  }                                                 \
  template <class S, detail::IfSymFloat<S> = 0>     \
  Tensor operator op(const S& a, const Tensor& b) { \
    return name(a, b);                              \
  }
KILN_SYMFLOAT_OPERATOR(+, add)
KILN_SYMFLOAT_OPERATOR(-, sub)
KILN_SYMFLOAT_OPERATOR(*, mul)
KILN_SYMFLOAT_OPERATOR(/, div)
KILN_SYMFLOAT_OPERATOR(==, eq)
KILN_SYMFLOAT_OPERATOR(!=, ne)
KILN_SYMFLOAT_OPERATOR(<, lt)
KILN_SYMFLOAT_OPERATOR(<=, le)
KILN_SYMFLOAT_OPERATOR(>, gt)
KILN_SYMFLOAT_OPERATOR(>=, ge)
#undef KILN_SYMFLOAT_OPERATOR

template <class S, detail::IfSymFloat<S> = 0>
const Tensor& operator+=(const Tensor& a, const S& b) {
  return a.add_(b);
}
template <class S, detail::IfSymFloat<S> = 0>
const Tensor& operator-=(const Tensor& a, const S& b) {
  return a.sub_(b);
}
template <class S, detail::IfSymFloat<S> = 0>
const Tensor& operator*=(const Tensor& a, const S& b) {
  return a.mul_(b);
}
template <class S, detail::IfSymFloat<S> = 0>
const Tensor& operator/=(const Tensor& a, const S& b) {
  return a.div_(b);
}
template <class S, detail::IfSymFloat<S> = 0>
Tensor masked_fill(const Tensor& x, const Tensor& mask, const S& value) {
  return x.masked_fill(mask, value);
}
template <class S, detail::IfSymFloat<S> = 0>
Tensor clamp(const Tensor& x, const S& min, const S& max) {
  return x.clamp(min, max);
}
template <class S, detail::IfSymFloat<S> = 0>
Tensor full(const SymIntList& size, const S& value, DType dtype = DType::f32) {
  return value.is_symbolic() ? value.tensor().to(dtype).expand(size).contiguous()
                             : full(size, Scalar(value.hint()), dtype);
}

}  // namespace kiln
