// The loop IR's checked factories and kernel facts (loop/kernel.h).
#include <fmt/format.h>

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

ExprPtr make_accumulator(DType dtype, int phase) {
  if (phase < 0) throw Error(fmt::format("loop IR: an accumulator of phase {}", phase));
  return std::make_shared<const Expr>(Expr{dtype, Expr::Accumulator{phase}});
}

bool reads_accumulator(const ExprPtr& e) {
  if (e->kind() == Expr::Kind::Accumulator) return true;
  for (const ExprPtr& a : e->operands())
    if (reads_accumulator(a)) return true;
  return false;
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
