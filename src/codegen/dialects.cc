// The dialect tables: what differs between the cpp and cuda renderings of the same scheduled
// loop program (preamble helpers, signature, restrict word, loop pragmas) and kernel names.
#include <fmt/format.h>

#include "codegen/c_emitter.h"
#include "support/philox.h"

namespace kiln {

namespace {

// The cpp dialect's header: C99, glibc's vector math (libmvec) declared SIMD-callable.
constexpr const char* kCppHeader = R"(#include <stdint.h>
#include <string.h>
#if defined(__GNUC__) && !defined(__TINYC__) && !defined(__clang__)
#define KILN_SIMD __attribute__((simd("notinbranch")))
#else
#define KILN_SIMD
#endif
#if defined(__GNUC__) && !defined(__TINYC__)
#define KILN_PREFETCH(p) __builtin_prefetch(p)
#else
#define KILN_PREFETCH(p) ((void)(p))
#endif
#define KILN_STR_(x) #x
#ifdef _OPENMP
int omp_get_max_threads(void);
#define KILN_THREADS_AT_MOST(t) ((t) < omp_get_max_threads() ? (t) : omp_get_max_threads())
#endif
#if defined(__GNUC__) && !defined(__TINYC__) && !defined(__clang__)
#define KILN_VECTOR_WIDTH(w) __attribute__((target("prefer-vector-width=" KILN_STR_(w))))
#else
#define KILN_VECTOR_WIDTH(w)
#endif
KILN_SIMD float expf(float); KILN_SIMD double exp(double);
KILN_SIMD float logf(float); KILN_SIMD double log(double);
KILN_SIMD float log1pf(float); KILN_SIMD double log1p(double);
KILN_SIMD float sinf(float); KILN_SIMD double sin(double);
KILN_SIMD float cosf(float); KILN_SIMD double cos(double);
KILN_SIMD float tanf(float); KILN_SIMD double tan(double);
KILN_SIMD float tanhf(float); KILN_SIMD double tanh(double);
KILN_SIMD float erff(float); KILN_SIMD double erf(double);
KILN_SIMD float powf(float, float); KILN_SIMD double pow(double, double);
KILN_SIMD float atan2f(float, float); KILN_SIMD double atan2(double, double);
float sqrtf(float); double sqrt(double);
float floorf(float); double floor(double);
float ceilf(float); double ceil(double);
float nearbyintf(float); double nearbyint(double);
float fmodf(float, float); double fmod(double, double);
#define KILN_HELPER static inline
static inline float kiln_bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t kiln_f_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
)";

// The cuda dialect's header: NVRTC has no libc headers; bit casts are intrinsics.
constexpr const char* kCudaHeader =
    R"(typedef signed char int8_t; typedef short int16_t; typedef int int32_t;
typedef long long int64_t; typedef unsigned char uint8_t; typedef unsigned short uint16_t;
typedef unsigned int uint32_t; typedef unsigned long long uint64_t;
#define INT64_C(x) x##LL
#define INT32_MIN (-2147483647 - 1)
#define INT64_MIN (-9223372036854775807LL - 1)
#define KILN_PREFETCH(p) ((void)(p))
#define KILN_VECTOR_WIDTH(w)
)";
// After kCudaHeader, the argument block (its sizes from c_emitter.h), then these.
constexpr const char* kCudaHelpers = R"(#define KILN_HELPER __device__ static inline
KILN_HELPER float kiln_bits_f(uint32_t u) { return __uint_as_float(u); }
KILN_HELPER uint32_t kiln_f_bits(float f) { return __float_as_uint(f); }
/* `width` consecutive elements loaded or stored as one aligned access. */
template <class T, int width> struct alignas(sizeof(T) * width) kiln_vec { T v[width]; };
/* A run of `width` elements at p: one vector access when p is aligned (a uniform branch). */
template <class T, int width> __device__ static inline kiln_vec<T, width> kiln_ld(const T* p, bool aligned) {
  if (aligned) return *(const kiln_vec<T, width>*)p;
  kiln_vec<T, width> r;
  #pragma unroll
  for (int e = 0; e < width; ++e) r.v[e] = p[e];
  return r;
}
template <class T, int width> __device__ static inline void kiln_st(T* p, const kiln_vec<T, width>& r, bool aligned) {
  if (aligned) { *(kiln_vec<T, width>*)p = r; return; }
  #pragma unroll
  for (int e = 0; e < width; ++e) p[e] = r.v[e];
}
)";

// Helpers every kernel may use, in either dialect (KILN_HELPER: static inline, __device__
// for CUDA), so unused ones cost nothing.
constexpr const char* kHelpers =
    R"(KILN_HELPER float kiln_bf2f(uint16_t h) { return kiln_bits_f((uint32_t)h << 16); }
