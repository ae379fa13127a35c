// kiln's eager CUDA kernels, built once with nvcc (sm_90 code plus PTX for newer GPUs) and
// embedded in libkiln as a fatbin that the host loads with cuModuleLoadData (eager_cuda.cc).
// They mirror the CPU reference kernels' semantics: f16/bf16 compute in f32, reductions and
// normalizations accumulate in f64, integer arithmetic wraps. Kernels are few and switch on
// op and dtype at run time (uniform branches) instead of being instantiated per case, which
// keeps the build short; each is a grid-stride loop, so any grid size is correct.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "cuda/eager_abi.h"
#include "graph/op.h"
#include "kiln/dtype.h"

using kiln::DType;
using kiln::Op;
using namespace kiln::cuda;

namespace {

constexpr int kBlock = 256;

__device__ double load_double(const char* p, int dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::f32:
      return *reinterpret_cast<const float*>(p);
    case DType::f64:
      return *reinterpret_cast<const double*>(p);
    case DType::f16:
      return __half2float(*reinterpret_cast<const __half*>(p));
    case DType::bf16:
      return __bfloat162float(*reinterpret_cast<const __nv_bfloat16*>(p));
    case DType::i32:
      return *reinterpret_cast<const int32_t*>(p);
    case DType::i64:
      return static_cast<double>(*reinterpret_cast<const int64_t*>(p));
    default:
      return *reinterpret_cast<const bool*>(p) ? 1.0 : 0.0;
  }
}

__device__ int64_t load_int(const char* p, int dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::i32:
      return *reinterpret_cast<const int32_t*>(p);
    case DType::i64:
      return *reinterpret_cast<const int64_t*>(p);
    case DType::bool_:
      return *reinterpret_cast<const bool*>(p) ? 1 : 0;
    default:
      return static_cast<int64_t>(load_double(p, dtype));
  }
}

__device__ void store_double(char* p, int dtype, double v) {
  switch (static_cast<DType>(dtype)) {
    case DType::f32:
      *reinterpret_cast<float*>(p) = static_cast<float>(v);
      break;
    case DType::f64:
      *reinterpret_cast<double*>(p) = v;
      break;
    case DType::f16:
      *reinterpret_cast<__half*>(p) = __float2half_rn(static_cast<float>(v));
      break;
    case DType::bf16:
      *reinterpret_cast<__nv_bfloat16*>(p) = __float2bfloat16_rn(static_cast<float>(v));
      break;
    case DType::i32:
      *reinterpret_cast<int32_t*>(p) = static_cast<int32_t>(static_cast<int64_t>(v));
      break;
    case DType::i64:
      *reinterpret_cast<int64_t*>(p) = static_cast<int64_t>(v);
      break;
    default:
      *reinterpret_cast<bool*>(p) = v != 0;
      break;
  }
}

__device__ void store_int(char* p, int dtype, int64_t v) {
  switch (static_cast<DType>(dtype)) {
    case DType::i32:
      *reinterpret_cast<int32_t*>(p) = static_cast<int32_t>(v);
      break;
    case DType::i64:
      *reinterpret_cast<int64_t*>(p) = v;
      break;
    case DType::bool_:
      *reinterpret_cast<bool*>(p) = v != 0;
      break;
    default:
      store_double(p, dtype, static_cast<double>(v));
      break;
  }
}

__device__ bool is_float_dtype(int dtype) {
  DType d = static_cast<DType>(dtype);
  return d == DType::f32 || d == DType::f64 || d == DType::f16 || d == DType::bf16;
}

