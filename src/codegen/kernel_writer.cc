#include "codegen/kernel_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <string_view>

#include "graph/infer.h"
#include "kiln/error.h"
#include "support/fault_injection.h"

namespace kiln::emit {

namespace {

std::string fn(const char* name, DType d) {
  return is_double(d) ? std::string(name) : std::string(name) + "f";
}

}  // namespace

bool broken_by_fault(Op op) {
  InjectedFault fault = injected_fault();
  return fault.kind == InjectedFault::Kind::lowering && fault.op == op_name(op);
}

TypeNames type_names(DType d) {
  switch (d) {
    case DType::f32:
      return {"float", "float"};
    case DType::f64:
      return {"double", "double"};
    case DType::f16:
      return {"uint16_t", "float"};
    case DType::bf16:
      return {"uint16_t", "float"};
    case DType::i32:
      return {"int32_t", "int32_t"};
    case DType::i64:
      return {"int64_t", "int64_t"};
    case DType::bool_:
      return {"uint8_t", "int"};
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
  if (integer && !is_floating(dtype))
    return fmt::format("INT64_C({})", static_cast<int64_t>(value));
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

std::string store(const std::string& v, DType d) {
  if (d == DType::f16) return fmt::format("kiln_f2h({})", v);
  if (d == DType::bf16) return fmt::format("kiln_f2bf({})", v);
  if (d == DType::bool_) return fmt::format("(uint8_t)({} != 0)", v);
  return v;
}

std::string KernelWriter::rhs_of(const Expr& e) {
  switch (e.kind()) {
    case Expr::Kind::Load: {
      const Expr::Load& l = e.load();
      return load_value(fmt::format("{}[{}]", param(l.param), index(l.index, l.access)), e.dtype);
    }
    case Expr::Kind::Apply: {
      const Expr::Apply& a = e.apply();
      return broken_by_fault(a.op) ? "(" + apply(a, e.dtype) + " + 1)" : apply(a, e.dtype);
    }
    case Expr::Kind::Position:
      return fmt::format("(int64_t)({})", index(e.position().index, e.position().access));
    case Expr::Kind::Accumulator:
      break;
  }
  return "?";
}

std::string KernelWriter::apply(const Expr::Apply& e, DType out) {
  std::vector<DType> in_dtypes;
  for (const ExprPtr& a : e.args) in_dtypes.push_back(a->dtype);
  OpRule rule = op_info(e.op).rule;
  if (rule == OpRule::Random) {
    // support/philox.inc, as the eager kernel draws: seed, offset + draw, element.
    const std::string seed = "(uint64_t)" + value(e.args[0]);
    const std::string stream = fmt::format("((uint64_t){} + (uint64_t)INT64_C({}))",
                                           value(e.args[1]), e.attrs.get_int("draw"));
    const std::string element = "(uint64_t)" + value(e.args[2]);
    if (e.op == Op::rand && !is_double(out))
      return fmt::format("kiln_rand_narrow({}, {}, {})", seed, stream, element);
    return convert(fmt::format("{}({}, {}, {}, {})", e.op == Op::rand ? "kiln_rand" : "kiln_randn",
                               seed, stream, element, is_double(out) ? 1 : 0),
                   DType::f64, out);
  }
  if (rule == OpRule::Arange) {  // in f64, as the eager kernel
    const std::string start = convert(value(e.args[0]), e.args[0]->dtype, DType::f64);
    return convert(fmt::format("({} + (double){} * {})", start, value(e.args[1]),
                               literal(e.attrs.get_double("step"), false, DType::f64)),
                   DType::f64, out);
  }
  if (rule == OpRule::Cast) return convert(value(e.args[0]), e.args[0]->dtype, out);
  if (rule == OpRule::Where) {
    return fmt::format("({} ? {} : {})", value(e.args[0]),
                       convert(value(e.args[1]), in_dtypes[1], out),
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
        e.args[1]->kind() == Expr::Kind::Accumulator)
      return fmt::format("({} * ({} / {}))", a, literal(1.0, false, compute), b);
  }
  return binary(e.op, a, b, compute);
}

std::string KernelWriter::unary(Op op, const std::string& x, DType d) {
  bool fp = is_floating(d);
  const char* c = type_names(d).compute;
  switch (op) {
    case Op::neg:
      return fp ? fmt::format("(-{})", x) : fmt::format("(({})(0u - (uint64_t){}))", c, x);
    case Op::abs:
      return fp ? fmt::format("({0} < 0 ? -{0} : {0})", x)
                : fmt::format("({0} < 0 ? ({1})(0u - (uint64_t){0}) : {0})", x, c);
    case Op::relu:
      return fmt::format("({0} < 0 ? ({1})0 : {0})", x, c);
    case Op::sign:
      return fmt::format("(({})((0 < {}) - ({} < 0)))", c, x, x);
    case Op::floor:
      return fp ? fmt::format("{}({})", fn("floor", d), x) : x;
    case Op::ceil:
      return fp ? fmt::format("{}({})", fn("ceil", d), x) : x;
    case Op::round:
      return fp ? fmt::format("{}({})", fn("nearbyint", d), x) : x;
    case Op::exp:
      return fmt::format("{}({})", fn("exp", d), x);
    case Op::log:
      return fmt::format("{}({})", fn("log", d), x);
    case Op::log1p:
      return fmt::format("{}({})", fn("log1p", d), x);
    case Op::sqrt:
      return fmt::format("{}({})", fn("sqrt", d), x);
    case Op::rsqrt:
      return fmt::format("(({})1 / {}({}))", c, fn("sqrt", d), x);
    case Op::sin:
      return fmt::format("{}({})", fn("sin", d), x);
    case Op::cos:
      return fmt::format("{}({})", fn("cos", d), x);
    case Op::tan:
      return fmt::format("{}({})", fn("tan", d), x);
    case Op::tanh:
      return fmt::format("{}({})", fn("tanh", d), x);
    case Op::erf:
      return fmt::format("{}({})", fn("erf", d), x);
    case Op::reciprocal:
      return fmt::format("(({})1 / {})", c, x);
    case Op::sigmoid:
      return fmt::format("(({0})1 / (({0})1 + {1}(-{2})))", c, fn("exp", d), x);
    case Op::isnan:
      return fp ? fmt::format("({0} != {0})", x) : "0";
    case Op::logical_not:
      return fmt::format("({} == 0)", x);
    default:
      break;
  }
  throw CompileError(fmt::format("cpp codegen: no rendering of unary op {}", op_name(op)));
}

std::string KernelWriter::binary(Op op, const std::string& a, const std::string& b, DType d) {
  bool fp = is_floating(d);
  const char* c = type_names(d).compute;
  auto wrap = [&](char sym) {
    if (fp || d == DType::bool_) return fmt::format("({} {} {})", a, sym, b);
    return fmt::format("(({})((uint64_t){} {} (uint64_t){}))", c, a, sym, b);
  };
  switch (op) {
    case Op::add:
      return wrap('+');
    case Op::sub:
      return wrap('-');
    case Op::mul:
      return wrap('*');
    case Op::div:
      return fmt::format("({} / {})", a, b);
    case Op::maximum:
      return fmt::format("({0} != {0} ? {0} : ({1} != {1} ? {1} : ({0} > {1} ? {0} : {1})))", a, b);
    case Op::minimum:
      return fmt::format("({0} != {0} ? {0} : ({1} != {1} ? {1} : ({0} < {1} ? {0} : {1})))", a, b);
    case Op::pow:
      return fmt::format("{}({}, {})", fn("pow", d), a, b);
    case Op::atan2:
      return fmt::format("{}({}, {})", fn("atan2", d), a, b);
    case Op::fmod:
      return fmt::format("{}({}, {})", fn("fmod", d), a, b);
    case Op::remainder:
      return fmt::format("{}({}, {})", is_double(d) ? "kiln_rem" : "kiln_remf", a, b);
    case Op::eq:
      return fmt::format("({} == {})", a, b);
    case Op::ne:
      return fmt::format("({} != {})", a, b);
    case Op::lt:
      return fmt::format("({} < {})", a, b);
    case Op::le:
      return fmt::format("({} <= {})", a, b);
    case Op::gt:
      return fmt::format("({} > {})", a, b);
    case Op::ge:
      return fmt::format("({} >= {})", a, b);
    case Op::logical_and:
      return fmt::format("(({} != 0) && ({} != 0))", a, b);
    case Op::logical_or:
      return fmt::format("(({} != 0) || ({} != 0))", a, b);
    case Op::logical_xor:
      return fmt::format("(({} != 0) != ({} != 0))", a, b);
    default:
      break;
  }
  throw CompileError(fmt::format("cpp codegen: no rendering of binary op {}", op_name(op)));
}

}  // namespace kiln::emit
