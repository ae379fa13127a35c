// Element conversion between every dtype and double, for element access, printing,
// factories and the reference kernels' scalar paths. Float-to-integer conversion is defined
// for every input (NaN and out-of-range give the minimum value, as x86 does), never UB.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kiln/dtype.h"
#include "tensor/half.h"

namespace kiln {

// The type an element is computed in: f16/bf16 in float, everything else as itself.
template <class T>
struct ComputeOf {
  using type = T;
};
template <>
struct ComputeOf<Half> {
  using type = float;
};
template <>
struct ComputeOf<BFloat16> {
  using type = float;
};
template <class T>
using compute_t = typename ComputeOf<T>::type;

template <class Int, class F>
inline Int float_to_int(F value) {
  constexpr F lo = static_cast<F>(std::numeric_limits<Int>::min());
  constexpr F hi = -lo;  // 2^(bits-1), exactly representable
  if (!(value >= lo && value < hi)) return std::numeric_limits<Int>::min();
  return static_cast<Int>(value);
}

// Converts a computed value of type C to storage type T.
template <class T, class C>
inline T to_storage(C value) {
  if constexpr (std::is_same_v<T, Half>) {
    return to_half(static_cast<float>(value));
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    return to_bfloat16(static_cast<float>(value));
  } else if constexpr (std::is_same_v<T, bool>) {
    return value != C(0);
  } else if constexpr (std::is_integral_v<T> && std::is_floating_point_v<C>) {
    return float_to_int<T>(value);
  } else {
    return static_cast<T>(value);
  }
}

template <class T>
inline compute_t<T> to_compute(T value) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return to_float(value);
  } else {
    return value;
  }
}

// Converts between any two storage types through their compute types.
template <class To, class From>
inline To convert(From value) {
  auto c = to_compute(value);
  if constexpr (std::is_same_v<decltype(c), bool> && !std::is_same_v<To, bool>) {
    return to_storage<To>(static_cast<int>(c));
  } else {
    return to_storage<To>(c);
  }
}

#define KILN_DTYPE_CASE(enum_value, type_name, T, ...) \
  case DType::enum_value: {                            \
    using T = type_name;                               \
    __VA_ARGS__;                                       \
  } break;

// Runs the statements with T bound to the storage type of `dtype`.
#define KILN_DISPATCH_ALL(dtype, T, ...)                    \
  switch (dtype) {                                          \
    KILN_DTYPE_CASE(f32, float, T, __VA_ARGS__)             \
    KILN_DTYPE_CASE(f64, double, T, __VA_ARGS__)            \
    KILN_DTYPE_CASE(f16, ::kiln::Half, T, __VA_ARGS__)      \
    KILN_DTYPE_CASE(bf16, ::kiln::BFloat16, T, __VA_ARGS__) \
    KILN_DTYPE_CASE(i32, int32_t, T, __VA_ARGS__)           \
    KILN_DTYPE_CASE(i64, int64_t, T, __VA_ARGS__)           \
    KILN_DTYPE_CASE(bool_, bool, T, __VA_ARGS__)            \
  }

inline double load_double(const char* p, DType dtype) {
  double out = 0;
  KILN_DISPATCH_ALL(dtype, T, out = static_cast<double>(to_compute(*reinterpret_cast<const T*>(p))))
  return out;
}

inline void store_double(char* p, DType dtype, double value) {
  KILN_DISPATCH_ALL(dtype, T, *reinterpret_cast<T*>(p) = to_storage<T>(value))
}

}  // namespace kiln
