// Reference kernels for unary ops and clamp. Integer and bool inputs of floating ops were
// already converted to f32 (the type rule); f16/bf16 compute in f32 and round once.
#include <cmath>

#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "eager/pointwise.h"
#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

template <class C>
C wrap_neg(C x) {
  if constexpr (std::is_integral_v<C> && !std::is_same_v<C, bool>) {
    return static_cast<C>(-static_cast<std::make_unsigned_t<C>>(x));  // wraps like PyTorch
  } else {
    return -x;
  }
}

template <class T>
void unary_kernel(Op op, const Attrs& attrs, const StridedLoop& loop) {
  using C = compute_t<T>;
  switch (op) {
    case Op::neg:
      return map1<T, T>(loop, [](C x) { return wrap_neg(x); });
    case Op::abs:
      return map1<T, T>(loop, [](C x) { return x < C(0) ? wrap_neg(x) : x; });
    case Op::relu:
      return map1<T, T>(loop, [](C x) { return x < C(0) ? C(0) : x; });
    case Op::sign:
      return map1<T, T>(loop, [](C x) { return static_cast<C>((C(0) < x) - (x < C(0))); });
    case Op::isnan:
      return map1<bool, T>(loop, [](C x) {
        if constexpr (std::is_floating_point_v<C>)
          return x != x;
        else
          return false;
      });
    case Op::logical_not:
      return map1<bool, T>(loop, [](C x) { return !(x != C(0)); });
    default:
      break;
  }
  if constexpr (std::is_floating_point_v<C>) {
    switch (op) {
      case Op::floor:
        return map1<T, T>(loop, [](C x) { return std::floor(x); });
      case Op::ceil:
        return map1<T, T>(loop, [](C x) { return std::ceil(x); });
      case Op::round:
        return map1<T, T>(loop, [](C x) { return std::nearbyint(x); });
      case Op::exp:
        return map1<T, T>(loop, [](C x) { return std::exp(x); });
      case Op::log:
        return map1<T, T>(loop, [](C x) { return std::log(x); });
      case Op::log1p:
        return map1<T, T>(loop, [](C x) { return std::log1p(x); });
      case Op::sqrt:
        return map1<T, T>(loop, [](C x) { return std::sqrt(x); });
      case Op::rsqrt:
        return map1<T, T>(loop, [](C x) { return C(1) / std::sqrt(x); });
      case Op::sin:
        return map1<T, T>(loop, [](C x) { return std::sin(x); });
      case Op::cos:
        return map1<T, T>(loop, [](C x) { return std::cos(x); });
      case Op::tan:
        return map1<T, T>(loop, [](C x) { return std::tan(x); });
      case Op::tanh:
        return map1<T, T>(loop, [](C x) { return std::tanh(x); });
      case Op::erf:
        return map1<T, T>(loop, [](C x) { return std::erf(x); });
      case Op::reciprocal:
        return map1<T, T>(loop, [](C x) { return C(1) / x; });
      case Op::sigmoid:
        return map1<T, T>(loop, [](C x) { return C(1) / (C(1) + std::exp(-x)); });
      case Op::gelu:
        if (attrs.has("approximate") && attrs.get_string("approximate") == "tanh") {
          return map1<T, T>(loop, [](C x) {
            const C k = static_cast<C>(0.7978845608028654);  // sqrt(2 / pi)
            return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
          });
        }
        return map1<T, T>(loop, [](C x) {
          return C(0.5) * x * (C(1) + std::erf(x * static_cast<C>(0.7071067811865476)));
        });
      default:
        break;
    }
  } else {
    // floor, ceil and round are the identity on integers.
    if (op == Op::floor || op == Op::ceil || op == Op::round)
      return map1<T, T>(loop, [](C x) { return x; });
  }
  throw Error(std::string(op_name(op)) + ": no eager kernel for this dtype");
}

}  // namespace

Tensor eager_unary(Op op, const Tensor& x, const Attrs& attrs, const TensorType& out_type) {
  OpRule rule = op_info(op).rule;
  Tensor in = rule == OpRule::UnaryPredicate ? x : cast(x, out_type.dtype);
  Tensor out = make_tensor(x.sizes(), out_type.dtype, x.device());
  StridedLoop loop = make_strided_loop({&out, &in});
  if (on_gpu(out)) {
    cuda::MapArgs args = map_args(op, loop, {out.dtype(), in.dtype()});
    args.gelu_tanh =
        op == Op::gelu && attrs.has("approximate") && attrs.get_string("approximate") == "tanh";
    cuda::launch_map(args);
    return out;
  }
  KILN_DISPATCH_ALL(in.dtype(), T, unary_kernel<T>(op, attrs, loop))
  return out;
}

Tensor eager_clamp(const Tensor& x, const Attrs& attrs, const TensorType& out_type) {
  Tensor in = cast(x, out_type.dtype);
  Tensor out = make_tensor(x.sizes(), out_type.dtype, x.device());
  StridedLoop loop = make_strided_loop({&out, &in});
  auto lo = attrs.find_scalar("min"), hi = attrs.find_scalar("max");
  if (on_gpu(out)) {
    cuda::MapArgs args = map_args(Op::clamp, loop, {out.dtype(), in.dtype()});
    args.has_min = lo.has_value();
    args.has_max = hi.has_value();
    args.min_value =
        lo ? (is_floating(out.dtype()) ? lo->to_double() : static_cast<double>(lo->to_int())) : 0;
    args.max_value =
        hi ? (is_floating(out.dtype()) ? hi->to_double() : static_cast<double>(hi->to_int())) : 0;
    cuda::launch_map(args);
    return out;
  }
  KILN_DISPATCH_ALL(out_type.dtype, T, {
    using C = compute_t<T>;
    auto bound = [](const std::optional<Scalar>& s, C fallback) {
      if (!s) return fallback;
      if constexpr (std::is_floating_point_v<C>)
        return static_cast<C>(s->to_double());
      else
        return static_cast<C>(s->to_int());
    };
    C lo_v = bound(lo, std::numeric_limits<C>::lowest());
    C hi_v = bound(hi, std::numeric_limits<C>::max());
    bool has_lo = lo.has_value(), has_hi = hi.has_value();
    map1<T, T>(loop, [=](C v) {
      if (v != v) return v;  // NaN stays NaN
      if (has_lo && v < lo_v) v = lo_v;
      if (has_hi && v > hi_v) v = hi_v;
      return v;
    });
  })
  return out;
}

}  // namespace kiln
