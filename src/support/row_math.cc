#include "support/row_math.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "support/cpu_features.h"

// libmvec's vector variants (glibc's ABI for `#pragma omp declare simd` expf): their
// arguments are vector registers, so they are declared for the ISA whose registers they use.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
extern "C" __attribute__((target("avx2,fma"))) __m256 _ZGVdN8v_expf(__m256);
extern "C" __attribute__((target("avx512f"))) __m512 _ZGVeN16v_expf(__m512);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// gcc 12's AVX-512 intrinsics start from _mm512_undefined_ps(), a self-initialized value
// its -Wmaybe-uninitialized reports at every use.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace kiln {

namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

float scalar_scale_max(float* x, int64_t n, float scale) {
  float most = kMinusInf;
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= scale;
    most = std::max(most, x[i]);
  }
  return most;
}

__attribute__((target("avx2,fma"))) float avx2_scale_max(float* x, int64_t n, float scale) {
  const __m256 s = _mm256_set1_ps(scale);
  __m256 most = _mm256_set1_ps(kMinusInf);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), s);
    _mm256_storeu_ps(x + i, v);
    most = _mm256_max_ps(most, v);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, most);
  float m = scalar_scale_max(x + i, n - i, scale);
  for (float l : lanes) m = std::max(m, l);
  return m;
}

__attribute__((target("avx512f"))) float avx512_scale_max(float* x, int64_t n, float scale) {
  const __m512 s = _mm512_set1_ps(scale);
  __m512 most = _mm512_set1_ps(kMinusInf);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + i), s);
    _mm512_storeu_ps(x + i, v);
    most = _mm512_max_ps(most, v);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, most);
  float m = scalar_scale_max(x + i, n - i, scale);
  for (float l : lanes) m = std::max(m, l);
  return m;
}

float scalar_exp_sum(float* x, int64_t n, float shift) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

__attribute__((target("avx2,fma"))) float avx2_exp_sum(float* x, int64_t n, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float sum = 0;
  for (float l : lanes) sum += l;
  return sum + scalar_exp_sum(x + i, n - i, shift);
}

__attribute__((target("avx512f"))) float avx512_exp_sum(float* x, int64_t n, float shift) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 e = _ZGVeN16v_expf(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    _mm512_storeu_ps(x + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  float sum = 0;
  for (float l : lanes) sum += l;
  return sum + scalar_exp_sum(x + i, n - i, shift);
}

using RowFn = float (*)(float*, int64_t, float);

// The variant for the preferred width: 512, 256, else the scalar loop.
RowFn chosen(RowFn avx512, RowFn avx2, RowFn scalar) {
  const int width = preferred_vector_width();
  return width >= 512 ? avx512 : width >= 256 ? avx2 : scalar;
}

}  // namespace

float scale_and_max(float* x, int64_t n, float scale) {
  static const RowFn fn = chosen(avx512_scale_max, avx2_scale_max, scalar_scale_max);
  return fn(x, n, scale);
}

float exp_shifted_sum(float* x, int64_t n, float shift) {
  static const RowFn fn = chosen(avx512_exp_sum, avx2_exp_sum, scalar_exp_sum);
  return fn(x, n, shift);
}

}  // namespace kiln
