#include "graph/dim.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

#include "kiln/error.h"
#include "support/limits.h"

namespace kiln {

int64_t Dim::eval(const std::vector<int64_t>& bindings) const {
  if (sym < 0) return coeff;
  const int64_t b =
      static_cast<size_t>(sym) < bindings.size() ? bindings[static_cast<size_t>(sym)] : -1;
  if (b < 0) throw ShapeError(fmt::format("size symbol s{} is not bound by any input", sym));
  const auto size = limits::checked_mul(coeff, b);
  if (!size) throw ShapeError(fmt::format("size {} with s{} = {} overflows", to_string(), sym, b));
  return *size;
}

std::string Dim::to_string() const {
  if (sym < 0) return std::to_string(coeff);
  if (coeff == 1) return fmt::format("s{}", sym);
  return fmt::format("{}*s{}", coeff, sym);
}

std::string shape_string(const SymShape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i].to_string();
  }
  return s + "]";
}

SymShape const_shape(const std::vector<int64_t>& shape) {
  SymShape out;
  out.reserve(shape.size());
  for (int64_t d : shape) out.push_back(Dim::constant(d));
  return out;
}

bool try_const_shape(const SymShape& shape, std::vector<int64_t>* out) {
  out->clear();
  for (const Dim& d : shape) {
    if (!d.is_const()) return false;
    out->push_back(d.coeff);
  }
  return true;
}

Dim shape_numel(const SymShape& shape, const char* what) {
  Dim n = Dim::constant(1);
  for (const Dim& d : shape) {
    if (!d.is_const() && !n.is_const() && n.coeff != 0)
      throw ShapeError(
          fmt::format("{}: shape {} multiplies two dynamic dims, which kiln "
                      "cannot express",
                      what, shape_string(shape)));
    int64_t product = 0;
    if (__builtin_mul_overflow(n.coeff, d.coeff, &product))
      throw ShapeError(
          fmt::format("{}: the element count of shape {} overflows", what, shape_string(shape)));
    n = Dim{product, d.is_const() ? n.sym : d.sym};
  }
  return n;
}

Monomial shape_monomial(const SymShape& shape, const char* what) {
  Monomial m;
  for (const Dim& d : shape) {
    if (__builtin_mul_overflow(m.coeff, d.coeff, &m.coeff))
      throw ShapeError(
          fmt::format("{}: the element count of shape {} overflows", what, shape_string(shape)));
    if (!d.is_const()) m.syms.push_back(d.sym);
  }
  if (m.coeff == 0) m.syms.clear();
  std::sort(m.syms.begin(), m.syms.end());
  return m;
}

std::string Monomial::to_string() const {
  std::string s = std::to_string(coeff);
  for (int32_t k : syms) s += fmt::format("*s{}", k);
  return s;
}

std::optional<Dim> divide_monomials(const Monomial& total, const Monomial& part) {
  if (part.coeff == 0 || total.coeff % part.coeff != 0) return std::nullopt;
  std::vector<int32_t> rest;
  std::set_difference(total.syms.begin(), total.syms.end(), part.syms.begin(), part.syms.end(),
                      std::back_inserter(rest));
  if (total.syms.size() - rest.size() != part.syms.size() || rest.size() > 1) return std::nullopt;
  const int64_t coeff = total.coeff / part.coeff;
  return rest.empty() ? Dim::constant(coeff) : Dim{coeff, rest[0]};
}

void check_shape_limits(const SymShape& shape, std::string_view what) {
  if (static_cast<int64_t>(shape.size()) > limits::kMaxRank)
    throw ShapeError(fmt::format("{}: shape {} has {} dims; kiln's limit is {}", what,
                                 shape_string(shape), shape.size(), limits::kMaxRank));
  int64_t elements = 1;
  bool empty = false;
  for (const Dim& d : shape) {
    if (d.is_const() && d.coeff < 0)
      throw ShapeError(fmt::format("{}: shape {} has a negative size", what, shape_string(shape)));
    if (!d.is_const() && d.coeff < 1)
      throw ShapeError(
          fmt::format("{}: shape {} has the size {}; a size symbol's coefficient "
                      "must be at least 1",
                      what, shape_string(shape), d.to_string()));
    empty |= d.coeff == 0;
    if (!empty)
      elements = limits::checked_mul(elements, d.coeff).value_or(limits::kMaxElements + 1);
    elements = std::min(elements, limits::kMaxElements + 1);
  }
  if (!empty && elements > limits::kMaxElements)
    throw ShapeError(
        fmt::format("{}: shape {} has more than {} elements, kiln's limit for one "
                    "tensor (2^48)",
                    what, shape_string(shape), limits::kMaxElements));
}

}  // namespace kiln
