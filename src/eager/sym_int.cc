// SymInt's arithmetic (include/kiln/sym_int.h): multiples of one symbol stay symbolic, and
// every other combination is a ShapeError that names the sizes, so that a shape is never
// silently computed from trace-time values.
#include "kiln/sym_int.h"

#include <fmt/format.h>

#include <ostream>

#include "eager/dispatch.h"
#include "kiln/error.h"
#include "support/limits.h"

namespace kiln {

using limits::checked_add;
using limits::checked_mul;
using limits::checked_sub;

namespace {

// "s0 (dim 0 of input 1, 8 while tracing)" when the active trace knows the symbol.
std::string described(const SymInt& s) {
  if (!s.is_symbolic()) return s.to_string();
  OpRecorder* recorder = active_recorder();
  if (!recorder || recorder->session() != s.session())
    return fmt::format("{} (from a trace that has ended)", s.to_string());
  return fmt::format("{} ({}; {} while tracing)", s.to_string(),
                     recorder->describe_symbol(s.symbol()), s.hint());
}

int64_t checked(std::optional<int64_t> v, const SymInt& a, const SymInt& b, const char* op) {
  if (!v)
    throw ShapeError(
        fmt::format("size arithmetic {} {} {} overflows int64", a.to_string(), op, b.to_string()));
  return *v;
}

[[noreturn]] void not_a_multiple(const SymInt& a, const SymInt& b, const char* op) {
  throw ShapeError(fmt::format(
      "size arithmetic {} {} {}: kiln's symbolic sizes are multiples of one dynamic size "
      "(c*s), and this is not one; compute the shape from whole multiples (e.g. view({{-1, "
      "32}})), or do not mark the dim dynamic",
      described(a), op, described(b)));
}

SymInt multiple(const SymInt& like, int64_t coeff, int64_t hint) {
  if (coeff == 0) return SymInt(0);
  return SymInt::symbolic(like.symbol(), coeff, hint, like.session());
}

}  // namespace

SymInt SymInt::symbolic(int32_t sym, int64_t coeff, int64_t hint, uint64_t session) {
  SymInt s(hint);
  s.sym_ = sym;
  s.coeff_ = coeff;
  s.session_ = session;
  return s;
}

int64_t SymInt::expect_int() const {
  if (!is_symbolic()) return value_;
  throw ShapeError(fmt::format(
      "size {} is dynamic (mark_dynamic): its value changes from call to call, so it cannot "
      "become an int64_t while compile() traces. Pass it on as a SymInt (view, reshape, "
      "expand, zeros, full, rand, ... take SymInts; size arithmetic keeps it symbolic), or do "
      "not mark the dim dynamic if the function needs its value (a branch, a loop count)",
      described(*this)));
}

std::string SymInt::to_string() const {
  if (!is_symbolic()) return std::to_string(value_);
  return coeff_ == 1 ? fmt::format("s{}", sym_) : fmt::format("{}*s{}", coeff_, sym_);
}

SymInt operator*(const SymInt& a, const SymInt& b) {
  if (a.is_symbolic() && b.is_symbolic()) not_a_multiple(a, b, "*");
  const SymInt& s = b.is_symbolic() ? b : a;
  const SymInt& k = b.is_symbolic() ? a : b;
  int64_t hint = checked(checked_mul(a.hint(), b.hint()), a, b, "*");
  if (!s.is_symbolic()) return SymInt(hint);
  return multiple(s, checked(checked_mul(s.coeff(), k.hint()), a, b, "*"), hint);
}

SymInt operator/(const SymInt& a, const SymInt& b) {
  if (b.hint() == 0) throw ShapeError(fmt::format("size arithmetic {} / 0", a.to_string()));
  // INT64_MIN / -1 is the one quotient that overflows (and traps).
  if (a.hint() == INT64_MIN && b.hint() == -1) checked(std::nullopt, a, b, "/");
  if (!a.is_symbolic() && !b.is_symbolic()) return SymInt(a.hint() / b.hint());
  if (b.is_symbolic()) {
    // c1*s / c2*s: a number when c2 divides c1.
    if (a.symbol() != b.symbol() || a.coeff() % b.coeff() != 0) not_a_multiple(a, b, "/");
    return SymInt(a.coeff() / b.coeff());
  }
  if (a.coeff() % b.hint() != 0) not_a_multiple(a, b, "/");
  return multiple(a, a.coeff() / b.hint(), a.hint() / b.hint());
}

namespace {

SymInt add(const SymInt& a, const SymInt& b, int64_t sign, const char* op) {
  int64_t hint = checked(
      sign > 0 ? checked_add(a.hint(), b.hint()) : checked_sub(a.hint(), b.hint()), a, b, op);
  if (!a.is_symbolic() && !b.is_symbolic()) return SymInt(hint);
  if (!b.is_symbolic() && b.hint() == 0) return a;
  if (!a.is_symbolic() && a.hint() == 0 && sign > 0) return b;
  if (!a.is_symbolic() || !b.is_symbolic() || a.symbol() != b.symbol()) not_a_multiple(a, b, op);
  int64_t coeff = checked(
      sign > 0 ? checked_add(a.coeff(), b.coeff()) : checked_sub(a.coeff(), b.coeff()), a, b, op);
  if (coeff < 0) not_a_multiple(a, b, op);  // a negative size
  return multiple(a, coeff, hint);
}

}  // namespace

SymInt operator+(const SymInt& a, const SymInt& b) { return add(a, b, 1, "+"); }
SymInt operator-(const SymInt& a, const SymInt& b) { return add(a, b, -1, "-"); }

int compare(const SymInt& a, const SymInt& b, const char* op) {
  if (!a.is_symbolic() && !b.is_symbolic()) return a.hint() < b.hint() ? -1 : a.hint() > b.hint();
  if (a.is_symbolic() && b.is_symbolic() && a.symbol() == b.symbol()) {
    // Multiples of one symbol (at least 0) order as their coefficients do, for any value
    // but 0, where they are all equal: only equality of coefficients is certain.
    if (a.coeff() == b.coeff()) return 0;
  }
  throw ShapeError(fmt::format(
      "comparing sizes {} {} {}: the answer depends on a dynamic size (mark_dynamic), which "
      "changes from call to call. Write the function so that its control flow does not "
      "depend on the size, or do not mark the dim dynamic",
      described(a), op, described(b)));
}

std::ostream& operator<<(std::ostream& os, const SymInt& size) { return os << size.to_string(); }

bool SymIntList::is_symbolic() const {
  for (const SymInt& s : sizes_)
    if (s.is_symbolic()) return true;
  return false;
}

std::vector<int64_t> SymIntList::hints() const {
  std::vector<int64_t> out;
  for (const SymInt& s : sizes_) out.push_back(s.hint());
  return out;
}

std::string SymIntList::to_string() const {
  std::string out = "[";
  for (size_t i = 0; i < sizes_.size(); ++i) out += (i ? ", " : "") + sizes_[i].to_string();
  return out + "]";
}

}  // namespace kiln
