#include "loop/index.h"

#include <fmt/format.h>

namespace kiln {

namespace {
IndexPtr make(IndexExpr::Kind kind, int64_t value, IndexPtr a = nullptr, IndexPtr b = nullptr) {
  return std::make_shared<const IndexExpr>(IndexExpr{kind, value, std::move(a), std::move(b)});
}
bool constant(const IndexPtr& e) { return e->kind == IndexExpr::Kind::Const; }
}  // namespace

bool is_const(const IndexPtr& e, int64_t value) { return constant(e) && e->value == value; }

IndexPtr index_const(int64_t value) { return make(IndexExpr::Kind::Const, value); }
IndexPtr index_var(int64_t loop) { return make(IndexExpr::Kind::Var, loop); }
IndexPtr index_sym(int64_t symbol) { return make(IndexExpr::Kind::Sym, symbol); }

IndexPtr index_dim(const Dim& dim) {
  if (dim.is_const()) return index_const(dim.coeff);
  return index_mul(index_const(dim.coeff), index_sym(dim.sym));
}

IndexPtr index_add(IndexPtr a, IndexPtr b) {
  if (is_const(a, 0)) return b;
  if (is_const(b, 0)) return a;
  if (constant(a) && constant(b)) return index_const(a->value + b->value);
  return make(IndexExpr::Kind::Add, 0, std::move(a), std::move(b));
}

IndexPtr index_mul(IndexPtr a, IndexPtr b) {
  if (is_const(a, 0) || is_const(b, 0)) return index_const(0);
  if (is_const(a, 1)) return b;
  if (is_const(b, 1)) return a;
  if (constant(a) && constant(b)) return index_const(a->value * b->value);
  return make(IndexExpr::Kind::Mul, 0, std::move(a), std::move(b));
}

IndexPtr index_div(IndexPtr a, IndexPtr b) {
  if (is_const(b, 1)) return a;
  if (is_const(a, 0)) return a;
  if (constant(a) && constant(b) && b->value != 0) return index_const(a->value / b->value);
  return make(IndexExpr::Kind::Div, 0, std::move(a), std::move(b));
}

IndexPtr index_mod(IndexPtr a, IndexPtr b) {
  if (is_const(b, 1) || is_const(a, 0)) return index_const(0);
  if (constant(a) && constant(b) && b->value != 0) return index_const(a->value % b->value);
  return make(IndexExpr::Kind::Mod, 0, std::move(a), std::move(b));
}

bool same_index(const IndexPtr& a, const IndexPtr& b) {
  if (a == b) return true;
  if (!a || !b || a->kind != b->kind || a->value != b->value) return false;
  return (a->a == b->a || same_index(a->a, b->a)) && (a->b == b->b || same_index(a->b, b->b));
}

size_t index_hash(const IndexPtr& e) {
  if (!e) return 0x9e3779b9u;
  size_t h = static_cast<size_t>(e->kind) * 0x100000001b3ull ^ static_cast<size_t>(e->value);
  h ^= index_hash(e->a) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h ^= index_hash(e->b) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

std::string render_index(const IndexPtr& e) {
  switch (e->kind) {
    case IndexExpr::Kind::Const:
      return fmt::format("{}", e->value);
    case IndexExpr::Kind::Var:
      return fmt::format("i{}", e->value);
    case IndexExpr::Kind::Sym:
      return fmt::format("s{}", e->value);
    case IndexExpr::Kind::Add:
      return fmt::format("({} + {})", render_index(e->a), render_index(e->b));
    case IndexExpr::Kind::Mul:
      return fmt::format("({} * {})", render_index(e->a), render_index(e->b));
    case IndexExpr::Kind::Div:
      return fmt::format("({} / {})", render_index(e->a), render_index(e->b));
    case IndexExpr::Kind::Mod:
      return fmt::format("({} % {})", render_index(e->a), render_index(e->b));
  }
  return "?";
}

}  // namespace kiln