// Floating ops in the compute type C (float for f32/f16/bf16, double for f64).
template <class C>
__device__ C apply_float(const MapArgs& a, C x, C y, C z) {
  switch (static_cast<Op>(a.op)) {
    case Op::neg:
      return -x;
    case Op::abs:
      return x < C(0) ? -x : x;
    case Op::relu:
      return x < C(0) ? C(0) : x;
    case Op::floor:
      return floor(x);
    case Op::ceil:
      return ceil(x);
    case Op::round:
      return rint(x);
    case Op::sign:
      return static_cast<C>((C(0) < x) - (x < C(0)));
    case Op::exp:
      return exp(x);
    case Op::log:
      return log(x);
    case Op::log1p:
      return log1p(x);
    case Op::sqrt:
      return sqrt(x);
    case Op::rsqrt:
      return C(1) / sqrt(x);
    case Op::sin:
      return sin(x);
    case Op::cos:
      return cos(x);
    case Op::tan:
      return tan(x);
    case Op::tanh:
      return tanh(x);
    case Op::erf:
      return erf(x);
    case Op::reciprocal:
      return C(1) / x;
    case Op::sigmoid:
      return C(1) / (C(1) + exp(-x));
    case Op::gelu:
      if (a.gelu_tanh) {
        const C k = static_cast<C>(0.7978845608028654);
        return C(0.5) * x * (C(1) + tanh(k * (x + C(0.044715) * x * x * x)));
      }
      return C(0.5) * x * (C(1) + erf(x * static_cast<C>(0.7071067811865476)));
    case Op::isnan:
      return x != x;
    case Op::logical_not:
      return !(x != C(0));
    case Op::add:
      return x + y;
    case Op::sub:
      return x - y;
    case Op::mul:
      return x * y;
    case Op::div:
      return x / y;
    case Op::maximum:
      return x != x ? x : (y != y ? y : (x > y ? x : y));
    case Op::minimum:
      return x != x ? x : (y != y ? y : (x < y ? x : y));
    case Op::fmod:
      return fmod(x, y);
    case Op::remainder: {
      C m = fmod(x, y);
      if (m != C(0) && ((y < C(0)) != (m < C(0)))) m += y;
      return m;
    }
    case Op::pow:
      return pow(x, y);
    case Op::atan2:
      return atan2(x, y);
    case Op::eq:
      return x == y;
    case Op::ne:
      return x != y;
    case Op::lt:
      return x < y;
    case Op::le:
      return x <= y;
    case Op::gt:
      return x > y;
    case Op::ge:
      return x >= y;
    case Op::logical_and:
      return (x != C(0)) && (y != C(0));
    case Op::logical_or:
      return (x != C(0)) || (y != C(0));
    case Op::logical_xor:
      return (x != C(0)) != (y != C(0));
    case Op::where:
      return x != C(0) ? y : z;
    case Op::clamp: {
      C r = x;
      if (a.has_min && r < static_cast<C>(a.min_value)) r = static_cast<C>(a.min_value);
      if (a.has_max && r > static_cast<C>(a.max_value)) r = static_cast<C>(a.max_value);
      return x != x ? x : r;
    }
    default:
      return x;  // Op::to: a converting copy
  }
}

