// SymFloat (include/kiln/sym_float.h): a number, or while compile() traces, a 0-d f64 value of
// the graph whose arithmetic is recorded like any op. Its hint is the same arithmetic on
// doubles, which is what eager code computes.
#include "kiln/sym_float.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "eager/dispatch.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// The active trace, which `t` (a traced SymFloat's value) must belong to.
OpRecorder& recorder_of(const Tensor& t, const char* what) {
  OpRecorder* recorder = active_recorder();
  if (!recorder || recorder->session() != t.impl()->trace_session)
    throw Error(fmt::format(
        "{}: a SymFloat traced by compile() was used outside its trace (a traced function "
        "must not keep its SymFloat arguments past its return)",
        what));
  return *recorder;
}

}  // namespace

SymFloat SymFloat::traced(Tensor value, double hint, int32_t slot) {
  SymFloat s(hint);
  s.traced_ = value.impl_ptr();
  s.sources_.push_back(slot);
  return s;
}

SymFloat SymFloat::derived(std::shared_ptr<TensorImpl> traced, double hint, const SymFloat& a,
                           const SymFloat& b) {
  SymFloat s(hint);
  s.traced_ = std::move(traced);
  s.sources_ = a.sources_;
  s.sources_.insert(s.sources_.end(), b.sources_.begin(), b.sources_.end());
  std::sort(s.sources_.begin(), s.sources_.end());
  s.sources_.erase(std::unique(s.sources_.begin(), s.sources_.end()), s.sources_.end());
  return s;
}

double SymFloat::guard_double() const {
  if (!is_symbolic()) return value_;
  recorder_of(Tensor(traced_), "SymFloat::guard_double").specialize_scalars(sources_);
  return value_;
}

Tensor SymFloat::tensor() const {
  if (!is_symbolic()) return scalar_tensor(value_, DType::f64);
  Tensor t(traced_);
  recorder_of(t, "SymFloat::tensor");
  return t;
}

Tensor SymFloat::operand_for(const Tensor& like) const {
  return tensor().to(is_floating(like.dtype()) ? like.dtype() : DType::f32);
}

std::string SymFloat::to_string() const {
  std::string value = fmt::format("{}", value_);
  if (!is_symbolic()) return value;
  std::vector<std::string> names;
  for (int32_t s : sources_) names.push_back(fmt::format("argument scalar {}", s));
  return fmt::format("{} (a graph scalar of {}; {} while tracing)", value, fmt::join(names, ", "),
                     value_);
}

// Arithmetic: on doubles for numbers; recorded as 0-d f64 ops when either side is traced
// (a number side is a Scalar operand, folded into the op).
#define KILN_SYMFLOAT_ARITH(OP)                                      \
  SymFloat operator OP(const SymFloat& a, const SymFloat& b) {       \
    double hint = a.value_ OP b.value_;                              \
    if (!a.is_symbolic() && !b.is_symbolic()) return SymFloat(hint); \
    Tensor r = !b.is_symbolic()   ? a.tensor() OP Scalar(b.value_)   \
               : !a.is_symbolic() ? Scalar(a.value_) OP b.tensor()   \
                                  : a.tensor() OP b.tensor();        \
    return SymFloat::derived(r.impl_ptr(), hint, a, b);              \
  }
KILN_SYMFLOAT_ARITH(+)
KILN_SYMFLOAT_ARITH(-)
KILN_SYMFLOAT_ARITH(*)
KILN_SYMFLOAT_ARITH(/)
#undef KILN_SYMFLOAT_ARITH

SymFloat operator-(const SymFloat& a) {
  if (!a.is_symbolic()) return SymFloat(-a.value_);
  return SymFloat::derived((-a.tensor()).impl_ptr(), -a.value_, a, SymFloat());
}

SymFloat pow(const SymFloat& a, const SymFloat& b) {
  double hint = std::pow(a.value_, b.value_);
  if (!a.is_symbolic() && !b.is_symbolic()) return SymFloat(hint);
  Tensor r = kiln::pow(a.tensor(), b.tensor());
  return SymFloat::derived(r.impl_ptr(), hint, a, b);
}

#define KILN_SYMFLOAT_UNARY(name)                                                     \
  SymFloat name(const SymFloat& a) {                                                  \
    double hint = std::name(a.value_);                                                \
    if (!a.is_symbolic()) return SymFloat(hint);                                      \
    return SymFloat::derived(kiln::name(a.tensor()).impl_ptr(), hint, a, SymFloat()); \
  }
KILN_SYMFLOAT_UNARY(sqrt)
KILN_SYMFLOAT_UNARY(exp)
KILN_SYMFLOAT_UNARY(log)
#undef KILN_SYMFLOAT_UNARY

}  // namespace kiln
