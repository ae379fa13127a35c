// The loop IR's checked factories and kernel facts (loop/kernel.h).
#include <fmt/format.h>

#include "kiln/error.h"
#include "loop/kernel.h"

namespace kiln {

ExprPtr make_load(DType dtype, int param, IndexPtr index, Access access) {
  if (param < 0 || !index)
    throw Error(fmt::format("loop IR: a load of parameter {} without an index", param));
  auto e = std::make_shared<Expr>();
  e->kind = Expr::Kind::Load;
  e->dtype = dtype;
  e->param = param;
  e->index = std::move(index);
  e->access = access;
  return e;
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
  auto e = std::make_shared<Expr>();
  e->kind = Expr::Kind::Apply;
  e->dtype = dtype;
  e->op = op;
  e->attrs = std::move(attrs);
  e->args = std::move(args);
  return e;
}

ExprPtr make_accumulator(DType dtype, int phase) {
  if (phase < 0) throw Error(fmt::format("loop IR: an accumulator of phase {}", phase));
  auto e = std::make_shared<Expr>();
  e->kind = Expr::Kind::Accumulator;
  e->dtype = dtype;
  e->accumulator = phase;
  return e;
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