KILN_HELPER uint16_t kiln_f2bf(float f) {
  uint32_t u = kiln_f_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
KILN_HELPER float kiln_h2f(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return kiln_bits_f(sign | 0x7f800000u | (m << 13));
  if (e == 0) { float v = (float)m * 5.9604644775390625e-8f; return sign ? -v : v; }
  return kiln_bits_f(sign | ((e + 112) << 23) | (m << 13));
}
KILN_HELPER uint16_t kiln_f2h(float f) {
  uint32_t u = kiln_f_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
  if (a < 0x38800000u) {
    float v = kiln_bits_f(a) * 16777216.0f; uint32_t q = (uint32_t)v; float r = v - (float)q;
    if (r > 0.5f || (r == 0.5f && (q & 1u))) ++q;
    return (uint16_t)(sign | q);
  }
  a += 0xfffu + ((a >> 13) & 1u);
  return (uint16_t)(sign | ((a - 0x38000000u) >> 13));
}
KILN_HELPER int32_t kiln_f2i32(double v) { return (v >= -2147483648.0 && v < 2147483648.0) ? (int32_t)v : INT32_MIN; }
KILN_HELPER int64_t kiln_f2i64(double v) { return (v >= -9223372036854775808.0 && v < 9223372036854775808.0) ? (int64_t)v : INT64_MIN; }
KILN_HELPER float kiln_remf(float a, float b) { float m = fmodf(a, b); return (m != 0 && ((b < 0) != (m < 0))) ? m + b : m; }
KILN_HELPER double kiln_rem(double a, double b) { double m = fmod(a, b); return (m != 0 && ((b < 0) != (m < 0))) ? m + b : m; }
KILN_HELPER float kiln_inff(void) { return kiln_bits_f(0x7f800000u); }
KILN_HELPER float kiln_nanf(void) { return kiln_bits_f(0x7fc00000u); }
)";

// The functions a draw computes with. On the CPU, libm's scalar log and cos under other
// names: declared without the simd attribute, gcc cannot swap in libmvec's vector variants,
// whose last bits differ from eager's (std::log and std::cos).
constexpr const char* kCppRandomFunctions = R"(double kiln_scalar_log(double) __asm__("log");
double kiln_scalar_cos(double) __asm__("cos");
#define KILN_RANDOM_LOG kiln_scalar_log
#define KILN_RANDOM_COS kiln_scalar_cos
#define KILN_RANDOM_SQRT sqrt
)";
constexpr const char* kCudaRandomFunctions = R"(#define KILN_RANDOM_LOG log
#define KILN_RANDOM_COS cos
#define KILN_RANDOM_SQRT sqrt
)";

}  // namespace

const Dialect& cpp_dialect() {
  // `if(parallel: ...)`: a bare if clause would also switch off the simd construct
  // (OpenMP 5), leaving small loops unvectorized.
  // The KILN_ macros come from the kernel's config (config_prologue).
  // Immortal: background tuning threads may still emit while the process exits.
  static const std::string* preamble = new std::string(std::string(kCppHeader) + kHelpers);
  static const std::string* random =
      new std::string(std::string(kCppRandomFunctions) + kPhiloxSource);
  static const Dialect d{
      "cpp",
      Device::cpu,
      preamble->c_str(),
      "KILN_VECTOR_ATTR void {name}(const int64_t* sizes, char* const* buffers) {{\n",
      "restrict",
      "#pragma omp parallel for if({n} >= KILN_GRAIN) KILN_NUM_THREADS",
      "#pragma omp simd",
      "#pragma omp parallel for simd if(parallel: {n} >= KILN_GRAIN) KILN_NUM_THREADS",
      "#pragma omp simd {clauses}",
      "#pragma omp parallel for simd {clauses} KILN_NUM_THREADS",
      "reduction({op}:{var})",
      "#pragma omp parallel for simd if(parallel: {n} >= KILN_GRAIN) KILN_NUM_THREADS\n"
      "  for (int64_t {i} = 0; {i} < {n}; ++{i}) {{",
      random->c_str()};
  return d;
}

const Dialect& cuda_dialect() {
  static const std::string* preamble =
      new std::string(std::string(kCudaHeader) +
                      "/* A kernel's arguments, passed by value: the size symbols and the "
                      "buffers (outputs first). */\n" +
                      std::string(kKilnArgsSource) + "\n" + kCudaHelpers + kHelpers);
  static const std::string* random =
      new std::string(std::string(kCudaRandomFunctions) + kPhiloxSource);
  // Its threads are the grid's, laid out by the launch: no loop pragmas.
  static const Dialect d{
      "cuda",
      Device::cuda,
      preamble->c_str(),
      "extern \"C\" __global__ void {bounds}{name}(const KilnArgs args) {{\n"
      "  const int64_t* sizes = args.sizes;\n  char* const* buffers = args.buffers;\n",
      "__restrict__",
      "",
      "",
      "",
      "",
      "",
      "",
      "for (int64_t {i} = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; {i} < {n};"
      " {i} += (int64_t)gridDim.x * blockDim.x) {{",
      random->c_str()};
  return d;
}

std::string dialect_kernel_name(const std::string& name, const Dialect& dialect) {
  return std::string(dialect.name) + name.substr(name.find('_'));
}

std::string kernel_signature(const std::string& name, const Dialect& dialect,
                             const std::string& bounds) {
  return fmt::format(fmt::runtime(dialect.signature), fmt::arg("name", name),
                     fmt::arg("bounds", bounds));
}

}  // namespace kiln