// Integer and bool ops in i64, wrapping like PyTorch (two's complement through unsigned).
__device__ int64_t apply_int(const MapArgs& a, int64_t x, int64_t y, int64_t z) {
  using U = uint64_t;
  switch (static_cast<Op>(a.op)) {
    case Op::neg:
      return static_cast<int64_t>(U(0) - U(x));
    case Op::abs:
      return x < 0 ? static_cast<int64_t>(U(0) - U(x)) : x;
    case Op::relu:
      return x < 0 ? 0 : x;
    case Op::sign:
      return (0 < x) - (x < 0);
    case Op::isnan:
      return 0;
    case Op::logical_not:
      return x == 0;
    case Op::add:
      return static_cast<int64_t>(U(x) + U(y));
    case Op::sub:
      return static_cast<int64_t>(U(x) - U(y));
    case Op::mul:
      return static_cast<int64_t>(U(x) * U(y));
    case Op::maximum:
      return x > y ? x : y;
    case Op::minimum:
      return x < y ? x : y;
    case Op::fmod:
      return y == 0 || y == -1 ? 0 : x % y;  // the host rejects zero divisors
    case Op::remainder: {
      if (y == 0 || y == -1) return 0;
      int64_t m = x % y;
      return (m != 0 && ((y < 0) != (m < 0))) ? m + y : m;
    }
    case Op::pow: {
      U result = 1, b = U(x);
      for (int64_t e = y; e > 0; e >>= 1) {
        if (e & 1) result *= b;
        b *= b;
      }
      return static_cast<int64_t>(result);
    }
    case Op::eq:
      return x == y;
    case Op::ne:
      return x != y;
    case Op::lt:
      return x < y;
    case Op::le:
      return x <= y;
    case Op::gt:
      return x > y;
    case Op::ge:
      return x >= y;
    case Op::logical_and:
      return x && y;
    case Op::logical_or:
      return x || y;
    case Op::logical_xor:
      return (x != 0) != (y != 0);
    case Op::where:
      return x != 0 ? y : z;
    case Op::clamp: {
      int64_t r = x;
      if (a.has_min && r < static_cast<int64_t>(a.min_value)) r = static_cast<int64_t>(a.min_value);
      if (a.has_max && r > static_cast<int64_t>(a.max_value)) r = static_cast<int64_t>(a.max_value);
      return r;
    }
    default:
      return x;
  }
}

// Byte offsets of linear element `i` in each operand. Below 2^31 elements the index
// arithmetic runs in 32 bits, dividing by multiplies: a division costs the GPU ~20
// instructions, a 64-bit one several times more.
// The loops run to the arrays' static bounds, fully unrolled, so every read of the
// parameter block has a constant offset: indexed by a loop variable, the block was copied to
// each thread's stack first (a strided copy ran at a tenth of the memory's speed).
__device__ __forceinline__ void offsets_of(const MapArgs& a, int64_t i, int64_t* off) {
#pragma unroll
  for (int k = 0; k < kMapMaxOperands; ++k) off[k] = 0;
  if (a.numel < 0x80000000ll) {
    uint32_t rest = static_cast<uint32_t>(i);
#pragma unroll
    for (int d = 0; d < kMapMaxDims; ++d) {
      if (d >= a.ndim) break;
      const uint32_t quotient = (__umulhi(rest, a.div_magic[d]) + rest) >> a.div_shift[d];
      const uint32_t idx = rest - quotient * static_cast<uint32_t>(a.sizes[d]);
      rest = quotient;
#pragma unroll
      for (int k = 0; k < kMapMaxOperands; ++k)
        if (k < a.noperands) off[k] += int64_t{idx} * a.strides[k][d];
    }
    return;
  }
#pragma unroll
  for (int d = 0; d < kMapMaxDims; ++d) {
    if (d >= a.ndim) break;
    const int64_t size = a.sizes[d];
    const int64_t idx = i % size;
    i /= size;
#pragma unroll
    for (int k = 0; k < kMapMaxOperands; ++k)
      if (k < a.noperands) off[k] += idx * a.strides[k][d];
  }
}

}  // namespace

