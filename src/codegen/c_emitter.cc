#include "codegen/c_emitter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <cstdlib>
#include <string_view>

#include "graph/infer.h"
#include "kiln/error.h"
#include "support/fault_injection.h"

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
constexpr const char* kCudaHeader = R"(typedef signed char int8_t; typedef short int16_t; typedef int int32_t;
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
constexpr const char* kHelpers = R"(KILN_HELPER float kiln_bf2f(uint16_t h) { return kiln_bits_f((uint32_t)h << 16); }
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

constexpr const char* kParallelSimdLoop = "#pragma omp parallel for simd if(parallel: {n} >= KILN_GRAIN) KILN_NUM_THREADS";


// KILN_INJECT_FAULT=lowering:OP (tests of the minifier): OP's rendering is off by one, an
// accuracy bug of the kind the minifier hunts.
bool broken_by_fault(Op op) {
  InjectedFault fault = injected_fault();
  return fault.kind == InjectedFault::Kind::lowering && fault.op == op_name(op);
}

struct TypeNames {
  const char* storage;
  const char* compute;
};

TypeNames type_names(DType d) {
  switch (d) {
    case DType::f32: return {"float", "float"};
    case DType::f64: return {"double", "double"};
    case DType::f16: return {"uint16_t", "float"};
    case DType::bf16: return {"uint16_t", "float"};
    case DType::i32: return {"int32_t", "int32_t"};
    case DType::i64: return {"int64_t", "int64_t"};
    case DType::bool_: return {"uint8_t", "int"};
  }
  return {"?", "?"};
}

bool is_double(DType d) { return d == DType::f64; }

// Converts a compute-typed value from one dtype's compute type to another's.
std::string convert(const std::string& v, DType from, DType to) {
  if (from == to) return v;
  if (to == DType::bool_) return fmt::format("({} != 0)", v);
  if (is_integral(to) && is_floating(from))
    return fmt::format("kiln_f2i{}((double){})", to == DType::i32 ? 32 : 64, v);
  if (type_names(from).compute == std::string(type_names(to).compute)) return v;
  return fmt::format("(({}){})", type_names(to).compute, v);
}

std::string literal(double value, bool integer, DType dtype) {
  if (integer && !is_floating(dtype)) return fmt::format("INT64_C({})", static_cast<int64_t>(value));
  if (std::isnan(value)) return is_double(dtype) ? "((double)kiln_nanf())" : "kiln_nanf()";
  if (std::isinf(value)) {
    std::string inf = is_double(dtype) ? "((double)kiln_inff())" : "kiln_inff()";
    return value > 0 ? inf : "(-" + inf + ")";
  }
  auto decimal = [](std::string s) {
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
  };
  if (is_double(dtype)) return decimal(fmt::format("{:.17g}", value));
  if (is_floating(dtype)) return decimal(fmt::format("{:.9g}", value)) + "f";
  return fmt::format("({})({:.17g})", type_names(dtype).compute, value);
}

// A stored element `raw` as its compute type.
std::string load_value(const std::string& raw, DType dtype) {
  if (dtype == DType::f16) return fmt::format("kiln_h2f({})", raw);
  if (dtype == DType::bf16) return fmt::format("kiln_bf2f({})", raw);
  if (dtype == DType::bool_) return fmt::format("(int){}", raw);
  return raw;
}

// How KernelWriter::index renders a flat row kernel's own element (row i0, element i1).
constexpr const char* kRowElementIndex = "(i0 * R + i1)";

class KernelWriter {
 public:
  // `base`: where the kernel's parameters start among the function's (foreach parts).
  explicit KernelWriter(const LoopKernel& k, int base = 0) : k_(k), base_(base) {}
  std::string param(int p) const { return fmt::format("p{}", base_ + p); }

  // Starts a nested scope whose statements go to `out` at `indent`.
  void push(std::string* out, std::string indent) {
    scopes_.push_back({out, std::move(indent), {}});
  }
  void pop() { scopes_.pop_back(); }
  std::string* out() { return scopes_.back().out; }
  void line(const std::string& text) { *scopes_.back().out += scopes_.back().indent + text + "\n"; }

