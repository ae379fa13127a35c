#include "graph/dim.h"

#include <fmt/format.h>

#include "kiln/error.h"

namespace kiln {

int64_t Dim::eval(const std::vector<int64_t>& bindings) const {
  if (sym < 0) return coeff;
  return coeff * bindings.at(static_cast<size_t>(sym));
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

}  // namespace kiln
