// Reference kernels for binary ops and where. Operands are first converted to the op's
// compute dtype (PyTorch's promotion); a scalar operand becomes a 0-d tensor broadcast by
// stride 0. Integer arithmetic wraps like PyTorch's; integer division by zero is an error,
// never a SIGFPE.
#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "eager/pointwise.h"
#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

template <class C>
constexpr bool kWrapping = std::is_integral_v<C> && !std::is_same_v<C, bool>;

template <class C>
C wrap(C a, C b, char op) {
  using U = std::make_unsigned_t<C>;
  U x = static_cast<U>(a), y = static_cast<U>(b);
  U r = op == '+' ? x + y : op == '-' ? x - y : x * y;
  return static_cast<C>(r);
}

template <class C>
C int_pow(C base, C exponent) {
  using U = std::make_unsigned_t<C>;
  U result = 1, b = static_cast<U>(base);
  for (C e = exponent; e > 0; e >>= 1) {
    if (e & 1) result *= b;
    b *= b;
  }
  return static_cast<C>(result);
}

template <class C>
C float_remainder(C a, C b) {
  C m = std::fmod(a, b);
  if (m != C(0) && ((b < C(0)) != (m < C(0)))) m += b;
  return m;
}

template <class T>
void check_integer_divisor(Op op, const Tensor& b) {
  Tensor c = contiguous_eager(b).cpu();
  const T* data = reinterpret_cast<const T*>(c.impl()->data_ptr());
  for (int64_t i = 0; i < c.numel(); ++i)
    if (data[i] == T(0))
      throw Error(fmt::format("{}: integer division by zero (divisor of shape {})", op_name(op),
                              shape_string(b.sizes())));
}

template <class T>
void check_integer_exponent(const Tensor& e) {
  Tensor c = contiguous_eager(e).cpu();
  const T* data = reinterpret_cast<const T*>(c.impl()->data_ptr());
  for (int64_t i = 0; i < c.numel(); ++i)
    if (data[i] < T(0)) throw Error("pow: integers to negative integer powers are not allowed");
}

template <class T>
void binary_kernel(Op op, const StridedLoop& loop, const Tensor& b) {
  using C = compute_t<T>;
  switch (op) {
    case Op::add:
      if constexpr (kWrapping<C>)
        return map2<T, T>(loop, [](C x, C y) { return wrap(x, y, '+'); });
      else
        return map2<T, T>(loop, [](C x, C y) { return static_cast<C>(x + y); });
    case Op::sub:
      if constexpr (kWrapping<C>)
        return map2<T, T>(loop, [](C x, C y) { return wrap(x, y, '-'); });
      else
        return map2<T, T>(loop, [](C x, C y) { return static_cast<C>(x - y); });
    case Op::mul:
      if constexpr (kWrapping<C>)
        return map2<T, T>(loop, [](C x, C y) { return wrap(x, y, '*'); });
      else
        return map2<T, T>(loop, [](C x, C y) { return static_cast<C>(x * y); });
    case Op::maximum:
      return map2<T, T>(loop, [](C x, C y) { return x != x ? x : (y != y ? y : (x > y ? x : y)); });
    case Op::minimum:
      return map2<T, T>(loop, [](C x, C y) { return x != x ? x : (y != y ? y : (x < y ? x : y)); });
    case Op::eq:
      return map2<bool, T>(loop, [](C x, C y) { return x == y; });
    case Op::ne:
      return map2<bool, T>(loop, [](C x, C y) { return x != y; });
    case Op::lt:
      return map2<bool, T>(loop, [](C x, C y) { return x < y; });
    case Op::le:
      return map2<bool, T>(loop, [](C x, C y) { return x <= y; });
    case Op::gt:
      return map2<bool, T>(loop, [](C x, C y) { return x > y; });
    case Op::ge:
      return map2<bool, T>(loop, [](C x, C y) { return x >= y; });
    case Op::logical_and:
      return map2<bool, T>(loop, [](C x, C y) { return x && y; });
    case Op::logical_or:
      return map2<bool, T>(loop, [](C x, C y) { return x || y; });
    case Op::logical_xor:
      return map2<bool, T>(loop, [](C x, C y) { return bool(x) != bool(y); });
    default:
      break;
  }
  if constexpr (std::is_floating_point_v<C>) {
    switch (op) {
      case Op::div:
        return map2<T, T>(loop, [](C x, C y) { return x / y; });
      case Op::pow:
        return map2<T, T>(loop, [](C x, C y) { return std::pow(x, y); });
      case Op::atan2:
        return map2<T, T>(loop, [](C x, C y) { return std::atan2(x, y); });
      case Op::fmod:
        return map2<T, T>(loop, [](C x, C y) { return std::fmod(x, y); });
      case Op::remainder:
        return map2<T, T>(loop, [](C x, C y) { return float_remainder(x, y); });
      default:
        break;
    }
  } else if constexpr (kWrapping<C>) {
    switch (op) {
      case Op::pow:
        check_integer_exponent<T>(b);
        return map2<T, T>(loop, [](C x, C y) { return int_pow(x, y); });
      case Op::fmod:
        check_integer_divisor<T>(op, b);
        return map2<T, T>(loop, [](C x, C y) { return y == C(-1) ? C(0) : static_cast<C>(x % y); });
      case Op::remainder:
        check_integer_divisor<T>(op, b);
        return map2<T, T>(loop, [](C x, C y) {
          if (y == C(-1)) return C(0);
          C m = static_cast<C>(x % y);
          return (m != 0 && ((y < 0) != (m < 0))) ? static_cast<C>(m + y) : m;
        });
      default:
        break;
    }
  }
  throw Error(fmt::format("{}: no eager kernel for dtype {}", op_name(op), dtype_name(b.dtype())));
}

