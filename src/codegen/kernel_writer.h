// The statement writer the emitter's loop printers share (c_emitter.cc, row_kernels.cc,
// cuda_row_loop.cc): renders loop-IR value expressions into named temporaries of nested
// scopes, each expression once per scope, in a dialect-neutral C subset; and the dtype
// spellings (storage and compute types, conversions, literals). Internal to src/codegen.
#pragma once

#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

#include "loop/kernel.h"

namespace kiln::emit {

// KILN_INJECT_FAULT=lowering:OP (tests of the minifier): OP's rendering is off by one, an
// accuracy bug of the kind the minifier hunts.
bool broken_by_fault(Op op);

struct TypeNames {
  const char* storage;
  const char* compute;
};
TypeNames type_names(DType d);
bool is_double(DType d);
// Converts a compute-typed value from one dtype's compute type to another's.
std::string convert(const std::string& v, DType from, DType to);
std::string literal(double value, bool integer, DType dtype);
// A stored element `raw` as its compute type.
std::string load_value(const std::string& raw, DType dtype);
// A compute-typed value `v` as dtype `d` stores it.
std::string store(const std::string& v, DType d);

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
    if (e->kind() == Expr::Kind::Accumulator) {
      const ReducePhase& phase = k_.phases[static_cast<size_t>(e->phase())];
      return fmt::format("(({})a{}{})", type_names(phase.dtype).compute, e->phase(),
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
  // Row kernels: divisions by a row's accumulator become reciprocal multiplies.
  void divide_by_reciprocal() { divide_by_reciprocal_ = true; }

  // An access's index: "i0" in flat pointwise kernels (every access but those at a constant
  // is at the output's own element); a flat row kernel's own element and row as i0 * R + i1
  // and i0; else the index itself.
  std::string index(const IndexPtr& i, Access access) const {
    if (k_.kind == LoopKernel::Kind::Pointwise)
      return k_.flat && i->kind != IndexExpr::Kind::Const ? "i0" : render_index(i);
    if (k_.flat && access == Access::row_element) return kRowElementIndex;
    if (k_.flat && access == Access::row) return "i0";
    return render_index(i);
  }

 private:
  struct Scope {
    std::string* out;
    std::string indent;
    std::map<const Expr*, std::string> names;
  };

  std::string rhs_of(const Expr& e);
  std::string apply(const Expr::Apply& e, DType out);
  static std::string unary(Op op, const std::string& x, DType d);
  static std::string binary(Op op, const std::string& a, const std::string& b, DType d);

  bool divide_by_reciprocal_ = false;
  const LoopKernel& k_;
  int base_;
  std::vector<Scope> scopes_;
  int counter_ = 0;
};

}  // namespace kiln::emit
