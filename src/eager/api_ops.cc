// The public op functions, Tensor's math methods and the operators: each builds the op's
// attributes and goes through call_op(), so eager runs and tracing share one path.
#include <fmt/format.h>

#include <limits>

#include "eager/dispatch.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "support/text.h"

namespace kiln {

namespace {

Tensor unary(Op op, const Tensor& x) { return call_op(op, {x}); }

Tensor with_scalar(Op op, const Tensor& t, Scalar s, bool scalar_first) {
  Attrs a;
  a.set_scalar("scalar", s);
  if (scalar_first) a.set("scalar_first", true);
  return call_op(op, {t}, a);
}

Tensor reduce(Op op, const Tensor& x, const Shape& dims, bool keepdim) {
  Attrs a;
  a.set_ints("dims", dims).set("keepdim", keepdim);
  return call_op(op, {x}, a);
}

Tensor arg_reduce(Op op, const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  Attrs a;
  if (dim) a.set("dim", *dim);
  a.set("keepdim", keepdim);
  return call_op(op, {x}, a);
}

Tensor variance(Op op, const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  Attrs a;
  a.set_ints("dims", dims).set("keepdim", keepdim).set("correction", correction);
  return call_op(op, {x}, a);
}

Tensor with_dim(Op op, const std::vector<Tensor>& in, int64_t dim) {
  Attrs a;
  a.set("dim", dim);
  return call_op(op, in, a);
}

}  // namespace

#define KILN_DEFINE_UNARY(name)                               \
  Tensor name(const Tensor& x) { return unary(Op::name, x); } \
  Tensor Tensor::name() const { return unary(Op::name, *this); }
KILN_DEFINE_UNARY(neg)
KILN_DEFINE_UNARY(abs)
KILN_DEFINE_UNARY(exp)
KILN_DEFINE_UNARY(log)
KILN_DEFINE_UNARY(log1p)
KILN_DEFINE_UNARY(sqrt)
KILN_DEFINE_UNARY(rsqrt)
KILN_DEFINE_UNARY(sin)
KILN_DEFINE_UNARY(cos)
KILN_DEFINE_UNARY(tan)
KILN_DEFINE_UNARY(tanh)
KILN_DEFINE_UNARY(sigmoid)
KILN_DEFINE_UNARY(relu)
KILN_DEFINE_UNARY(erf)
KILN_DEFINE_UNARY(floor)
KILN_DEFINE_UNARY(ceil)
KILN_DEFINE_UNARY(round)
KILN_DEFINE_UNARY(sign)
KILN_DEFINE_UNARY(reciprocal)
KILN_DEFINE_UNARY(isnan)
KILN_DEFINE_UNARY(logical_not)
#undef KILN_DEFINE_UNARY

Tensor gelu(const Tensor& x, const std::string& approximate) {
  Attrs a;
  if (approximate != "none") a.set("approximate", approximate);
  return call_op(Op::gelu, {x}, a);
}

#define KILN_DEFINE_BINARY(name)                                                        \
  Tensor name(const Tensor& a, const Tensor& b) { return call_op(Op::name, {a, b}); }   \
  Tensor name(const Tensor& a, Scalar b) { return with_scalar(Op::name, a, b, false); } \
  Tensor name(Scalar a, const Tensor& b) { return with_scalar(Op::name, b, a, true); }
KILN_DEFINE_BINARY(add)
KILN_DEFINE_BINARY(sub)
KILN_DEFINE_BINARY(mul)
KILN_DEFINE_BINARY(div)
KILN_DEFINE_BINARY(pow)
KILN_DEFINE_BINARY(maximum)
KILN_DEFINE_BINARY(minimum)
KILN_DEFINE_BINARY(atan2)
KILN_DEFINE_BINARY(fmod)
KILN_DEFINE_BINARY(remainder)
KILN_DEFINE_BINARY(eq)
KILN_DEFINE_BINARY(ne)
KILN_DEFINE_BINARY(lt)
KILN_DEFINE_BINARY(le)
KILN_DEFINE_BINARY(gt)
KILN_DEFINE_BINARY(ge)
KILN_DEFINE_BINARY(logical_and)
KILN_DEFINE_BINARY(logical_or)
KILN_DEFINE_BINARY(logical_xor)
#undef KILN_DEFINE_BINARY

Tensor Tensor::pow(const Tensor& exponent) const { return kiln::pow(*this, exponent); }
Tensor Tensor::pow(Scalar exponent) const { return kiln::pow(*this, exponent); }
Tensor Tensor::matmul(const Tensor& other) const { return kiln::matmul(*this, other); }

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  return call_op(Op::where, {condition, a, b});
}

Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) {
  Attrs a;
  if (min) a.set_scalar("min", *min);
  if (max) a.set_scalar("max", *max);
  return call_op(Op::clamp, {x}, a);
}
Tensor Tensor::clamp(std::optional<Scalar> min, std::optional<Scalar> max) const {
  return kiln::clamp(*this, min, max);
}

#define KILN_DEFINE_REDUCTION(name)                               \
  Tensor name(const Tensor& x, const Shape& dims, bool keepdim) { \
    return reduce(Op::name, x, dims, keepdim);                    \
  }                                                               \
  Tensor Tensor::name(const Shape& dims, bool keepdim) const {    \
    return reduce(Op::name, *this, dims, keepdim);                \
  }
KILN_DEFINE_REDUCTION(sum)
KILN_DEFINE_REDUCTION(mean)
KILN_DEFINE_REDUCTION(amax)
KILN_DEFINE_REDUCTION(amin)
KILN_DEFINE_REDUCTION(logsumexp)
#undef KILN_DEFINE_REDUCTION