  // Renders `e` into temporaries of the current scope; returns the name holding its value.
  std::string value(const ExprPtr& e) {
    if (e->kind == Expr::Kind::Accumulator) {
      const ReducePhase& phase = k_.phases[static_cast<size_t>(e->accumulator)];
      return fmt::format("(({})a{}{})", type_names(phase.dtype).compute, e->accumulator,
                         k_.columns ? "[i0 - c0]" : "");
    }
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->names.find(e.get());
      if (found != it->names.end()) return found->second;
    }
    std::string rhs = rhs_of(*e);
    std::string name = fmt::format("t{}", counter_++);
    line(fmt::format("const {} {} = {};", type_names(e->dtype).compute, name, rhs));
    scopes_.back().names.emplace(e.get(), name);
    return name;
  }

  // Makes `name` the value of `e` in the current scope (a value cached in memory).
  void bind(const Expr* e, std::string name) { scopes_.back().names.emplace(e, std::move(name)); }
  // GPU row kernels: divisions by a row's accumulator become reciprocal multiplies.
  void divide_by_reciprocal() { divide_by_reciprocal_ = true; }
  // A load's value as an expression (no temporary): the text register-held rows key on.
  std::string rhs_text(const Expr& load) { return rhs_of(load); }

  std::string index(const IndexPtr& i) const {
    std::string text = render_index(i);
    if (k_.kind == LoopKernel::Kind::Pointwise) return k_.flat ? "i0" : text;
    if (k_.flat && text == k_.full_index_text) return kRowElementIndex;
    if (k_.flat && text == k_.row_index_text) return "i0";
    return text;
  }

 private:
  struct Scope {
    std::string* out;
    std::string indent;
    std::map<const Expr*, std::string> names;
  };

  std::string rhs_of(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Load: return load_value(fmt::format("{}[{}]", param(e.param), index(e.index)), e.dtype);
      case Expr::Kind::Apply: return broken_by_fault(e.op) ? "(" + apply(e) + " + 1)" : apply(e);
      case Expr::Kind::Accumulator: break;
    }
    return "?";
  }

  std::string apply(const Expr& e) {
    std::vector<DType> in_dtypes;
    for (const ExprPtr& a : e.args) in_dtypes.push_back(a->dtype);
    OpRule rule = op_info(e.op).rule;
    DType out = e.dtype;
    if (rule == OpRule::Cast) return convert(value(e.args[0]), e.args[0]->dtype, out);
    if (rule == OpRule::Where) {
      return fmt::format("({} ? {} : {})", value(e.args[0]), convert(value(e.args[1]), in_dtypes[1], out),
                         convert(value(e.args[2]), in_dtypes[2], out));
    }
    if (rule == OpRule::Clamp) {
      std::string v = convert(value(e.args[0]), in_dtypes[0], out);
      std::string x = fmt::format("c{}", counter_++);
      line(fmt::format("{} {} = {};", type_names(out).compute, x, v));
      auto bound = [&](const char* name, const char* cmp) {
        if (auto s = e.attrs.find_scalar(name))
          line(fmt::format("if ({} {} {}) {} = {};", x, cmp,
                           literal(s->to_double(), !s->is_floating(), out), x,
                           literal(s->to_double(), !s->is_floating(), out)));
      };
      bound("min", "<");  // a NaN fails both tests and stays NaN
      bound("max", ">");
      return x;
    }
    if (rule == OpRule::UnarySame || rule == OpRule::UnaryFloat || rule == OpRule::UnaryPredicate) {
      DType compute = rule == OpRule::UnaryPredicate ? in_dtypes[0] : out;
      return unary(e.op, convert(value(e.args[0]), in_dtypes[0], compute), compute);
    }
    // Binary: operands in the compute dtype, a scalar attribute on its side.
    DType compute = binary_compute_dtype(e.op, e.attrs, in_dtypes);
    std::string a = convert(value(e.args[0]), in_dtypes[0], compute), b;
    if (auto s = e.attrs.find_scalar("scalar")) {
      b = literal(s->to_double(), !s->is_floating(), compute);
      if (s->kind() == Scalar::Kind::integer && !is_floating(compute))
        b = fmt::format("(({}){})", type_names(compute).compute, s->to_int());
      if (e.attrs.get_bool("scalar_first", false)) std::swap(a, b);
    } else {
      b = convert(value(e.args[1]), in_dtypes[1], compute);
      // A division by a row's accumulator (softmax's sum): a multiply by its reciprocal,
      // which the compiler computes once per row (at most 1.5 ulp from the division).
      if (divide_by_reciprocal_ && e.op == Op::div && is_floating(compute) &&
          e.args[1]->kind == Expr::Kind::Accumulator)
        return fmt::format("({} * ({} / {}))", a, literal(1.0, false, compute), b);
    }
    return binary(e.op, a, b, compute);
  }

  bool divide_by_reciprocal_ = false;


  static std::string fn(const char* name, DType d) {
    return is_double(d) ? std::string(name) : std::string(name) + "f";
  }

  static std::string unary(Op op, const std::string& x, DType d) {
    bool fp = is_floating(d);
    const char* c = type_names(d).compute;
    switch (op) {
      case Op::neg:
        return fp ? fmt::format("(-{})", x) : fmt::format("(({})(0u - (uint64_t){}))", c, x);
      case Op::abs:
        return fp ? fmt::format("({0} < 0 ? -{0} : {0})", x)
                  : fmt::format("({0} < 0 ? ({1})(0u - (uint64_t){0}) : {0})", x, c);
      case Op::relu: return fmt::format("({0} < 0 ? ({1})0 : {0})", x, c);
      case Op::sign: return fmt::format("(({})((0 < {}) - ({} < 0)))", c, x, x);
      case Op::floor: return fp ? fmt::format("{}({})", fn("floor", d), x) : x;
      case Op::ceil: return fp ? fmt::format("{}({})", fn("ceil", d), x) : x;
      case Op::round: return fp ? fmt::format("{}({})", fn("nearbyint", d), x) : x;
      case Op::exp: return fmt::format("{}({})", fn("exp", d), x);
      case Op::log: return fmt::format("{}({})", fn("log", d), x);
      case Op::log1p: return fmt::format("{}({})", fn("log1p", d), x);
      case Op::sqrt: return fmt::format("{}({})", fn("sqrt", d), x);
      case Op::rsqrt: return fmt::format("(({})1 / {}({}))", c, fn("sqrt", d), x);
      case Op::sin: return fmt::format("{}({})", fn("sin", d), x);
      case Op::cos: return fmt::format("{}({})", fn("cos", d), x);
      case Op::tan: return fmt::format("{}({})", fn("tan", d), x);
      case Op::tanh: return fmt::format("{}({})", fn("tanh", d), x);
      case Op::erf: return fmt::format("{}({})", fn("erf", d), x);
      case Op::reciprocal: return fmt::format("(({})1 / {})", c, x);
      case Op::sigmoid: return fmt::format("(({0})1 / (({0})1 + {1}(-{2})))", c, fn("exp", d), x);
      case Op::isnan: return fp ? fmt::format("({0} != {0})", x) : "0";
      case Op::logical_not: return fmt::format("({} == 0)", x);
      default: break;
    }
    throw CompileError(fmt::format("cpp codegen: no rendering of unary op {}", op_name(op)));
  }

  static std::string binary(Op op, const std::string& a, const std::string& b, DType d) {
    bool fp = is_floating(d);
    const char* c = type_names(d).compute;
    auto wrap = [&](char sym) {
      if (fp || d == DType::bool_) return fmt::format("({} {} {})", a, sym, b);
      return fmt::format("(({})((uint64_t){} {} (uint64_t){}))", c, a, sym, b);
    };
    switch (op) {
      case Op::add: return wrap('+');
      case Op::sub: return wrap('-');
      case Op::mul: return wrap('*');
      case Op::div: return fmt::format("({} / {})", a, b);
      case Op::maximum:
        return fmt::format("({0} != {0} ? {0} : ({1} != {1} ? {1} : ({0} > {1} ? {0} : {1})))", a, b);
      case Op::minimum:
        return fmt::format("({0} != {0} ? {0} : ({1} != {1} ? {1} : ({0} < {1} ? {0} : {1})))", a, b);
      case Op::pow: return fmt::format("{}({}, {})", fn("pow", d), a, b);
      case Op::atan2: return fmt::format("{}({}, {})", fn("atan2", d), a, b);
      case Op::fmod: return fmt::format("{}({}, {})", fn("fmod", d), a, b);
      case Op::remainder: return fmt::format("{}({}, {})", is_double(d) ? "kiln_rem" : "kiln_remf", a, b);
      case Op::eq: return fmt::format("({} == {})", a, b);
      case Op::ne: return fmt::format("({} != {})", a, b);
      case Op::lt: return fmt::format("({} < {})", a, b);
      case Op::le: return fmt::format("({} <= {})", a, b);
      case Op::gt: return fmt::format("({} > {})", a, b);
      case Op::ge: return fmt::format("({} >= {})", a, b);
      case Op::logical_and: return fmt::format("(({} != 0) && ({} != 0))", a, b);
      case Op::logical_or: return fmt::format("(({} != 0) || ({} != 0))", a, b);
      case Op::logical_xor: return fmt::format("(({} != 0) != ({} != 0))", a, b);
      default: break;
    }
    throw CompileError(fmt::format("cpp codegen: no rendering of binary op {}", op_name(op)));
  }

  const LoopKernel& k_;
  int base_;
  std::vector<Scope> scopes_;
  int counter_ = 0;
};

std::string store(const std::string& v, DType d) {
  if (d == DType::f16) return fmt::format("kiln_f2h({})", v);
  if (d == DType::bf16) return fmt::format("kiln_f2bf({})", v);
  if (d == DType::bool_) return fmt::format("(uint8_t)({} != 0)", v);
  return v;
}

}  // namespace

const Dialect& cpp_dialect() {
  // `if(parallel: ...)`: a bare if clause would also switch off the simd construct
  // (OpenMP 5), leaving small loops unvectorized.
  // The KILN_ macros come from the kernel's config (config_prologue).
  // Immortal: background tuning threads may still emit while the process exits.
  static const std::string* preamble = new std::string(std::string(kCppHeader) + kHelpers);
  static const Dialect d{"cpp",
                         preamble->c_str(),
                         "KILN_VECTOR_ATTR void {name}(const int64_t* sizes, char* const* buffers) {{\n",
                         "restrict",
                         "#pragma omp parallel for if({n} >= KILN_GRAIN) KILN_NUM_THREADS",
                         "#pragma omp simd",
                         "#pragma omp parallel for simd if(parallel: {n} >= KILN_GRAIN) KILN_NUM_THREADS\n"
                         "  for (int64_t {i} = 0; {i} < {n}; ++{i}) {{",
                         true,
                         false,
                         0};
  return d;
}

const Dialect& cuda_dialect() {
  static const std::string* preamble = new std::string(
      std::string(kCudaHeader) +
      fmt::format("/* A kernel's arguments, passed by value: the size symbols and the buffers (outputs first). */\n"
                  "struct KilnArgs {{ int64_t sizes[{}]; char* buffers[{}]; }};\n",
                  kCudaMaxSymbols, kCudaMaxBuffers) +
      kCudaHelpers + kHelpers);
  static const Dialect d{"cuda",
                         preamble->c_str(),
                         "extern \"C\" __global__ void {bounds}{name}(const KilnArgs args) {{\n"
                         "  const int64_t* sizes = args.sizes;\n  char* const* buffers = args.buffers;\n",
                         "__restrict__",
                         "",
                         "",
                         "for (int64_t {i} = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; {i} < {n};"
                         " {i} += (int64_t)gridDim.x * blockDim.x) {{",
                         false,
                         true,
                         4};
  return d;
}

std::string dialect_kernel_name(const std::string& name, const Dialect& dialect) {
  return std::string(dialect.name) + name.substr(name.find('_'));
}

