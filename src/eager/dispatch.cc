#include "eager/dispatch.h"

#include <fmt/format.h>

#include <atomic>

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

int category(DType d) { return d == DType::bool_ ? 0 : is_integral(d) ? 1 : 2; }

// PyTorch ranks a 0-d tensor below tensors with dims in type promotion: it decides the
// result's dtype only when it is of a higher category (bool < integer < floating), so
// f32[4] * f64[] is f32 and i32[4] + i64[] is i32, but i32[4] * f64[] is f64. Graph ops
// promote by dtype alone; the API gets PyTorch's answer by casting such a 0-d operand to
// the dtype of the operands with dims first. Applies to binary ops and where's values.
// The inputs with such a 0-d operand cast, in *out; false (out untouched) when none is.
bool rank_promoted(Op op, const std::vector<Tensor>& inputs, std::vector<Tensor>* out) {
  OpRule rule = op_info(op).rule;
  size_t first = rule == OpRule::Where ? 1 : 0;
  if (!(is_binary(rule) || rule == OpRule::Where) || inputs.size() != first + 2) return false;
  const Tensor& a = inputs[first];
  const Tensor& b = inputs[first + 1];
  if ((a.dim() == 0) == (b.dim() == 0) || a.dtype() == b.dtype()) return false;
  size_t zero = a.dim() == 0 ? first : first + 1;
  DType dims = inputs[a.dim() == 0 ? first + 1 : first].dtype();
  if (category(inputs[zero].dtype()) > category(dims)) return false;
  *out = inputs;
  (*out)[zero] = inputs[zero].to(dims);
  return true;
}
}  // namespace

OpRecorder* active_recorder() { return t_recorder; }

namespace {
std::atomic<const GradHooks*> g_grad_hooks{nullptr};
}  // namespace

void set_grad_hooks(const GradHooks* hooks) { g_grad_hooks.store(hooks); }
const GradHooks* grad_hooks() { return g_grad_hooks.load(std::memory_order_relaxed); }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  for (const Tensor& t : inputs)
    if (t.impl()->requires_grad || t.impl()->history_stale()) return true;
  return false;
}

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
  std::vector<Tensor> cast;  // only when a 0-d operand needs casting: no copy per op
  const std::vector<Tensor>& ins = rank_promoted(op, inputs, &cast) ? cast : inputs;
  Tensor out = t_recorder ? t_recorder->record(op, ins, attrs) : run_op(op, ins, attrs);
  if (const GradHooks* hooks = grad_hooks(); hooks && any_requires_grad(ins)) {
    for (const Tensor& t : ins)  // an op that returned its input: history of its own
      if (t.impl() == out.impl()) out = alias_without_history(out);
    hooks->op(op, ins, attrs, out);
  }
  return out;
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
    case OpRule::Im2col:
    case OpRule::Col2im:
      return eager_windows(op, inputs[0], attrs, out);
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