// The compute type follows operand 1's dtype (the host casts inputs to the op's compute
// dtype first); where's operand 1 is its bool condition, so operand 2 decides there.
extern "C" __global__ void kiln_eager_map(const MapArgs a) {
  if (static_cast<Op>(a.op) == Op::to && a.dtypes[0] == a.dtypes[1] && a.noperands == 2) {
    // A strided copy of one dtype: the element's bytes, no conversion.
    const int size = static_cast<DType>(a.dtypes[0]) == DType::f64 ||
                             static_cast<DType>(a.dtypes[0]) == DType::i64
                         ? 8
                     : static_cast<DType>(a.dtypes[0]) == DType::f32 ||
                             static_cast<DType>(a.dtypes[0]) == DType::i32
                         ? 4
                     : static_cast<DType>(a.dtypes[0]) == DType::bool_ ? 1
                                                                       : 2;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < a.numel;
         i += int64_t(gridDim.x) * blockDim.x) {
      int64_t off[kMapMaxOperands];
      offsets_of(a, i, off);
      char* dst = a.base[0] + off[0];
      const char* src = a.base[1] + off[1];
      switch (size) {
        case 8:
          *reinterpret_cast<uint64_t*>(dst) = *reinterpret_cast<const uint64_t*>(src);
          break;
        case 4:
          *reinterpret_cast<uint32_t*>(dst) = *reinterpret_cast<const uint32_t*>(src);
          break;
        case 2:
          *reinterpret_cast<uint16_t*>(dst) = *reinterpret_cast<const uint16_t*>(src);
          break;
        default:
          *dst = *src;
          break;
      }
    }
    return;
  }
  const int value_operand = static_cast<Op>(a.op) == Op::where ? 2 : 1;
  const int in_dtype = a.dtypes[value_operand];
  const bool wide = static_cast<DType>(in_dtype) == DType::f64;
  const bool floating = is_float_dtype(in_dtype);
  const bool out_int = !is_float_dtype(a.dtypes[0]);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < a.numel;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[kMapMaxOperands];
    offsets_of(a, i, off);
    char* out = a.base[0] + off[0];
    if (floating) {
      // Operand k: the scalar where it stands there, else its element (0 past the last).
      auto operand = [&](int k) {
        return k == a.scalar_operand ? a.scalar_value
               : k < a.noperands     ? load_double(a.base[k] + off[k], a.dtypes[k])
                                     : 0.0;
      };
      const double v0 = operand(1), v1 = operand(2), v2 = operand(3);
      double r =
          wide ? apply_float<double>(a, v0, v1, v2)
               : static_cast<double>(apply_float<float>(
                     a, static_cast<float>(v0), static_cast<float>(v1), static_cast<float>(v2)));
      if (out_int && static_cast<Op>(a.op) == Op::to && r != r) r = 0;
      store_double(out, a.dtypes[0], r);
    } else {
      auto operand = [&](int k) {
        return k == a.scalar_operand ? a.scalar_int
               : k < a.noperands     ? load_int(a.base[k] + off[k], a.dtypes[k])
                                     : int64_t{0};
      };
      store_int(out, a.dtypes[0], apply_int(a, operand(1), operand(2), operand(3)));
    }
  }
}

namespace {

// Block-wide combination of one value per thread; every thread gets the result.
template <class T, class F>
__device__ T block_combine(T value, F combine, T* scratch) {
  scratch[threadIdx.x] = value;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s)
      scratch[threadIdx.x] = combine(scratch[threadIdx.x], scratch[threadIdx.x + s]);
    __syncthreads();
  }
  T result = scratch[0];
  __syncthreads();
  return result;
}

struct ArgBest {
  double value;
  int64_t index;
};

}  // namespace

