// The Op enum and its static facts (name, rule family, arity), all expanded from ops.def.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln {

enum class OpRule : uint8_t {
  UnarySame,
  UnaryFloat,
  UnaryPredicate,
  BinaryArith,
  BinaryFloat,
  Compare,
  Logical,
  Where,
  Clamp,
  Cast,
  ReduceAccumulate,
  ReduceSame,
  ReduceFloat,
  ReduceIndex,
  Softmax,
  LayerNorm,
  Matmul,
  Bmm,
  Linear,
  Attention,
  Cat,
  Stack,
  IndexSelect,
  Gather,
  Embedding,
  IndexPut,
  AdaptiveAvgPool2d,
  Im2col,
  Col2im,
  Arange,
  Random,
  Reshape,
  Permute,
  Slice,
  Expand,
};

enum class Op : uint16_t {
#define KILN_OP(name, rule, min_in, max_in) name,
#include "graph/ops.def"
#undef KILN_OP
};

inline constexpr int kNumOps = 0
#define KILN_OP(name, rule, min_in, max_in) +1
#include "graph/ops.def"
#undef KILN_OP
    ;

struct OpInfo {
  std::string_view name;
  OpRule rule;
  int min_inputs;
  int max_inputs;  // -1: any number
};

const OpInfo& op_info(Op op);
inline std::string_view op_name(Op op) { return op_info(op).name; }
std::optional<Op> op_from_name(std::string_view name);

inline bool is_binary(OpRule rule) {
  return rule == OpRule::BinaryArith || rule == OpRule::BinaryFloat || rule == OpRule::Compare ||
         rule == OpRule::Logical;
}
// Elementwise ops: what the loop lowering fuses into kernels as expressions.
inline bool is_pointwise(OpRule rule) {
  return is_binary(rule) || rule == OpRule::UnarySame || rule == OpRule::UnaryFloat ||
         rule == OpRule::UnaryPredicate || rule == OpRule::Where || rule == OpRule::Clamp ||
         rule == OpRule::Cast;
}
// Float functions that compile to a call of the vector math library (sin, exp, erf, ...),
// not to a few instructions (sqrt, rsqrt, reciprocal): what makes a kernel compute-heavy.
inline bool is_transcendental(Op op) {
  return op_info(op).rule == OpRule::UnaryFloat && op != Op::sqrt && op != Op::rsqrt &&
         op != Op::reciprocal;
}
inline bool is_view(OpRule rule) {
  return rule == OpRule::Reshape || rule == OpRule::Permute || rule == OpRule::Slice ||
         rule == OpRule::Expand;
}

}  // namespace kiln
