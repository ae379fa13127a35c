// Strided copies with dtype conversion: cast(), contiguous(), and the copies views need.
#include <fmt/format.h>

#include <cpuid.h>
#include <immintrin.h>

#include <cstring>

#include "cuda/device_memory.h"
#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "eager/pointwise.h"
#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// f32 <-> f16 over contiguous runs with the F16C instructions, when the CPU has them
// (round to nearest even, as to_half()).
__attribute__((target("avx,f16c"))) void f32_to_f16_f16c(Half* out, const float* in, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(in + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) out[i] = to_half(in[i]);
}

__attribute__((target("avx,f16c"))) void f16_to_f32_f16c(float* out, const Half* in, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) out[i] = to_float(in[i]);
}

bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  return __builtin_cpu_supports("avx") && (ecx & bit_F16C) != 0;
}
const bool kHasF16c = cpu_has_f16c();

// Converts a contiguous run; true when a vector path handled it.
template <class To, class From>
bool convert_run_fast(To* out, const From* in, int64_t n) {
  if constexpr (std::is_same_v<To, Half> && std::is_same_v<From, float>) {
    if (kHasF16c) return f32_to_f16_f16c(out, in, n), true;
  } else if constexpr (std::is_same_v<To, float> && std::is_same_v<From, Half>) {
    if (kHasF16c) return f16_to_f32_f16c(out, in, n), true;
  }
  return false;
}

template <class T>
void copy_strided(char* dst, int64_t ds, const char* src, int64_t ss, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    *reinterpret_cast<T*>(dst + i * ds) = *reinterpret_cast<const T*>(src + i * ss);
}

template <class T>
void copy_elements(char* dst, int64_t ds, const char* src, int64_t ss, int64_t n) {
  if (ds == sizeof(T) && ss == sizeof(T)) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
  } else {
    copy_strided<T>(dst, ds, src, ss, n);
  }
}

// A 2-D copy whose source walks its rows across (a transpose): done in square tiles so
// that both sides stay in cache.
template <class T>
bool copy_transposed_tiles(const StridedLoop& loop) {
  constexpr int64_t es = sizeof(T), kTile = 32;
  if (loop.ndim != 2 || loop.strides[0][0] != es || loop.strides[1][1] != es) return false;
  const int64_t cols = loop.sizes[0], rows = loop.sizes[1];
  const int64_t d_row = loop.strides[0][1] / es, s_col = loop.strides[1][0] / es;
  if (loop.strides[0][1] % es || loop.strides[1][0] % es) return false;
  T* dst = reinterpret_cast<T*>(loop.base[0]);
  const T* src = reinterpret_cast<const T*>(loop.base[1]);
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  parallel_range(row_tiles, kTile * cols, [=](int64_t begin, int64_t end) {
    for (int64_t rt = begin; rt < end; ++rt) {
      const int64_t r0 = rt * kTile, r1 = std::min(rows, r0 + kTile);
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t c1 = std::min(cols, c0 + kTile);
        for (int64_t r = r0; r < r1; ++r) {
          T* d = dst + r * d_row;
          const T* s = src + r;
          for (int64_t c = c0; c < c1; ++c) d[c] = s[c * s_col];
        }
      }
    }
  });
  return true;
}

template <class T>
void copy_same_dtype(const StridedLoop& loop) {
  if (copy_transposed_tiles<T>(loop)) return;
  parallel_for_each_run(loop, [](char** p, const int64_t* s, int64_t n) {
    copy_elements<T>(p[0], s[0], p[1], s[1], n);
  });
}

}  // namespace

namespace {

// A copy with at least one side on the GPU: between devices straight into a contiguous
// destination of the same dtype, else through a contiguous staging buffer on the far side; within
// the GPU by cuMemcpy when the layouts allow, else by the converting map kernel.
void copy_with_gpu(const Tensor& dst, const Tensor& src) {
  const int64_t nbytes = src.numel() * dtype_size(src.dtype());
  if (on_gpu(dst) && on_gpu(src)) {
    if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous())
      return cuda::copy_on_device(dst.impl()->data_ptr(), src.impl()->data_ptr(), nbytes);
    StridedLoop loop = make_strided_loop({&dst, &src});
    return cuda::launch_map(map_args(Op::to, loop, {dst.dtype(), src.dtype()}));
  }
  const bool direct = dst.dtype() == src.dtype() && dst.is_contiguous();
  if (on_gpu(dst)) {
    Tensor host = contiguous_eager(src);
    if (direct)
      return cuda::copy_to_device(dst.impl()->data_ptr(), host.impl()->data_ptr(), nbytes);
    Tensor staged = make_tensor(src.sizes(), src.dtype(), Device::cuda);
    cuda::copy_to_device(staged.impl()->data_ptr(), host.impl()->data_ptr(), nbytes);
    return copy_into(dst, staged);
  }
  Tensor device_side = contiguous_eager(src);
  if (direct)
    return cuda::copy_to_host(dst.impl()->data_ptr(), device_side.impl()->data_ptr(), nbytes);
  Tensor staged = make_tensor(src.sizes(), src.dtype(), Device::cpu);
  cuda::copy_to_host(staged.impl()->data_ptr(), device_side.impl()->data_ptr(), nbytes);
  copy_into(dst, staged);
}

}  // namespace

Tensor copy_to_device(const Tensor& x, Device device) {
  Tensor out = make_tensor(x.sizes(), x.dtype(), device);
  copy_into(out, x);
  return out;
}

void copy_into(const Tensor& dst, const Tensor& src) {
  require_data(src, "copy");
  if (dst.sizes() != src.sizes())
    throw ShapeError(fmt::format("copy: destination shape {} differs from source shape {}",
                                 shape_string(dst.sizes()), shape_string(src.sizes())));
  if (on_gpu(dst) || on_gpu(src)) return copy_with_gpu(dst, src);
  StridedLoop loop = make_strided_loop({&dst, &src});
  if (dst.dtype() == src.dtype()) {
    switch (dtype_size(dst.dtype())) {
      case 1:
        return copy_same_dtype<uint8_t>(loop);
      case 2:
        return copy_same_dtype<uint16_t>(loop);
      case 4:
        return copy_same_dtype<uint32_t>(loop);
      default:
        return copy_same_dtype<uint64_t>(loop);
    }
  }
  KILN_DISPATCH_ALL(dst.dtype(), To, {KILN_DISPATCH_ALL(src.dtype(), From, {
                      parallel_for_each_run(loop, [](char** p, const int64_t* s, int64_t n) {
                        if (s[0] == sizeof(To) && s[1] == sizeof(From)) {
                          auto* out = reinterpret_cast<To*>(p[0]);
                          const auto* in = reinterpret_cast<const From*>(p[1]);
                          if (convert_run_fast(out, in, n)) return;
                          for (int64_t i = 0; i < n; ++i) out[i] = convert<To>(in[i]);
                        } else {
                          for (int64_t i = 0; i < n; ++i)
                            *reinterpret_cast<To*>(p[0] + i * s[0]) =
                                convert<To>(*reinterpret_cast<const From*>(p[1] + i * s[1]));
                        }
                      });
                    })})
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = make_tensor(x.sizes(), dtype, x.device());
  copy_into(out, x);
  return out;
}

Tensor contiguous_eager(const Tensor& x) {
  require_data(x, "contiguous()");
  if (x.is_contiguous()) return x;
  Tensor out = make_tensor(x.sizes(), x.dtype(), x.device());
  copy_into(out, x);
  return out;
}

}  // namespace kiln
