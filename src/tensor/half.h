// f16 and bf16 storage types with round-to-nearest-even conversion from f32 (what PyTorch
// does); arithmetic happens in f32.
#pragma once

#include <cstdint>
#include <cstring>

namespace kiln {

struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float to_float(BFloat16 h) { return bits_to_float(static_cast<uint32_t>(h.bits) << 16); }

inline BFloat16 to_bfloat16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return BFloat16{static_cast<uint16_t>((u >> 16) | 0x40)};
  uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
  return BFloat16{static_cast<uint16_t>((u + rounding_bias) >> 16)};
}

inline float to_float(Half h) {
  uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  uint32_t exponent = (h.bits >> 10) & 0x1fu;
  uint32_t mantissa = h.bits & 0x3ffu;
  if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {
    // Subnormal (or zero): value = mantissa * 2^-24.
    float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline Half to_half(float f) {
  uint32_t u = float_to_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return Half{static_cast<uint16_t>(sign | 0x7e00u)};   // NaN
  if (abs >= 0x477ff000u) return Half{static_cast<uint16_t>(sign | 0x7c00u)};  // overflow: inf
  if (abs < 0x38800000u) {
    // Result is subnormal in f16: round abs * 2^24 to the nearest even integer.
    float magnitude = bits_to_float(abs) * 16777216.0f;
    uint32_t m = static_cast<uint32_t>(magnitude);
    float remainder = magnitude - static_cast<float>(m);
    if (remainder > 0.5f || (remainder == 0.5f && (m & 1u))) ++m;
    return Half{static_cast<uint16_t>(sign | m)};
  }
  uint32_t mantissa_odd = (abs >> 13) & 1u;
  abs += 0xfffu + mantissa_odd;  // round to nearest even at bit 13
  return Half{static_cast<uint16_t>(sign | ((abs - 0x38000000u) >> 13))};
}

}  // namespace kiln