Tensor prod(const Tensor& x, int64_t dim, bool keepdim) {
  return reduce(Op::prod, x, {dim}, keepdim);
}
Tensor Tensor::prod(int64_t dim, bool keepdim) const { return kiln::prod(*this, dim, keepdim); }
Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_reduce(Op::argmax, x, dim, keepdim);
}
Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_reduce(Op::argmin, x, dim, keepdim);
}
Tensor Tensor::argmax(std::optional<int64_t> dim, bool keepdim) const {
  return arg_reduce(Op::argmax, *this, dim, keepdim);
}
Tensor Tensor::argmin(std::optional<int64_t> dim, bool keepdim) const {
  return arg_reduce(Op::argmin, *this, dim, keepdim);
}
Tensor var(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  return variance(Op::var, x, dims, correction, keepdim);
}
Tensor std(const Tensor& x, const Shape& dims, int64_t correction, bool keepdim) {
  return variance(Op::std, x, dims, correction, keepdim);
}
Tensor Tensor::var(const Shape& dims, int64_t correction, bool keepdim) const {
  return variance(Op::var, *this, dims, correction, keepdim);
}
Tensor Tensor::std(const Shape& dims, int64_t correction, bool keepdim) const {
  return variance(Op::std, *this, dims, correction, keepdim);
}

Tensor softmax(const Tensor& x, int64_t dim) { return with_dim(Op::softmax, {x}, dim); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return with_dim(Op::log_softmax, {x}, dim); }
Tensor Tensor::softmax(int64_t dim) const { return kiln::softmax(*this, dim); }
Tensor Tensor::log_softmax(int64_t dim) const { return kiln::log_softmax(*this, dim); }

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  Attrs a;
  a.set_ints("normalized_shape", normalized_shape).set("eps", eps);
  std::vector<Tensor> in{x};
  if (weight.defined() || bias.defined())
    in.push_back(weight.defined() ? weight : ones(normalized_shape, x.dtype()));
  if (bias.defined()) in.push_back(bias);
  return call_op(Op::layer_norm, in, a);
}

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                std::optional<double> eps) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool trailing = k <= x.dim();
  for (int64_t i = 0; trailing && i < k; ++i)
    trailing = x.size(x.dim() - k + i) == normalized_shape[static_cast<size_t>(i)];
  if (!trailing)
    throw ShapeError(fmt::format("rms_norm: normalized_shape {} is not the trailing dims of {}",
                                 shape_string(normalized_shape), shape_string(x.sizes())));
  if (!is_floating(x.dtype()))
    throw Error(
        fmt::format("rms_norm: expected a floating-point input, got {}", dtype_name(x.dtype())));
  if (weight.defined() && weight.sizes() != normalized_shape)
    throw ShapeError(fmt::format("rms_norm: weight of shape {} for normalized_shape {}",
                                 shape_string(weight.sizes()), shape_string(normalized_shape)));
  // As ATen's composite: computed in the input's math type (f32 for f16 and bf16), cast back,
  // then scaled by the weight; eps defaults to that math type's machine epsilon.
  const DType math = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
  const double epsilon = eps                  ? *eps
                         : math == DType::f64 ? std::numeric_limits<double>::epsilon()
                                              : double{std::numeric_limits<float>::epsilon()};
  Shape dims;
  for (int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  Tensor up = x.dtype() == math ? x : x.to(math);
  Tensor y = (up * ((up * up).mean(dims, true) + epsilon).rsqrt()).to(x.dtype());
  return weight.defined() ? y * weight : y;
}

Tensor matmul(const Tensor& a, const Tensor& b) { return call_op(Op::matmul, {a, b}); }
Tensor bmm(const Tensor& a, const Tensor& b) { return call_op(Op::bmm, {a, b}); }
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (bias.defined()) return call_op(Op::linear, {x, weight, bias});
  return call_op(Op::linear, {x, weight});
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    std::optional<double> scale) {
  if (q.dim() < 1) throw ShapeError("scaled_dot_product_attention: q must have a last dim");
  Attrs a;
  a.set("scale", scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  return call_op(Op::attention, {q, k, v}, a);
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw ShapeError("cat: needs at least one tensor");
  return with_dim(Op::cat, tensors, dim);
}
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) throw ShapeError("stack: needs at least one tensor");
  return with_dim(Op::stack, tensors, dim);
}
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  return with_dim(Op::index_select, {x, index}, dim);
}
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  return with_dim(Op::gather, {x, index}, dim);
}
Tensor embedding(const Tensor& indices, const Tensor& weight) {
  return call_op(Op::embedding, {indices, weight});
}
Tensor adaptive_avg_pool2d(const Tensor& x, const Shape& output_size) {
  Attrs a;
  a.set_ints("output_size", output_size);
  return call_op(Op::adaptive_avg_pool2d, {x}, a);
}

Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, Scalar b) { return add(a, b); }
Tensor operator-(const Tensor& a, Scalar b) { return sub(a, b); }
Tensor operator*(const Tensor& a, Scalar b) { return mul(a, b); }
Tensor operator/(const Tensor& a, Scalar b) { return div(a, b); }
Tensor operator+(Scalar a, const Tensor& b) { return add(a, b); }
Tensor operator-(Scalar a, const Tensor& b) { return sub(a, b); }
Tensor operator*(Scalar a, const Tensor& b) { return mul(a, b); }
Tensor operator/(Scalar a, const Tensor& b) { return div(a, b); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, Scalar b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, Scalar b) { return ne(a, b); }
Tensor operator<(const Tensor& a, Scalar b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, Scalar b) { return le(a, b); }
Tensor operator>(const Tensor& a, Scalar b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, Scalar b) { return ge(a, b); }

}  // namespace kiln