std::string kernel_signature(const std::string& name, const Dialect& dialect, const std::string& bounds) {
  return fmt::format(fmt::runtime(dialect.signature), fmt::arg("name", name), fmt::arg("bounds", bounds));
}


namespace {

// The accumulator of a reduction phase: f64 for floating sums and products (the oracle's
// precision), i64 for integer ones, the value's own type for max and min.
// Format strings use {a} (the accumulator), {v} (the element's value) and {n} (a NaN flag).
struct Accumulation {
  std::string type, init, update;
  std::string clauses;  // OpenMP reduction clauses: the loop may run in any order
  std::string nan_flag;  // max/min of floats: declared before, set when a NaN was seen
  std::string after;     // applied to the accumulator after the loop
  std::string combine;   // two partial accumulators {x} and {y} into one (GPU block reductions)
};

Accumulation accumulation(const ReducePhase& phase) {
  DType d = phase.dtype;
  bool fp = is_floating(d);
  switch (phase.op) {
    case Op::sum:
      return fp ? Accumulation{"double", "0.0", "{a} += (double){v};", "reduction(+:{a})", "", "", "{x} + {y}"}
                : Accumulation{"int64_t", "0", "{a} = (int64_t)((uint64_t){a} + (uint64_t){v});",
                               "reduction(+:{a})", "", "", "(int64_t)((uint64_t){x} + (uint64_t){y})"};
    case Op::prod:
      return fp ? Accumulation{"double", "1.0", "{a} *= (double){v};", "reduction(*:{a})", "", "", "{x} * {y}"}
                : Accumulation{"int64_t", "1", "{a} = (int64_t)((uint64_t){a} * (uint64_t){v});",
                               "reduction(*:{a})", "", "", "(int64_t)((uint64_t){x} * (uint64_t){y})"};
    case Op::amax:
    case Op::amin: {
      std::string type = type_names(d).compute;
      std::string init = fp ? (phase.op == Op::amax ? "(-kiln_inff())" : "kiln_inff()")
                            : d == DType::i32   ? (phase.op == Op::amax ? "INT32_MIN" : "INT32_MAX")
                            : d == DType::i64   ? (phase.op == Op::amax ? "INT64_MIN" : "INT64_MAX")
                                                : (phase.op == Op::amax ? "0" : "1");
      // Any order gives the same max; a NaN anywhere makes the result NaN, through a flag
      // reduced beside it (a NaN-propagating compare would not vectorize).
      const char* cmp = phase.op == Op::amax ? ">" : "<";
      const char* omp = phase.op == Op::amax ? "max" : "min";
      std::string update = fmt::format("{{a}} = {{v}} {} {{a}} ? {{v}} : {{a}};", cmp);
      std::string combine = fmt::format("({{y}} {} {{x}} ? {{y}} : {{x}})", cmp);
      if (!fp) return {type, init, update, fmt::format("reduction({}:{{a}})", omp), "", "", combine};
      std::string nan = d == DType::f64 ? "((double)kiln_nanf())" : "kiln_nanf()";
      return {type, init, update + " {n} |= ({v} != {v});",
              fmt::format("reduction({}:{{a}}) reduction(|:{{n}})", omp), "int {n} = 0;",
              fmt::format("if ({{n}}) {{a}} = {};", nan), combine};
    }
    default: break;
  }
  throw CompileError(fmt::format("cpp codegen: {} is not a row reduction", op_name(phase.op)));
}

bool reads_accumulator(const ExprPtr& e) {
  if (e->kind == Expr::Kind::Accumulator) return true;
  for (const ExprPtr& a : e->args)
    if (reads_accumulator(a)) return true;
  return false;
}

// The GPU's accumulations: as accumulation(), except that float max and min propagate a NaN
// through the compare itself (no flag and no second block-wide combine; the CPU's flag is
// there for vectorization, which GPU threads do not need).
Accumulation gpu_accumulation(const ReducePhase& phase) {
  Accumulation acc = accumulation(phase);
  if (acc.nan_flag.empty()) return acc;
  const char* cmp = phase.op == Op::amax ? ">" : "<";
  acc.update = fmt::format("{{a}} = ({{v}} {0} {{a}} || {{v}} != {{v}}) ? {{v}} : {{a}};", cmp);
  acc.combine = fmt::format("(({{y}}) {0} ({{x}}) || ({{y}}) != ({{y}})) ? ({{y}}) : ({{x}})", cmp);
  acc.clauses.clear();
  acc.nan_flag.clear();
  acc.after.clear();
  return acc;
}

bool is_output_param(const LoopKernel& k, size_t p) {
  if (k.kind != LoopKernel::Kind::Foreach) return static_cast<int>(p) < k.num_outputs;
  size_t base = 0;
  for (const LoopKernel& part : k.parts) {
    if (p == base) return true;
    base += part.params.size();
  }
  return false;
}

std::string params_and_sizes(const LoopKernel& k, int num_symbols, const Dialect& dialect) {
  std::string src;
  for (int s = 0; s < num_symbols; ++s) src += fmt::format("  const int64_t s{} = sizes[{}];\n", s, s);
  if (num_symbols == 0) src += "  (void)sizes;\n";
  for (size_t p = 0; p < k.params.size(); ++p) {
    const char* t = type_names(k.param_dtypes[p]).storage;
    src += fmt::format("  {}{}* {} p{} = ({}*)buffers[{}];\n", is_output_param(k, p) ? "" : "const ", t,
                       dialect.restrict_word, p, t, p);
  }
  return src;
}

std::string product(const std::vector<std::string>& extents) {
  return extents.empty() ? std::string("1") : fmt::format("{}", fmt::join(extents, " * "));
}

bool contains(const ExprPtr& tree, const Expr* target) {
  if (tree.get() == target) return true;
  for (const ExprPtr& a : tree->args)
    if (contains(a, target)) return true;
  return false;
}

bool has_transcendental(const ExprPtr& tree) {
  if (tree->kind == Expr::Kind::Apply && op_info(tree->op).rule == OpRule::UnaryFloat &&
      tree->op != Op::sqrt && tree->op != Op::rsqrt && tree->op != Op::reciprocal)
    return true;
  for (const ExprPtr& a : tree->args)
    if (has_transcendental(a)) return true;
  return false;
}

// A row value worth computing once: a phase's per-element value that an element store also
// needs and that costs a vector math call (softmax's exp(x - max)). The phase loop writes it
// to that store's own element of the output (same dtype, so exact), and the store loop reads
// it back from cache instead of recomputing it. Each element is read back only by the
// iteration that wrote it, so this holds under any loop split.
struct CachedRowValue {
  int phase = -1;
  int param = -1;  // the output parameter that holds it
  const Expr* value = nullptr;
};

CachedRowValue find_cached_row_value(const LoopKernel& k) {
  if (!k.flat || k.columns) return {};
  for (size_t p = k.phases.size(); p-- > 0;) {
    const ExprPtr& v = k.phases[p].value;
    if ((v->dtype != DType::f32 && v->dtype != DType::f64) || !has_transcendental(v)) continue;
    for (const Store& st : k.stores) {
      if (render_index(st.index) != k.full_index_text ||
          k.param_dtypes[static_cast<size_t>(st.param)] != v->dtype || !contains(st.value, v.get()))
        continue;
      return {static_cast<int>(p), st.param, v.get()};
    }
  }
  return {};
}

void collect_row_loads(const ExprPtr& e, const LoopKernel& k, std::set<int>* params) {
  if (e->kind == Expr::Kind::Load && render_index(e->index) == k.full_index_text) params->insert(e->param);
  for (const ExprPtr& a : e->args) collect_row_loads(a, k, params);
}

// The inputs a row kernel reads along its rows: the next row of each is prefetched while
// the current one is worked on from cache (the first phase streams it from memory; without
// this the later phases leave the memory idle). 12-15% on layer_norm here.
std::set<int> streamed_inputs(const LoopKernel& k) {
  std::set<int> params;
  if (!k.flat || k.columns) return params;
  for (const ReducePhase& ph : k.phases) collect_row_loads(ph.value, k, &params);
  for (const Store& st : k.stores) collect_row_loads(st.value, k, &params);
  return params;
}

// The loop over the row's elements (variable i1), in chunks that first prefetch the same
// chunk of the next row of `streamed` when it is not empty. Returns the opening lines; the
// loop closes with as many "}" as `*depth`.
std::string element_loop(const LoopKernel& k, const std::set<int>& streamed, const std::string& pragma,
                         const std::string& indent, int* depth) {
  if (streamed.empty()) {
    *depth = 1;
    return indent + pragma + "\n" + indent + "for (int64_t i1 = 0; i1 < R; ++i1) {\n";
  }
  *depth = 2;
  std::string src = indent + "for (int64_t c1 = 0; c1 < R; c1 += KILN_CHUNK) {\n";
  src += indent + "  const int64_t e1 = c1 + KILN_CHUNK < R ? c1 + KILN_CHUNK : R;\n";
  src += indent + "  if (i0 + 1 < rows) {\n";
  for (int p : streamed) {
    int elements_per_line = 64 / static_cast<int>(dtype_size(k.param_dtypes[static_cast<size_t>(p)]));
    src += fmt::format("{}    for (int64_t q = c1; q < e1; q += {}) KILN_PREFETCH(&p{}[(i0 + 1) * R + q]);\n",
                       indent, elements_per_line, p);
  }
  src += indent + "  }\n" + indent + "  " + pragma + "\n";
  src += indent + "  for (int64_t i1 = c1; i1 < e1; ++i1) {\n";
  return src;
}

// The loop over rows. Many rows: one thread per block of rows, each phase a simd loop.
// One long row (a full reduction): the rows run in order and each phase's loop is split
// across the threads instead (a split reduction). Entering a parallel region per phase per
// row would cost more than short rows take, so the two forms are separate code.
std::string row_loop(const LoopKernel& k, const Dialect& dialect, bool split) {
  KernelWriter w(k);
  const CachedRowValue cached = find_cached_row_value(k);
  // Prefetching goes in the last loop that reads the row after the first has streamed it.
  const std::set<int> streamed = split ? std::set<int>{} : streamed_inputs(k);
  const size_t prefetch_loop = k.phases.size() >= 2 ? k.phases.size() - 1 : k.phases.size();
  int depth = 1;
  std::string body;
  w.push(&body, "    ");
  for (size_t p = 0; p < k.phases.size(); ++p) {
    Accumulation acc = accumulation(k.phases[p]);
    auto fill = [&](const std::string& f, const std::string& v) {
      return fmt::format(fmt::runtime(f), fmt::arg("a", fmt::format("a{}", p)),
                         fmt::arg("n", fmt::format("n{}", p)), fmt::arg("v", v));
    };
    w.line(fmt::format("{} a{} = {};", acc.type, p, acc.init));
    if (!acc.nan_flag.empty()) w.line(fill(acc.nan_flag, ""));
    // Sums and products may be reassociated (f64 accumulators keep them exact enough).
    body += element_loop(k, p == prefetch_loop ? streamed : std::set<int>{},
                         fmt::format("#pragma omp {}simd {}{}", split ? "parallel for " : "", fill(acc.clauses, ""),
                                     split ? " KILN_NUM_THREADS" : ""),
                         "    ", &depth);
    std::string loop_body;
    w.push(&loop_body, depth == 2 ? "        " : "      ");
    std::string v = w.value(k.phases[p].value);
    if (cached.phase == static_cast<int>(p)) w.line(fmt::format("p{}[(i0 * R + i1)] = {};", cached.param, v));
    w.pop();
    body += loop_body;
    w.line((depth == 2 ? "    " : "  ") + fill(acc.update, v));
    if (depth == 2) w.line("  }");
    w.line("}");
    if (!acc.after.empty()) w.line(fill(acc.after, ""));
  }
  for (const Store& st : k.row_stores)
    w.line(fmt::format("p{}[{}] = {};", st.param, w.index(st.index),
                       store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
  if (!k.stores.empty()) {
    body += element_loop(k, prefetch_loop == k.phases.size() ? streamed : std::set<int>{},
                         split ? fmt::format(fmt::runtime(kParallelSimdLoop), fmt::arg("n", "R"))
                               : dialect.simd_loop,
                         "    ", &depth);
    std::string loop_body;
    w.push(&loop_body, depth == 2 ? "        " : "      ");
    if (cached.value) w.bind(cached.value, fmt::format("p{}[(i0 * R + i1)]", cached.param));
    for (const Store& st : k.stores)
      w.line(fmt::format("p{}[{}] = {};", st.param, w.index(st.index),
                         store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
    w.pop();
    body += loop_body;
    if (depth == 2) w.line("  }");
    w.line("}");
  }
  w.pop();
  std::string head = split ? "" : "  " + fmt::format(fmt::runtime(dialect.parallel_loop), fmt::arg("n", "rows * R")) + "\n";
  return head + "  for (int64_t i0 = 0; i0 < rows; ++i0) {\n" + body + "  }\n";
}

// Column form: blocks of rows (the contiguous index) per thread, each phase's reduction
// loop outside a simd loop over the block, per-row accumulators in block-sized arrays.
std::string column_loop(const LoopKernel& k, const Dialect& dialect) {
  const char* const block = "KILN_BLOCK";  // the config's rows per block
  KernelWriter w(k);
  std::string body;
  w.push(&body, "    ");
  w.line(fmt::format("const int64_t c1 = c0 + {0} < rows ? c0 + {0} : rows;", block));
  auto simd_rows = [&](const std::function<void()>& inner, const std::string& indent) {
    w.line(dialect.simd_loop);
    w.line("for (int64_t i0 = c0; i0 < c1; ++i0) {");
    std::string* target = w.out();
    std::string loop_body;
    w.push(&loop_body, indent);
    inner();
    w.pop();
    *target += loop_body;
    w.line("}");
  };
  for (size_t p = 0; p < k.phases.size(); ++p) {
    Accumulation acc = accumulation(k.phases[p]);
    std::string a = fmt::format("a{}[i0 - c0]", p), n = fmt::format("n{}[i0 - c0]", p);
    auto fill = [&](const std::string& f, const std::string& v) {
      return fmt::format(fmt::runtime(f), fmt::arg("a", a), fmt::arg("n", n), fmt::arg("v", v));
    };
    w.line(fmt::format("{} a{}[{}];", acc.type, p, block));
    if (!acc.nan_flag.empty()) w.line(fmt::format("int n{}[{}];", p, block));
    simd_rows([&] {
      w.line(fmt::format("{} = {};", a, acc.init));
      if (!acc.nan_flag.empty()) w.line(n + " = 0;");
    }, "      ");
    w.line("for (int64_t i1 = 0; i1 < R; ++i1) {");
    std::string reduce_body;
    w.push(&reduce_body, "      ");
    w.line(dialect.simd_loop);
    w.line("for (int64_t i0 = c0; i0 < c1; ++i0) {");
    std::string inner;
    w.push(&inner, "        ");
    std::string v = w.value(k.phases[p].value);
    w.line(fill(acc.update, v));
    w.pop();
    reduce_body += inner;
    w.line("}");
    w.pop();
    body += reduce_body;
    w.line("}");
    if (!acc.after.empty()) simd_rows([&] { w.line(fill(acc.after, "")); }, "      ");
  }
  if (!k.row_stores.empty()) {
    simd_rows([&] {
      for (const Store& st : k.row_stores)
        w.line(fmt::format("p{}[{}] = {};", st.param, w.index(st.index),
                           store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
    }, "      ");
  }
  if (!k.stores.empty()) {
    w.line("for (int64_t i1 = 0; i1 < R; ++i1) {");
    std::string outer;
    w.push(&outer, "      ");
    simd_rows([&] {
      for (const Store& st : k.stores)
        w.line(fmt::format("p{}[{}] = {};", st.param, w.index(st.index),
                           store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
    }, "        ");
    w.pop();
    body += outer;
    w.line("}");
  }
  w.pop();
  return "  " + fmt::format(fmt::runtime(dialect.parallel_loop), fmt::arg("n", "rows * R")) + "\n" +
         fmt::format("  for (int64_t c0 = 0; c0 < rows; c0 += {}) {{\n", block) + body + "  }\n";
}

// The row loads of a row kernel: loads of streamed params at the row's own element.
void collect_row_load_exprs(const ExprPtr& e, const LoopKernel& k, std::vector<const Expr*>* out) {
  if (e->kind == Expr::Kind::Load && render_index(e->index) == k.full_index_text) out->push_back(e.get());
  for (const ExprPtr& a : e->args) collect_row_load_exprs(a, k, out);
}

// Rows of a constant length the block covers in at most kMaxRegisterElements elements a
// thread are held in registers: read from memory once, however many phases pass over them
// (softmax: max, sum, store).
constexpr int64_t kMaxRegisterElements = 16;
// The constant length of k's rows, or 0.
int64_t constant_row_length(const LoopKernel& k) {
  int64_t r = 1;
  for (int64_t d : k.reduced_dims) {
    const Dim& dim = k.shape[static_cast<size_t>(d)];
    if (!dim.is_const()) return 0;
    r *= dim.coeff;
  }
  return r;
}

// The layout of a register-held row: each thread holds `chunks` runs of `width` consecutive
// elements, run c of thread t starting at element (c * threads + t) * width. A warp's runs
// are contiguous (coalesced), and each run is one access of up to 16 bytes per buffer.
// `width` divides the row, so a run lies wholly inside it or wholly past its end.
struct HeldRow {
  int64_t chunks = 0;
  int width = 1;
  int64_t elements() const { return chunks * width; }
};
HeldRow held_row(const LoopKernel& k) {
  if (!k.flat || k.columns) return {};
  const int64_t r = constant_row_length(k);
  if (r <= 0) return {};
  size_t widest = 1;
  for (DType d : k.param_dtypes) widest = std::max<size_t>(widest, dtype_size(d));
  int width = static_cast<int>(std::min<size_t>(8, 16 / widest));
  while (width > 1 && r % width != 0) width /= 2;
  const int64_t run = int64_t{gpu_block_threads(k)} * width;
  const HeldRow layout{(r + run - 1) / run, width};
  return layout.elements() <= kMaxRegisterElements ? layout : HeldRow{};
}
int64_t register_elements(const LoopKernel& k) { return held_row(k).elements(); }

void collect_loads(const ExprPtr& e, std::vector<const Expr*>* out) {
  if (e->kind == Expr::Kind::Load) out->push_back(e.get());
  for (const ExprPtr& a : e->args) collect_loads(a, out);
}

// GPU reductions (Dialect::block_rows). Row form: rows over blocks (grid-striding), each
// phase's elements over the block's threads, the partial accumulators combined first within
// each warp (shuffles), then across warps through shared memory, every thread folding the
// warp partials in the same order (deterministic). Register-held rows (HeldRow) are loaded
// once into r<n>[j]; their loops run over the thread's runs, reading and writing each run of
// a row-contiguous buffer as one vector (kiln_ld/kiln_st, element by element when a base
// pointer is misaligned).
// Column form (reduced dims lead): one row per thread, its reduction sequential, so
// neighbouring threads read neighbouring addresses (coalesced).
std::string block_row_loop(const LoopKernel& k) {
  const bool per_block = !k.columns;
  LoopKernel scalar_form = k;
  scalar_form.columns = false;  // accumulators are scalars in both GPU forms
  KernelWriter w(scalar_form);
  w.divide_by_reciprocal();
  std::string body;
  w.push(&body, "    ");
  const HeldRow layout = per_block ? held_row(k) : HeldRow{};
  const int64_t held = layout.elements();
  const int width = layout.width;
  const int threads = gpu_block_threads(k);
  const bool split = gpu_split_reduction(k);
  // Every run inside the row: no bounds test at all.
  const bool whole_runs = held > 0 && constant_row_length(k) % (int64_t{threads} * width) == 0;
  std::vector<const Expr*> row_loads;
  if (held > 0) {
    for (const ReducePhase& ph : k.phases) collect_row_load_exprs(ph.value, k, &row_loads);
    for (const Store& st : k.stores) collect_row_load_exprs(st.value, k, &row_loads);
  }
  // A run's base pointer for an access at `index_text` when it is contiguous along the row
  // (the row's own element, or a vector indexed by the element alone), else "".
  std::set<int> vector_params;  // their base pointers' alignment picks kiln_ld's path
  auto run_pointer = [&](int param, const std::string& index_text) -> std::string {
    if (index_text != kRowElementIndex && index_text != "i1") return "";
    vector_params.insert(param);
    return fmt::format("{} + {}kiln_o", w.param(param), index_text == "i1" ? "" : "kiln_row + ");
  };
  auto vec_type = [&](int param) {
    return fmt::format("{}, {}", type_names(k.param_dtypes[static_cast<size_t>(param)]).storage, width);
  };
  // One register array per distinct row load (by its rendered text), filled up front.
  std::map<std::string, std::string> held_names;
  // Phase values a later loop reads again (softmax's exp(x - max)), kept in registers.
  std::vector<std::pair<const Expr*, std::string>> cached_values;
  auto read_later = [&](size_t phase) {
    const Expr* v = k.phases[phase].value.get();
    for (size_t q = phase + 1; q < k.phases.size(); ++q)
      if (contains(k.phases[q].value, v)) return true;
    for (const Store& st : k.stores)
      if (contains(st.value, v)) return true;
    return false;
  };
  // Register-held loops: over the thread's runs, and within a run over its elements (j: the
  // element's register slot, i1: its index in the row). `values` are the expressions the loop
  // computes: their run-contiguous loads are read as one vector a run.
  // The loop over the thread's runs, c, and the offset of run c in the row.
  auto open_run_loop = [&] {
    w.line(fmt::format("#pragma unroll\n    for (int c = 0; c < {}; ++c) {{", layout.chunks));
    w.line(fmt::format("  const int kiln_o = (c * {} + (int)threadIdx.x) * {};", threads, width));
  };
  auto open_runs = [&](std::string* loop_body, const std::vector<ExprPtr>& values,
                       const std::vector<std::string>& declarations) {
    open_run_loop();
    if (!whole_runs) w.line("  if (kiln_o < R) {");
    const std::string indent(whole_runs ? 6 : 8, ' ');
    w.push(loop_body, indent);
    std::vector<const Expr*> loads;
    for (const ExprPtr& v : values) collect_loads(v, &loads);
    std::map<std::string, std::string> vectors;  // rendered load -> its run vector
    for (const Expr* e : loads) {
      const std::string text = w.rhs_text(*e);
      if (held_names.count(text) || vectors.count(text)) continue;
      const std::string base = run_pointer(e->param, w.index(e->index));
      if (base.empty()) continue;
      const std::string name = fmt::format("kiln_l{}", vectors.size());
      vectors.emplace(text, name);
      w.line(fmt::format("const kiln_vec<{0}> {1} = kiln_ld<{0}>({2}, kiln_aligned);", vec_type(e->param), name, base));
    }
    for (const std::string& text : declarations) w.line(text);
    w.line(fmt::format("#pragma unroll\n{}for (int e = 0; e < {}; ++e) {{", indent, width));
    w.push(loop_body, indent + "  ");
    w.line(fmt::format("const int j = c * {} + e;", width));
    w.line("const int64_t i1 = kiln_o + e;");
    w.line("(void)j; (void)i1;");
    for (const Expr* e : loads) {
      auto found = vectors.find(w.rhs_text(*e));
      if (found != vectors.end()) w.bind(e, load_value(found->second + ".v[e]", e->dtype));
    }
    for (const Expr* e : row_loads) w.bind(e, held_names.at(w.rhs_text(*e)) + "[j]");
    for (const auto& [e, name] : cached_values) w.bind(e, name + "[j]");
  };
  auto close_runs = [&](std::string* loop_body, const std::vector<std::string>& after_elements) {
    w.pop();
    w.line("}");
    for (const std::string& text : after_elements) w.line(text);
    w.pop();
    body += *loop_body;
    if (!whole_runs) w.line("  }");
    w.line("}");
  };
  auto open_elements = [&](std::string* loop_body, const std::vector<ExprPtr>& values) {
    if (held > 0) return open_runs(loop_body, values, {});
    w.line(split       ? "for (int64_t i1 = kiln_lo + threadIdx.x; i1 < kiln_hi; i1 += blockDim.x) {"
           : per_block ? "for (int64_t i1 = threadIdx.x; i1 < R; i1 += blockDim.x) {"
                       : "for (int64_t i1 = 0; i1 < R; ++i1) {");
    w.push(loop_body, "      ");
  };
  auto close_elements = [&](std::string* loop_body) {
    if (held > 0) return close_runs(loop_body, {});
    w.pop();
    body += *loop_body;
    w.line("}");
  };
  if (held > 0) {
    w.line("const int64_t kiln_row = i0 * R;");
    std::string fill;
    for (const Expr* e : row_loads) {
      const std::string text = w.rhs_text(*e);
      if (held_names.count(text)) continue;
      const std::string name = fmt::format("r{}", held_names.size());
      held_names.emplace(text, name);
      w.line(fmt::format("{} {}[{}];", type_names(e->dtype).compute, name, held));
      const std::string run = fmt::format("kiln_h{}", held_names.size() - 1);
      fill += fmt::format("        const kiln_vec<{0}> {1} = kiln_ld<{0}>({2}, kiln_aligned);\n", vec_type(e->param), run,
                          run_pointer(e->param, kRowElementIndex));
      fill += fmt::format("        #pragma unroll\n        for (int e = 0; e < {}; ++e) {}[c * {} + e] = {};\n", width, name,
                          width, load_value(run + ".v[e]", e->dtype));
    }
    open_run_loop();
    if (whole_runs) {
      w.line("  {");
    } else {
      w.line("  if (kiln_o >= R) {");
      for (const auto& [text, name] : held_names)
        w.line(fmt::format("    for (int e = 0; e < {}; ++e) {}[c * {} + e] = 0;", width, name, width));
      w.line("  } else {");
    }
    body += fill;
    w.line("} }");
  }
  // Within each warp by shuffles, then every warp reduces the warps' partials (padded with
  // the identity) the same way: a fixed order, so the result is deterministic.
  auto block_combine = [&](const std::string& var, const std::string& type, const std::string& combine,
                           const std::string& identity) {
    auto fold = [&](const std::string& x, const std::string& y) {
      return fmt::format(fmt::runtime(combine), fmt::arg("x", x), fmt::arg("y", y));
    };
    const std::string shuffle = fmt::format(
        "for (int o = 16; o > 0; o >>= 1) {{ const {} y = __shfl_xor_sync(0xffffffffu, {}, o); {} = {}; }}", type, var,
        var, fold(var, "y"));
    w.line(shuffle);
    w.line(fmt::format("{{ __shared__ {} s_{}[{}];", type, var, threads / 32));
    w.line(fmt::format("  if ((threadIdx.x & 31) == 0) s_{}[threadIdx.x >> 5] = {};", var, var));
    w.line("  __syncthreads();");
    w.line(fmt::format("  {0} = (threadIdx.x & 31) < (blockDim.x >> 5) ? s_{0}[threadIdx.x & 31] : ({1})({2});", var, type,
                       identity));
    w.line("  " + shuffle);
    w.line("  __syncthreads(); }");
  };
  for (size_t p = 0; p < k.phases.size(); ++p) {
    Accumulation acc = gpu_accumulation(k.phases[p]);
    const std::string a = fmt::format("a{}", p), n = fmt::format("n{}", p);
    auto fill = [&](const std::string& f, const std::string& v) {
      return fmt::format(fmt::runtime(f), fmt::arg("a", a), fmt::arg("n", n), fmt::arg("v", v));
    };
    const ExprPtr& value = k.phases[p].value;
    // A thread's few register-held elements are summed in f32 (f32 values), the block's
    // partials in f64: the f64 conversion and add per element were a fifth of the work.
    const bool thread_sum_in_float = held > 0 && k.phases[p].op == Op::sum &&
                                     std::string(type_names(value->dtype).compute) == "float" && acc.type == "double";
    if (thread_sum_in_float) {
      w.line(fmt::format("float {}_t = 0.0f;", a));
      acc.update = "{a}_t += {v};";
    } else {
      w.line(fmt::format("{} {} = {};", acc.type, a, acc.init));
    }
    if (!acc.nan_flag.empty()) w.line(fill(acc.nan_flag, ""));
    const bool cache_value = held > 0 && has_transcendental(value) && read_later(p);
    const std::string cached = fmt::format("c{}", p);
    if (cache_value) w.line(fmt::format("{} {}[{}];", type_names(value->dtype).compute, cached, held));
    std::string loop_body;
    open_elements(&loop_body, {value});
    const std::string v = w.value(value);
    if (cache_value) w.line(fmt::format("{}[j] = {};", cached, v));
    w.line(fill(acc.update, v));
    close_elements(&loop_body);
    if (thread_sum_in_float) w.line(fmt::format("double {0} = (double){0}_t;", a));
    if (cache_value) cached_values.emplace_back(value.get(), cached);
    if (per_block) {
      block_combine(a, acc.type, acc.combine, acc.init);
      if (!acc.nan_flag.empty()) block_combine(n, "int", "({x} | {y})", "0");
    }
    if (split)  // this block's partial of phase p: slot (row, part, phase), 8 bytes each
      w.line(fmt::format("if (kiln_split > 1 && threadIdx.x == 0) *({}*)(kiln_partials + 8 * ((i0 * kiln_split + kiln_part) * {} + {})) = {};",
                         acc.type, k.phases.size(), p, a));
    if (!acc.after.empty()) w.line(fill(acc.after, ""));
  }
  if (split) {
    // The row's last block to finish (the atomic ticket) folds every phase's partials in
    // part order, deterministically, and resets the row's counter for the next launch.
    w.line("if (kiln_split > 1) {");
    w.line("  __shared__ int kiln_last;");
    w.line("  if (threadIdx.x == 0) {");
    w.line("    __threadfence();");
    w.line("    kiln_last = atomicAdd(&kiln_counters[i0], 1u) == (unsigned)(kiln_split - 1);");
    w.line("  }");
    w.line("  __syncthreads();");
    w.line("  if (!kiln_last) continue;");
    w.line("  if (threadIdx.x == 0) {");
    w.line("    __threadfence();");
    for (size_t p = 0; p < k.phases.size(); ++p) {
      Accumulation acc = gpu_accumulation(k.phases[p]);
      const std::string a = fmt::format("a{}", p);
      // Slots are 8 bytes whatever the accumulator's type: (row, part, phase) in that order.
      const std::string slot = fmt::format("*(const volatile {}*)(kiln_partials + 8 * ((i0 * kiln_split + q) * {} + {}))",
                                           acc.type, k.phases.size(), p);
      w.line(fmt::format("    {} = *(const volatile {}*)(kiln_partials + 8 * (i0 * kiln_split * {} + {}));", a, acc.type,
                         k.phases.size(), p));
      w.line(fmt::format("    for (int64_t q = 1; q < kiln_split; ++q) {} = {};", a,
                         fmt::format(fmt::runtime(acc.combine), fmt::arg("x", a), fmt::arg("y", slot))));
    }
    w.line("    kiln_counters[i0] = 0;");
    w.line("  }");
    w.line("}");
  }
  auto stores = [&](const std::vector<Store>& list) {
    for (const Store& st : list)
      w.line(fmt::format("p{}[{}] = {};", st.param, w.index(st.index),
                         store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)])));
  };
  if (!k.row_stores.empty()) {
    w.line(per_block ? "if (threadIdx.x == 0) {" : "{");
    std::string row_body;
    w.push(&row_body, "      ");
    stores(k.row_stores);
    w.pop();
    body += row_body;
    w.line("}");
  }
  if (!k.stores.empty() && held == 0) {
    std::string loop_body;
    open_elements(&loop_body, {});
    stores(k.stores);
    close_elements(&loop_body);
  } else if (!k.stores.empty()) {
    // Each run of a row-contiguous store is gathered into a vector and written at once.
    std::vector<ExprPtr> values;
    std::vector<std::string> declarations, writes, vector_names;
    for (size_t s = 0; s < k.stores.size(); ++s) {
      const Store& st = k.stores[s];
      values.push_back(st.value);
      const std::string base = run_pointer(st.param, w.index(st.index));
      vector_names.push_back(base.empty() ? "" : fmt::format("kiln_s{}", s));
      if (base.empty()) continue;
      declarations.push_back(fmt::format("kiln_vec<{}> {};", vec_type(st.param), vector_names.back()));
      writes.push_back(fmt::format("kiln_st<{}>({}, {}, kiln_aligned);", vec_type(st.param), base, vector_names.back()));
    }
    std::string loop_body;
    open_runs(&loop_body, values, declarations);
    for (size_t s = 0; s < k.stores.size(); ++s) {
      const Store& st = k.stores[s];
      const std::string value = store(w.value(st.value), k.param_dtypes[static_cast<size_t>(st.param)]);
      if (vector_names[s].empty())
        w.line(fmt::format("{}[{}] = {};", w.param(st.param), w.index(st.index), value));
      else
        w.line(fmt::format("{}.v[e] = {};", vector_names[s], value));
    }
    close_runs(&loop_body, writes);
  }
  w.pop();
  if (split)
    return fmt::format("  const int64_t kiln_split = (int64_t)gridDim.x >= rows ? (int64_t)gridDim.x / rows : 1;\n"
                       "  unsigned int* kiln_counters = (unsigned int*)buffers[{0}];\n"
                       "  char* kiln_partials = buffers[{1}];\n"
                       "  for (int64_t kiln_b = blockIdx.x; kiln_b < rows * kiln_split; kiln_b += gridDim.x) {{\n"
                       "    const int64_t i0 = kiln_b / kiln_split, kiln_part = kiln_b % kiln_split;\n"
                       "    const int64_t kiln_lo = R * kiln_part / kiln_split, kiln_hi = R * (kiln_part + 1) / kiln_split;\n",
                       k.params.size(), k.params.size() + 1) +
           body + "  }\n";
  // Vectors need each base pointer aligned to a run's bytes (rows start at multiples of
  // the run: the width divides the row); views at odd offsets take kiln_ld's scalar path.
  // Rows read only through broadcasts have no vectors and no test.
  std::vector<std::string> misaligned;
  for (int param : vector_params)
    misaligned.push_back(fmt::format("((unsigned long long){} % {})", w.param(param),
                                     width * dtype_size(k.param_dtypes[static_cast<size_t>(param)])));
  const std::string alignment =
      misaligned.empty() ? "" : fmt::format("  const bool kiln_aligned = ({}) == 0;\n", fmt::join(misaligned, " | "));
  return per_block ? alignment + "  for (int64_t i0 = blockIdx.x; i0 < rows; i0 += gridDim.x) {\n" + body + "  }\n"
                   : "  for (int64_t i0 = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i0 < rows;"
                     " i0 += (int64_t)gridDim.x * blockDim.x) {\n" + body + "  }\n";
}

std::string emit_row_kernel(const LoopKernel& k, int num_symbols, const Dialect& dialect) {
  std::vector<std::string> kept, reduced;
  SymShape kept_shape, reduced_shape;
  for (size_t d = 0; d < k.shape.size(); ++d) {
    bool r = std::find(k.reduced_dims.begin(), k.reduced_dims.end(), static_cast<int64_t>(d)) != k.reduced_dims.end();
    (r ? reduced : kept).push_back(render_index(index_dim(k.shape[d])));
    (r ? reduced_shape : kept_shape).push_back(k.shape[d]);
  }
  // Register-held rows ask for a full multiprocessor of threads, capping registers at 32;
  // rows of more than 8 elements a thread for half of one (64), which they need not to spill.
  const int held_threads = gpu_block_threads(k) * (register_elements(k) > 8 ? 2 : 1);
  const std::string bounds = dialect.block_rows && register_elements(k) > 0
                                 ? fmt::format("__launch_bounds__({}, {}) ", gpu_block_threads(k), 2048 / held_threads)
                                 : "";
  std::string src = kernel_signature(dialect_kernel_name(k.name, dialect), dialect, bounds);
  src += params_and_sizes(k, num_symbols, dialect);
  src += fmt::format("  const int64_t rows = {};\n  const int64_t R = {};\n", product(kept), product(reduced));
  if (dialect.block_rows) return src + block_row_loop(k) + "}\n";
  if (k.columns) return src + column_loop(k, dialect) + "}\n";
  // With static sizes only one form is needed.
  std::vector<int64_t> rows_const, r_const;
  bool known = try_const_shape(kept_shape, &rows_const) && try_const_shape(reduced_shape, &r_const);
  if (known) {
    int64_t rows = 1, r = 1;
    for (int64_t v : rows_const) rows *= v;
    for (int64_t v : r_const) r *= v;
    return src + row_loop(k, dialect, rows < 2 && r >= 65536) + "}\n";
  }
  src += "  if (rows < 2 && R >= 65536) {\n" + row_loop(k, dialect, true) + "  } else {\n" +
         row_loop(k, dialect, false) + "  }\n";
  return src + "}\n";
}

}  // namespace

namespace {

// A GPU flat loop whose threads take `width` consecutive elements each, loaded and stored as
// one aligned vector per buffer (kiln_vec<T, width>: 16 bytes for f32), when every buffer is
// aligned to 16 bytes; the remainder, and every element of unaligned buffers (views at odd
// offsets), take the plain grid-stride loop. Buffers of 8-byte elements (f64, i64) take the
// plain loop only (""): their vectors would need 32-byte alignment.
std::string vector_flat_loop(const LoopKernel& k, int base, int width, const std::string& plain_body) {
  for (DType d : k.param_dtypes)
    if (dtype_size(d) > 4) return "";
  KernelWriter w(k, base);
  std::vector<const Expr*> loads;
  collect_loads(k.stores.at(0).value, &loads);
  std::vector<std::string> pointers;
  for (size_t p = 0; p < k.params.size(); ++p) pointers.push_back(fmt::format("(unsigned long long){}", w.param(static_cast<int>(p))));
  std::string body;
  w.push(&body, "      ");
  std::set<int> loaded;
  for (const Expr* e : loads) {
    if (!loaded.insert(e->param).second) continue;
    const char* t = type_names(k.param_dtypes[static_cast<size_t>(e->param)]).storage;
    w.line(fmt::format("const kiln_vec<{0}, {1}> kiln_l{2} = *(const kiln_vec<{0}, {1}>*)({3} + kiln_v);", t, width, e->param,
                       w.param(e->param)));
  }
  const char* out_type = type_names(k.param_dtypes[0]).storage;
  w.line(fmt::format("kiln_vec<{}, {}> kiln_s;", out_type, width));
  // The lanes as an unrolled loop, not written out: the source stays small (NVRTC's front
  // end took 0.67 s for a 500-op chain written out four times, most of a cold compile).
  w.line(fmt::format("#pragma unroll\n      for (int kiln_lane = 0; kiln_lane < {}; ++kiln_lane) {{", width));
  std::string lane_body;
  w.push(&lane_body, "        ");
  for (const Expr* e : loads) w.bind(e, load_value(fmt::format("kiln_l{}.v[kiln_lane]", e->param), e->dtype));
  w.line(fmt::format("kiln_s.v[kiln_lane] = {};", store(w.value(k.stores.at(0).value), k.param_dtypes[0])));
  w.pop();
  body += lane_body;
  w.line("}");
  w.line(fmt::format("*(kiln_vec<{}, {}>*){} = kiln_s;", out_type, width, "(" + w.param(0) + " + kiln_v)"));
  w.pop();
  std::string src =
      "  const int64_t kiln_tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;\n"
      "  const int64_t kiln_stride = (int64_t)gridDim.x * blockDim.x;\n";
  src += fmt::format("  const int64_t kiln_vector_end = (({}) & 15) == 0 ? n / {} * {} : 0;\n", fmt::join(pointers, " | "),
                     width, width);
  src += fmt::format("  for (int64_t kiln_v = kiln_tid * {0}; kiln_v < kiln_vector_end; kiln_v += kiln_stride * {0}) {{\n", width);
  src += body + "  }\n";
  src += "  for (int64_t i0 = kiln_vector_end + kiln_tid; i0 < n; i0 += kiln_stride) {\n" + plain_body + "  }\n";
  return src;
}

std::string pointwise_loops(const LoopKernel& k, int base, const Dialect& dialect) {
  const Store& st = k.stores.at(0);
  std::vector<std::string> extents;
  for (const Dim& d : k.shape) extents.push_back(render_index(index_dim(d)));
  KernelWriter w(k, base);
  std::string body;
  std::string indent(2 * (k.flat ? 1 : k.shape.size()) + 4, ' ');
  w.push(&body, indent);
  w.line(fmt::format("{}[{}] = {};", w.param(0), w.index(st.index), store(w.value(st.value), k.param_dtypes[0])));
  w.pop();
  std::string src;
  if ((k.flat || k.shape.empty()) && dialect.vector_width > 0) {
    std::string vector_form = vector_flat_loop(k, base, dialect.vector_width, body);
    if (!vector_form.empty()) return src + fmt::format("  const int64_t n = {};\n", product(extents)) + vector_form;
  }
  if (k.flat || k.shape.empty()) {
    src += fmt::format("  const int64_t n = {};\n", product(extents));
    return src + "  " + fmt::format(fmt::runtime(dialect.flat_loop), fmt::arg("n", "n"), fmt::arg("i", "i0")) + "\n" +
           body + "  }\n";
  }
  if (!dialect.nested_loops) {
    // One flat loop over every element; each loop variable taken from the flat index.
    src += fmt::format("  const int64_t n = {};\n", product(extents));
    src += "  " + fmt::format(fmt::runtime(dialect.flat_loop), fmt::arg("n", "n"), fmt::arg("i", "flat")) + "\n";
    src += "    int64_t rest = flat;\n";
    for (size_t d = k.shape.size(); d-- > 0;) {
      if (d == 0) {
        src += "    const int64_t i0 = rest;\n";
      } else {
        src += fmt::format("    const int64_t i{0} = rest % ({1});\n    rest /= ({1});\n", d, extents[d]);
      }
    }
    return src + body + "  }\n";
  }
  std::string total = product(extents);
  std::string pad = "  ";
  for (size_t d = 0; d < k.shape.size(); ++d) {
    const char* pragma = d == 0 && d + 1 == k.shape.size() ? kParallelSimdLoop
                         : d == 0                          ? dialect.parallel_loop
                         : d + 1 == k.shape.size()         ? dialect.simd_loop
                                                           : nullptr;
    if (pragma) src += pad + fmt::format(fmt::runtime(pragma), fmt::arg("n", total)) + "\n";
    src += pad + fmt::format("for (int64_t i{0} = 0; i{0} < {1}; ++i{0}) {{\n", d, extents[d]);
    pad += "  ";
  }
  src += body;
  for (size_t d = k.shape.size(); d-- > 0;) {
    pad.resize(pad.size() - 2);
    src += pad + "}\n";
  }
  return src;
}

}  // namespace

std::string emit_kernel(const LoopKernel& k, int num_symbols, const Dialect& dialect) {
  if (k.kind == LoopKernel::Kind::Row) return emit_row_kernel(k, num_symbols, dialect);
  std::string src = kernel_signature(dialect_kernel_name(k.name, dialect), dialect);
  src += params_and_sizes(k, num_symbols, dialect);
  if (k.kind == LoopKernel::Kind::Pointwise) return src + pointwise_loops(k, 0, dialect) + "}\n";
  int base = 0;
  for (const LoopKernel& part : k.parts) {
    src += "  {\n" + pointwise_loops(part, base, dialect) + "  }\n";
    base += static_cast<int>(part.params.size());
  }
  return src + "}\n";
}

namespace {

// The plain KILN_<FIELD> macros of a config: every field but THREADS and VEC (which become
// clauses and attributes), with CHUNK, BLOCK and GRAIN always defined.
KernelConfig config_macros(const KernelConfig& config) {
  KernelConfig macros{{"CHUNK", 256}, {"BLOCK", 256}, {"GRAIN", kDefaultGrain}};
  for (const auto& [field, v] : config)
    if (field != "THREADS" && field != "VEC") macros[field] = v;
  return macros;
}

}  // namespace

std::string config_prologue(const std::string& kernel_name, const KernelConfig& config) {
  auto value = [&](const char* field, int64_t fallback) {
    auto it = config.find(field);
    return it == config.end() ? fallback : it->second;
  };
  std::string src = fmt::format("/* config of {}: {} */\n", kernel_name, config_text(config));
  int64_t threads = value("THREADS", 0), vec = value("VEC", 0);
  src += threads > 0 ? fmt::format("#define KILN_NUM_THREADS num_threads({})\n", threads) : "#define KILN_NUM_THREADS\n";
  src += vec > 0 ? fmt::format("#define KILN_VECTOR_ATTR KILN_VECTOR_WIDTH({})\n", vec) : "#define KILN_VECTOR_ATTR\n";
  for (const auto& [field, v] : config_macros(config)) src += fmt::format("#define KILN_{} {}\n", field, v);
  return src;
}

std::string config_epilogue(const KernelConfig& config) {
  std::string src = "#undef KILN_NUM_THREADS\n#undef KILN_VECTOR_ATTR\n";
  for (const auto& [field, v] : config_macros(config)) src += fmt::format("#undef KILN_{}\n", field);
  return src;
}

std::string emit_translation_unit(const std::string& graph_name, const std::vector<KernelSource>& kernels,
                                  const Dialect& dialect) {
  std::string src = fmt::format("/* kiln {} kernels of graph {}:", dialect.name, graph_name);
  for (const KernelSource& k : kernels) src += " " + k.name;
  src += fmt::format(" */\n{}", dialect.preamble);
  for (const KernelSource& k : kernels)
    src += "\n" + config_prologue(k.name, k.config) + k.body + config_epilogue(k.config);
  return src;
}

bool row_streams_inputs(const LoopKernel& kernel) {
  return kernel.kind == LoopKernel::Kind::Row && !kernel.columns && !streamed_inputs(kernel).empty();
}

}  // namespace kiln

namespace kiln {

bool gpu_row_per_block(const LoopKernel& kernel) { return kernel.kind == LoopKernel::Kind::Row && !kernel.columns; }

int gpu_block_threads(const LoopKernel& kernel) {
  if (!gpu_row_per_block(kernel) || !kernel.flat) return kGpuThreads;
  const int64_t r = constant_row_length(kernel);
  if (r <= 0 || r > int64_t{1024} * kMaxRegisterElements) return kGpuThreads;
  // About 8 elements a thread: with the launch bounds asking for a full multiprocessor
  // (2048 threads), the held row and the temporaries fit 32 registers without spilling, and
  // one block's loads overlap another's reductions.
  int threads = 128;
  while (threads < 1024 && int64_t{threads} * 8 < r) threads *= 2;
  return threads;
}

bool gpu_split_reduction(const LoopKernel& kernel) {
  if (!gpu_row_per_block(kernel) || register_elements(kernel) > 0 || !kernel.stores.empty()) return false;
  for (const ReducePhase& phase : kernel.phases)  // independent phases only: no grid-wide wait
    if (reads_accumulator(phase.value) || !gpu_accumulation(phase).after.empty()) return false;
  return true;
}

}  // namespace kiln