// One block per row (grid-striding over rows), kBlock threads, accumulating in f64 (floats)
// or i64 (integers), partial results combined in a fixed tree: deterministic.
extern "C" __global__ void __launch_bounds__(kBlock) kiln_eager_reduce(const ReduceArgs a) {
  __shared__ double scratch[kBlock];
  __shared__ int64_t iscratch[kBlock];
  __shared__ ArgBest bscratch[kBlock];
  const Op op = static_cast<Op>(a.op);
  const int64_t es = a.in_dtype == int(DType::f64) || a.in_dtype == int(DType::i64)   ? 8
                     : a.in_dtype == int(DType::f32) || a.in_dtype == int(DType::i32) ? 4
                     : a.in_dtype == int(DType::bool_)                                ? 1
                                                                                      : 2;
  const int64_t oes = a.out_dtype == int(DType::f64) || a.out_dtype == int(DType::i64)   ? 8
                      : a.out_dtype == int(DType::f32) || a.out_dtype == int(DType::i32) ? 4
                      : a.out_dtype == int(DType::bool_)                                 ? 1
                                                                                         : 2;
  const bool floating = is_float_dtype(a.in_dtype);
  const int64_t n = a.length;
  for (int64_t row = blockIdx.x; row < a.count; row += gridDim.x) {
    const char* base = a.in + row * n * es;
    char* out = a.out + row * oes;
    auto at = [&](int64_t i) { return load_double(base + i * es, a.in_dtype); };
    if (op == Op::argmax || op == Op::argmin || op == Op::amax || op == Op::amin) {
      const bool is_max = op == Op::argmax || op == Op::amax;
      ArgBest best{0, -1};
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        double v = at(i);
        if (best.index < 0 ||
            (best.value == best.value && (v != v || (is_max ? v > best.value : v < best.value))))
          best = {v, i};
      }
      best = block_combine(
          best,
          [is_max](ArgBest x, ArgBest y) {
            if (x.index < 0) return y;
            if (y.index < 0) return x;
            const bool xn = x.value != x.value, yn = y.value != y.value;
            if (xn || yn) return xn && (!yn || x.index < y.index) ? x : y;
            if (x.value == y.value) return x.index < y.index ? x : y;
            return (is_max ? x.value > y.value : x.value < y.value) ? x : y;
          },
          bscratch);
      if (threadIdx.x == 0) {
        if (op == Op::argmax || op == Op::argmin)
          *reinterpret_cast<int64_t*>(out) = best.index;
        else if (floating)
          store_double(out, a.out_dtype, best.value);
        else
          store_int(out, a.out_dtype, load_int(base + best.index * es, a.in_dtype));
      }
      continue;
    }
    if (!floating && (op == Op::sum || op == Op::prod)) {
      uint64_t acc = op == Op::prod ? 1 : 0;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        uint64_t v = static_cast<uint64_t>(load_int(base + i * es, a.in_dtype));
        acc = op == Op::prod ? acc * v : acc + v;
      }
      int64_t r = block_combine(
          static_cast<int64_t>(acc),
          [op](int64_t x, int64_t y) {
            return static_cast<int64_t>(op == Op::prod ? uint64_t(x) * uint64_t(y)
                                                       : uint64_t(x) + uint64_t(y));
          },
          iscratch);
      if (threadIdx.x == 0) store_int(out, a.out_dtype, r);
      continue;
    }
    auto sum = [](double x, double y) { return x + y; };
    double result = 0;
    if (op == Op::prod) {
      double acc = 1;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc *= at(i);
      result = block_combine(
          acc, [](double x, double y) { return x * y; }, scratch);
    } else if (op == Op::logsumexp) {
      double mx = -INFINITY;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = fmax(mx, at(i));
      mx = block_combine(
          mx, [](double x, double y) { return fmax(x, y); }, scratch);
      double s = 0;
      if (isinf(mx) || isnan(mx)) {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += at(i);
        s = block_combine(s, sum, scratch);
        result = isnan(s) ? s : mx;
      } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += exp(at(i) - mx);
        result = mx + log(block_combine(s, sum, scratch));
      }
    } else {
      double s = 0;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += at(i);
      s = block_combine(s, sum, scratch);
      result = s;
      if (op == Op::mean) result = s / double(n);
      if (op == Op::var || op == Op::std) {
        const double mean = s / double(n);
        double ss = 0;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
          double d = at(i) - mean;
          ss += d * d;
        }
        ss = block_combine(ss, sum, scratch);
        double denom = fmax(0.0, double(n - a.correction));
        result = ss / denom;
        if (op == Op::std) result = sqrt(result);
      }
    }
    if (threadIdx.x == 0) store_double(out, a.out_dtype, result);
  }
}