// c ? a : b through a bit mask: random conditions make a branch mispredict every other
// element (6x slower here), and the mask form vectorizes.
template <class T>
T select_bits(bool c, T a, T b) {
  using U = std::conditional_t<
      sizeof(T) == 1, uint8_t,
      std::conditional_t<sizeof(T) == 2, uint16_t,
                         std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
  U ua, ub;
  std::memcpy(&ua, &a, sizeof(T));
  std::memcpy(&ub, &b, sizeof(T));
  U mask = static_cast<U>(U(0) - static_cast<U>(c));
  U r = static_cast<U>((ua & mask) | (ub & static_cast<U>(~mask)));
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

// The GPU form: a scalar operand travels by value in the kernel's arguments (a 0-d tensor
// would cost a host-to-device copy per op); integer divisors and exponents are still
// checked, on a host copy.
Tensor binary_on_gpu(Op op, const std::vector<Tensor>& in, const Attrs& attrs,
                     const TensorType& out_type, DType compute) {
  Shape shape;
  try_const_shape(out_type.shape, &shape);
  Tensor out = make_tensor(shape, out_type.dtype, Device::cuda);
  Tensor a = cast(in[0], compute);
  auto scalar = attrs.find_scalar("scalar");
  Tensor b = scalar ? a : cast(in[1], compute);
  StridedLoop loop = make_strided_loop({&out, &a, &b});
  cuda::MapArgs args = map_args(op, loop, {out.dtype(), compute, compute});
  if (scalar) {
    args.scalar_operand = attrs.get_bool("scalar_first", false) ? 1 : 2;
    args.scalar_value = scalar->to_double();
    args.scalar_int = scalar->to_int();
  }
  const bool integer = is_integral(compute);
  if (integer && (op == Op::fmod || op == Op::remainder || op == Op::pow)) {
    Tensor divisor = !scalar ? b : args.scalar_operand == 2 ? scalar_tensor(*scalar, compute) : a;
    KILN_DISPATCH_ALL(compute, T, {
      if constexpr (kWrapping<compute_t<T>>) {
        if (op == Op::pow)
          check_integer_exponent<T>(divisor);
        else
          check_integer_divisor<T>(op, divisor);
      }
    })
  }
  cuda::launch_map(args);
  return out;
}

}  // namespace

Tensor eager_binary(Op op, const std::vector<Tensor>& in, const Attrs& attrs,
                    const TensorType& out_type) {
  std::vector<DType> dtypes;
  for (const Tensor& t : in) dtypes.push_back(t.dtype());
  DType compute = binary_compute_dtype(op, attrs, dtypes);
  if (on_gpu(in[0])) return binary_on_gpu(op, in, attrs, out_type, compute);
  Tensor a, b;
  if (auto s = attrs.find_scalar("scalar")) {
    a = cast(in[0], compute);
    b = scalar_tensor(*s, compute);
    if (attrs.get_bool("scalar_first", false)) std::swap(a, b);
  } else {
    a = cast(in[0], compute);
    b = cast(in[1], compute);
  }
  Shape shape;
  try_const_shape(out_type.shape, &shape);
  Tensor out = make_tensor(shape, out_type.dtype);
  StridedLoop loop = make_strided_loop({&out, &a, &b});
  KILN_DISPATCH_ALL(compute, T, binary_kernel<T>(op, loop, b))
  return out;
}

Tensor eager_where(const std::vector<Tensor>& in, const TensorType& out_type) {
  Tensor a = cast(in[1], out_type.dtype), b = cast(in[2], out_type.dtype);
  Shape shape;
  try_const_shape(out_type.shape, &shape);
  Tensor out = make_tensor(shape, out_type.dtype, in[0].device());
  StridedLoop loop = make_strided_loop({&out, &in[0], &a, &b});
  if (on_gpu(out)) {
    cuda::launch_map(map_args(Op::where, loop, {out.dtype(), in[0].dtype(), a.dtype(), b.dtype()}));
    return out;
  }
  KILN_DISPATCH_ALL(out_type.dtype, T, {
    parallel_for_each_run(loop, [](char** p, const int64_t* s, int64_t n) {
      if (s[0] == sizeof(T) && s[1] == 1 && s[2] == sizeof(T) && s[3] == sizeof(T)) {
        auto* out = reinterpret_cast<T*>(p[0]);
        const auto* c = reinterpret_cast<const bool*>(p[1]);
        const auto* a = reinterpret_cast<const T*>(p[2]);
        const auto* b = reinterpret_cast<const T*>(p[3]);
        for (int64_t i = 0; i < n; ++i) out[i] = select_bits(c[i], a[i], b[i]);
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        bool c = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) =
            *reinterpret_cast<const T*>(p[c ? 2 : 3] + i * s[c ? 2 : 3]);
      }
    });
  })
  return out;
}

}  // namespace kiln
