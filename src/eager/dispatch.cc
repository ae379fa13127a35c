#include "eager/dispatch.h"

#include <fmt/format.h>

#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {
thread_local OpRecorder* t_recorder = nullptr;

TensorType type_of(const Tensor& t) { return {t.dtype(), const_shape(t.sizes())}; }

Shape concrete(const SymShape& shape, Op op) {
  Shape out;
  if (!try_const_shape(shape, &out))
    throw ShapeError(
        fmt::format("{}: eager result has a symbolic shape {}", op_name(op), shape_string(shape)));
  return out;
}
}  // namespace

OpRecorder* active_recorder() { return t_recorder; }

RecorderScope::RecorderScope(OpRecorder* recorder) : previous_(t_recorder) {
  t_recorder = recorder;
}
RecorderScope::~RecorderScope() { t_recorder = previous_; }

Tensor call_op(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  for (const Tensor& t : inputs) {
    if (!t.defined())
      throw Error(
          fmt::format("{}: an input tensor is undefined (default-constructed)", op_name(op)));
    if (t.impl()->is_traced() && (!t_recorder || t.impl()->trace_session != t_recorder->session()))
      throw Error(
          fmt::format("{}: a tensor traced by compile() was used outside its trace "
                      "(a traced function must not leak its intermediate tensors)",
                      op_name(op)));
  }
  if (t_recorder) return t_recorder->record(op, inputs, attrs);
  return run_op(op, inputs, attrs);
}

Tensor run_op(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs) {
  std::vector<TensorType> types;
  types.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    if (t.device() != inputs[0].device())
      throw Error(
          fmt::format("{}: inputs are on different devices ({} and {}); move them with .cuda() or "
                      ".cpu() first",
                      op_name(op), device_name(inputs[0].device()), device_name(t.device())));
    types.push_back(type_of(t));
  }
  std::vector<const TensorType*> type_ptrs;
  for (const TensorType& t : types) type_ptrs.push_back(&t);
  TensorType out = infer_type(op, attrs, type_ptrs);
  concrete(out.shape, op);
  switch (op_info(op).rule) {
    case OpRule::UnarySame:
    case OpRule::UnaryFloat:
    case OpRule::UnaryPredicate:
      return eager_unary(op, inputs[0], attrs, out);
    case OpRule::BinaryArith:
    case OpRule::BinaryFloat:
    case OpRule::Compare:
    case OpRule::Logical:
      return eager_binary(op, inputs, attrs, out);
    case OpRule::Where:
      return eager_where(inputs, out);
    case OpRule::Clamp:
      return eager_clamp(inputs[0], attrs, out);
    case OpRule::Cast:
      return cast(inputs[0], out.dtype);
    case OpRule::ReduceAccumulate:
    case OpRule::ReduceSame:
    case OpRule::ReduceFloat:
    case OpRule::ReduceIndex:
      return eager_reduce(op, inputs[0], attrs, out);
    case OpRule::Softmax:
      return eager_softmax(op, inputs[0], attrs);
    case OpRule::LayerNorm:
      return eager_layer_norm(inputs, attrs);
    case OpRule::Matmul:
    case OpRule::Bmm:
    case OpRule::Linear:
      return eager_matmul(op, inputs, attrs, out);
    case OpRule::Attention:
      return eager_attention(inputs, attrs);
    case OpRule::Cat:
    case OpRule::Stack:
    case OpRule::IndexSelect:
    case OpRule::Gather:
    case OpRule::Embedding:
    case OpRule::IndexPut:
    case OpRule::AdaptiveAvgPool2d:
      return eager_movement(op, inputs, attrs, out);
    case OpRule::Arange:
      return eager_arange(inputs[0], attrs, out);
    case OpRule::Random:
      return eager_random(op, inputs[0], attrs, out);
    case OpRule::Reshape:
    case OpRule::Permute:
    case OpRule::Slice:
    case OpRule::Expand:
      return eager_view(op, inputs[0], attrs, out);
  }
  throw Error(fmt::format("{}: no eager kernel", op_name(op)));
}

SymShape symbolic_shape(const Tensor& t) {
  if (t.impl()->is_traced() && t_recorder) return t_recorder->symbolic_shape(t);
  return const_shape(t.sizes());
}

Dim dim_of(const SymInt& size, const char* op) {
  if (!size.is_symbolic()) return Dim::constant(size.hint());
  if (!t_recorder || t_recorder->session() != size.session())
    throw ShapeError(fmt::format("{}: symbolic size {} comes from a trace that has ended", op,
                                 size.to_string()));
  return Dim::symbol(size.symbol(), size.coeff());
}

Shape concrete_sizes(const SymIntList& sizes) {
  Shape out;
  for (const SymInt& s : sizes) out.push_back(s.expect_int());
  check_tensor_shape(out);
  return out;
}

SymShape sym_shape_of(const SymIntList& sizes, const char* op) {
  SymShape out;
  for (const SymInt& s : sizes) out.push_back(dim_of(s, op));
  check_shape_limits(out, op);
  return out;
}

}  // namespace kiln
