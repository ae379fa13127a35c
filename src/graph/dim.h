// Dim: one dimension of a graph shape, either a constant or `coeff * s<sym>` where s<sym> is a
// size symbol bound at run time (mark_dynamic). A monomial covers what tracing produces:
// dynamic dims kept as they are, or flattened with constant dims by reshape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/text.h"  // shape_string of concrete shapes

namespace kiln {

struct Dim {
  int64_t coeff = 0;  // the value when sym < 0
  int32_t sym = -1;

  static Dim constant(int64_t value) { return Dim{value, -1}; }
  static Dim symbol(int32_t sym, int64_t coeff = 1) { return Dim{coeff, sym}; }
  bool is_const() const { return sym < 0; }
  bool is_one() const { return sym < 0 && coeff == 1; }
  // The size under `bindings` (symbol index → size, -1 for unbound); throws ShapeError when
  // the symbol is unbound or the product overflows.
  int64_t eval(const std::vector<int64_t>& bindings) const;
  std::string to_string() const;
  friend bool operator==(const Dim& a, const Dim& b) {
    return a.coeff == b.coeff && (a.sym == b.sym || a.coeff == 0);
  }
};

using SymShape = std::vector<Dim>;

std::string shape_string(const SymShape& shape);
SymShape const_shape(const std::vector<int64_t>& shape);
// True when every dim is constant; fills `out` with the values.
bool try_const_shape(const SymShape& shape, std::vector<int64_t>* out);
// Product of dims as one Dim; throws ShapeError naming `what` if two symbols multiply (the
// callers that need a Dim: element counts of one symbol at most).
Dim shape_numel(const SymShape& shape, const char* what);

// The element count of any shape: `coeff` times each size symbol as often as it occurs
// ([s0, 4, s0] is 4*s0*s0: attention scores over a dynamic sequence length).
struct Monomial {
  int64_t coeff = 1;
  std::vector<int32_t> syms;  // sorted, repeated by multiplicity
  bool operator==(const Monomial& o) const { return coeff == o.coeff && syms == o.syms; }
  std::string to_string() const;
};
// Throws ShapeError naming `what` when the coefficient overflows.
Monomial shape_monomial(const SymShape& shape, const char* what);
// `total / part` when it is one Dim (a constant, or coeff*s<k>), else nullopt.
std::optional<Dim> divide_monomials(const Monomial& total, const Monomial& part);
// Throws ShapeError naming `what` unless `shape` is within kiln's limits (support/limits.h):
// at most kMaxRank dims; constant dims not negative; symbolic dims of a positive
// coefficient; and, unless a dim is 0, at most kMaxElements elements with every symbol at 1
// (bindings are checked against the same limit when they arrive: check_bindings).
void check_shape_limits(const SymShape& shape, std::string_view what);

}  // namespace kiln
