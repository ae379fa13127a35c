// Index expressions of the loop IR: integer arithmetic over loop variables (i0, i1, ...),
// size symbols (s0, s1, ... passed to kernels at run time) and constants. Nodes are
// immutable and built only through the factories below, which fold constants and drop
// identities (x*1, x+0, x/1, x%1), so equal indices render to equal text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "graph/dim.h"

namespace kiln {

struct IndexExpr;
using IndexPtr = std::shared_ptr<const IndexExpr>;

struct IndexExpr {
  enum class Kind { Const, Var, Sym, Add, Mul, Div, Mod };
  Kind kind;
  int64_t value = 0;  // Const: the value; Var/Sym: the index
  IndexPtr a, b;
};

IndexPtr index_const(int64_t value);
IndexPtr index_var(int64_t loop);
IndexPtr index_sym(int64_t symbol);
IndexPtr index_dim(const Dim& dim);  // coeff * s<sym>, or the constant
IndexPtr index_add(IndexPtr a, IndexPtr b);
IndexPtr index_mul(IndexPtr a, IndexPtr b);
IndexPtr index_div(IndexPtr a, IndexPtr b);  // floor division of non-negative values
IndexPtr index_mod(IndexPtr a, IndexPtr b);
bool is_const(const IndexPtr& e, int64_t value);

// Structural equality and a hash consistent with it: the identity of an index, which
// lowering and the emitter compare (never their rendered text).
bool same_index(const IndexPtr& a, const IndexPtr& b);
size_t index_hash(const IndexPtr& e);

// C text: variables i<k>, symbols s<k>, fully parenthesized.
std::string render_index(const IndexPtr& e);

}  // namespace kiln
