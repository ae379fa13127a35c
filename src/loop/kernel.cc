// The loop IR's checked factories and kernel facts (loop/kernel.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "kiln/error.h"
#include "loop/kernel.h"

namespace kiln {

const std::vector<ExprPtr>& Expr::operands() const {
  static const std::vector<ExprPtr> none;
  const Apply* a = std::get_if<Apply>(&node);
  return a ? a->args : none;
}

ExprPtr make_load(DType dtype, int param, IndexPtr index, Access access) {
  if (param < 0 || !index)
    throw Error(fmt::format("loop IR: a load of parameter {} without an index", param));
  return std::make_shared<const Expr>(Expr{dtype, Expr::Load{param, std::move(index), access}});
}

ExprPtr make_apply(Op op, DType dtype, Attrs attrs, std::vector<ExprPtr> args) {
  const OpInfo& info = op_info(op);
  if (!is_pointwise(info.rule))
    throw Error(fmt::format("loop IR: {} is not a pointwise op, so not an expression", info.name));
  const int n = static_cast<int>(args.size());
  const bool binary = is_binary(info.rule);
  const int fewest = binary ? (attrs.has("scalar") ? 1 : 2) : info.min_inputs;
  const int most = binary ? fewest : info.max_inputs;
  if (n < fewest || (most >= 0 && n > most))
    throw Error(fmt::format("loop IR: {} applied to {} operands", info.name, n));
  for (const ExprPtr& a : args)
    if (!a) throw Error(fmt::format("loop IR: {} applied to a missing operand", info.name));
  return std::make_shared<const Expr>(
      Expr{dtype, Expr::Apply{op, std::move(attrs), std::move(args)}});
}

ExprPtr make_random(Op op, DType dtype, int64_t draw, ExprPtr seed, ExprPtr offset,
                    IndexPtr element, Access access) {
  if (op_info(op).rule != OpRule::Random || !is_floating(dtype) || draw < 0 || !element)
    throw Error(fmt::format("loop IR: {} of {} (draw {}) is not a random draw", op_name(op),
                            dtype_name(dtype), draw));
  for (const ExprPtr* e : {&seed, &offset})
    if (!*e || (*e)->dtype != DType::i64)
      throw Error(fmt::format("loop IR: {}'s generator state must be i64 operands", op_name(op)));
  ExprPtr position =
      std::make_shared<const Expr>(Expr{DType::i64, Expr::Position{std::move(element), access}});
  Attrs attrs;
  attrs.set("draw", draw);
  return std::make_shared<const Expr>(Expr{
      dtype, Expr::Apply{op, std::move(attrs), {std::move(seed), std::move(offset), position}}});
}

ExprPtr make_arange(DType dtype, double step, ExprPtr start, IndexPtr element, Access access) {
  if (!start || !element || !std::isfinite(step))
    throw Error("loop IR: an arange needs a start, a position and a finite step");
  ExprPtr position =
      std::make_shared<const Expr>(Expr{DType::i64, Expr::Position{std::move(element), access}});
  Attrs attrs;
  attrs.set("step", step);
  return std::make_shared<const Expr>(
      Expr{dtype, Expr::Apply{Op::arange, std::move(attrs), {std::move(start), position}}});
}

ExprPtr make_accumulator(DType dtype, int phase) {
  if (phase < 0) throw Error(fmt::format("loop IR: an accumulator of phase {}", phase));
  return std::make_shared<const Expr>(Expr{dtype, Expr::Accumulator{phase}});
}

void visit_nodes(const std::vector<const Expr*>& roots,
                 const std::function<void(const Expr&)>& fn) {
  std::set<const Expr*> seen;
  std::vector<const Expr*> work(roots.rbegin(), roots.rend());
  while (!work.empty()) {
    const Expr* x = work.back();
    work.pop_back();
    if (!seen.insert(x).second) continue;
    fn(*x);
    const auto& args = x->operands();
    for (auto it = args.rbegin(); it != args.rend(); ++it) work.push_back(it->get());
  }
}

bool reads_position(const ExprPtr& e) {
  bool found = false;
  visit_nodes({e.get()}, [&](const Expr& x) { found |= x.kind() == Expr::Kind::Position; });
  return found;
}

bool reads_accumulator(const ExprPtr& e) {
  bool found = false;
  visit_nodes({e.get()}, [&](const Expr& x) { found |= x.kind() == Expr::Kind::Accumulator; });
  return found;
}

bool is_constant_load(const Expr& e) {
  return e.kind() == Expr::Kind::Load && e.load().index->kind == IndexExpr::Kind::Const;
}

bool writes_param(const LoopKernel& k, size_t p) {
  if (k.kind != LoopKernel::Kind::Foreach) return static_cast<int64_t>(p) < k.num_outputs;
  size_t base = 0;
  for (const LoopKernel& part : k.parts) {
    if (p >= base && p < base + static_cast<size_t>(part.num_outputs)) return true;
    base += part.params.size();
  }
  return false;
}

size_t widest_element(const LoopKernel& k) {
  std::vector<bool> per_element(k.params.size(), false);
  for (int p = 0; p < k.num_outputs && static_cast<size_t>(p) < per_element.size(); ++p)
    per_element[static_cast<size_t>(p)] = true;
  std::vector<const Expr*> roots;
  for (const Store& st : k.stores) roots.push_back(st.value.get());
  for (const Store& st : k.row_stores) roots.push_back(st.value.get());
  for (const ReducePhase& ph : k.phases) roots.push_back(ph.value.get());
  visit_nodes(roots, [&](const Expr& x) {
    if (x.kind() == Expr::Kind::Load && !is_constant_load(x) && x.load().param >= 0 &&
        static_cast<size_t>(x.load().param) < per_element.size())
      per_element[static_cast<size_t>(x.load().param)] = true;
  });
  size_t widest = 1;
  for (size_t p = 0; p < per_element.size() && p < k.param_dtypes.size(); ++p)
    if (per_element[p])
      widest = std::max<size_t>(widest, static_cast<size_t>(dtype_size(k.param_dtypes[p])));
  return widest;
}

const char* kernel_kind_word(const LoopKernel& kernel) {
  switch (kernel.kind) {
    case LoopKernel::Kind::Pointwise:
      return "poi";
    case LoopKernel::Kind::Foreach:
      return "for";
    case LoopKernel::Kind::Row:
      return kernel.phases.size() == 1 && kernel.stores.empty() ? "red" : "per";
  }
  return "?";
}

}  // namespace kiln