// softmax, log_softmax and layer_norm rows: statistics in f64, one rounding at the store.
extern "C" __global__ void __launch_bounds__(kBlock) kiln_eager_rows(const RowsArgs a) {
  __shared__ double scratch[kBlock];
  const int64_t es = a.dtype == int(DType::f64) ? 8 : a.dtype == int(DType::f32) ? 4 : 2;
  const int64_t n = a.length;
  auto sum = [](double x, double y) { return x + y; };
  for (int64_t row = blockIdx.x; row < a.count; row += gridDim.x) {
    const char* in = a.in + row * n * es;
    char* out = a.out + row * n * es;
    auto at = [&](int64_t i) { return load_double(in + i * es, a.dtype); };
    if (a.kind == 2) {
      double s = 0;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += at(i);
      const double mean = block_combine(s, sum, scratch) / double(n);
      double ss = 0;
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        double d = at(i) - mean;
        ss += d * d;
      }
      const double rstd = 1.0 / sqrt(block_combine(ss, sum, scratch) / double(n) + a.eps);
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        double y = (at(i) - mean) * rstd;
        if (a.weight) y *= a.weight[i];
        if (a.bias) y += a.bias[i];
        store_double(out + i * es, a.dtype, y);
      }
      continue;
    }
    double mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = fmax(mx, at(i));
    mx = block_combine(
        mx, [](double x, double y) { return fmax(x, y); }, scratch);
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += exp(at(i) - mx);
    s = block_combine(s, sum, scratch);
    const double log_s = log(s);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      double d = at(i) - mx;
      store_double(out + i * es, a.dtype, a.kind == 1 ? d - log_s : exp(d) / s);
    }
  }
}

extern "C" __global__ void kiln_eager_gather(const GatherArgs a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < a.count;
       i += int64_t(gridDim.x) * blockDim.x) {
    const char* src = a.src + a.offsets[i];
    char* dst = a.out + i * a.element_size;
    for (int b = 0; b < a.element_size; ++b) dst[b] = src[b];
  }
}

#define KILN_HELPER __device__ static inline
#define KILN_RANDOM_LOG log
#define KILN_RANDOM_COS cos
#define KILN_RANDOM_SQRT sqrt
#include "support/philox.inc"

// A thread per Philox call, which serves 2^shift consecutive elements (support/philox.inc).
extern "C" __global__ void kiln_eager_random(const RandomArgs a) {
  const uint64_t seed = static_cast<uint64_t>(a.state[0]);
  const uint64_t stream = static_cast<uint64_t>(a.state[1]) + static_cast<uint64_t>(a.draw);
  const int wide = static_cast<DType>(a.dtype) == DType::f64;
  const int es = wide ? 8 : static_cast<DType>(a.dtype) == DType::f32 ? 4 : 2;
  const int shift = kiln_philox_shift(a.normal, wide);
  const int64_t calls = (a.numel + (int64_t{1} << shift) - 1) >> shift;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < calls;
       c += int64_t(gridDim.x) * blockDim.x) {
    const kiln_philox_t r = kiln_philox(seed, static_cast<uint64_t>(c), stream);
    for (int64_t i = c << shift; i < min(a.numel, (c + 1) << shift); ++i) {
      const uint64_t e = static_cast<uint64_t>(i);
      store_double(a.out + i * es, a.dtype,
                   a.normal ? kiln_randn_of(r, e, wide) : kiln_rand_of(r, e, wide));
    }
  }
}

extern "C" __global__ void kiln_eager_pool2d(const PoolArgs a) {
  const int64_t total = a.planes * a.oh * a.ow;
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total;
       o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = o % a.ow, i = (o / a.ow) % a.oh, p = o / (a.ow * a.oh);
    const int64_t h0 = (i * a.h) / a.oh, h1 = ((i + 1) * a.h + a.oh - 1) / a.oh;
    const int64_t w0 = (j * a.w) / a.ow, w1 = ((j + 1) * a.w + a.ow - 1) / a.ow;
    double s = 0;
    for (int64_t r = h0; r < h1; ++r)
      for (int64_t c = w0; c < w1; ++c) s += a.in[(p * a.h + r) * a.w + c];
    a.out[o] = s / double((h1 - h0) * (w1 - w0));
  }
}

#include "cuda/attention_kernel.cuh"
#include "cuda/attention_mma16.cuh"
