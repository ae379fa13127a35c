// In-place ops: self ← f(self, ...). Each computes its out-of-place result through call_op
// (so it runs eagerly or records, like any op), converts it to self's dtype and broadcasts
// it to self's shape, then assigns: eagerly a copy into self's elements (views see it) and
// a version bump; while tracing, the recorder's functionalized assign.
#include <fmt/format.h>

#include "eager/dispatch.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// PyTorch's canCast: no floating → integral or bool, no integral → bool.
bool can_cast(DType from, DType to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (to == DType::bool_ && from != DType::bool_) return false;
  return true;
}

// `value` broadcast to `self`'s (symbolic) shape.
Tensor expand_to(const Tensor& value, const Tensor& self) {
  SymShape target = symbolic_shape(self);
  if (symbolic_shape(value) == target) return value;
  Attrs a;
  a.set("shape", target);
  return call_op(Op::expand, {value}, a);
}

void assign(const Tensor& self, const Tensor& value) {
  if (const GradHooks* hooks = grad_hooks(); hooks && any_requires_grad({self, value}))
    hooks->assign(self, value);
  if (OpRecorder* recorder = active_recorder()) return recorder->assign(self, value);
  require_data(self, "in-place op");
  const TensorImpl& impl = *self.impl();
  for (size_t d = 0; d < impl.sizes.size(); ++d)
    if (impl.strides[d] == 0 && impl.sizes[d] > 1)
      throw Error(
          "in-place op: more than one element of the written-to tensor refers to a single "
          "memory location (an expanded tensor); clone() it first");
  // A source that shares memory with self is read whole before anything is written.
  Tensor source = value.impl()->storage == impl.storage ? value.clone() : value;
  copy_into(self, source);
  impl.storage->bump_version();
}

// self ← result, where result is an arithmetic op's value of self and something else.
const Tensor& assign_result(const Tensor& self, const Tensor& result, const char* op) {
  if (!(symbolic_shape(result) == symbolic_shape(self)))
    throw ShapeError(fmt::format("{}: output with shape {} doesn't match the broadcast shape {}",
                                 op, shape_string(symbolic_shape(self)),
                                 shape_string(symbolic_shape(result))));
  if (!can_cast(result.dtype(), self.dtype()))
    throw Error(fmt::format("{}: result type {} can't be cast to the desired output type {}", op,
                            dtype_name(result.dtype()), dtype_name(self.dtype())));
  assign(self, result.to(self.dtype()));
  return self;
}

void check_alpha(const Tensor& self, Scalar alpha, const char* op) {
  if (alpha.is_floating() && !is_floating(self.dtype()))
    throw Error(fmt::format(
        "{}: for integral input tensors, argument alpha must not be a floating point number", op));
}

Scalar scaled(Scalar other, Scalar alpha) {
  if (other.is_floating() || alpha.is_floating()) return other.to_double() * alpha.to_double();
  return other.to_int() * alpha.to_int();
}

Tensor scaled(const Tensor& other, Scalar alpha) {
  bool one = !alpha.is_floating() && alpha.to_int() == 1;
  return one ? other : mul(other, alpha);
}

}  // namespace

const Tensor& Tensor::add_(const Tensor& other, Scalar alpha) const {
  check_alpha(*this, alpha, "add_");
  return assign_result(*this, add(*this, scaled(other, alpha)), "add_");
}
const Tensor& Tensor::add_(Scalar other, Scalar alpha) const {
  check_alpha(*this, alpha, "add_");
  return assign_result(*this, add(*this, scaled(other, alpha)), "add_");
}
const Tensor& Tensor::sub_(const Tensor& other, Scalar alpha) const {
  check_alpha(*this, alpha, "sub_");
  return assign_result(*this, sub(*this, scaled(other, alpha)), "sub_");
}
const Tensor& Tensor::sub_(Scalar other, Scalar alpha) const {
  check_alpha(*this, alpha, "sub_");
  return assign_result(*this, sub(*this, scaled(other, alpha)), "sub_");
}
const Tensor& Tensor::mul_(const Tensor& other) const {
  return assign_result(*this, mul(*this, other), "mul_");
}
const Tensor& Tensor::mul_(Scalar other) const {
  return assign_result(*this, mul(*this, other), "mul_");
}
const Tensor& Tensor::div_(const Tensor& other) const {
  return assign_result(*this, div(*this, other), "div_");
}
const Tensor& Tensor::div_(Scalar other) const {
  return assign_result(*this, div(*this, other), "div_");
}
const Tensor& Tensor::clamp_(std::optional<Scalar> min, std::optional<Scalar> max) const {
  return assign_result(*this, clamp(min, max), "clamp_");
}
Tensor Tensor::masked_fill(const Tensor& mask, Scalar value) const {
  return kiln::masked_fill(*this, mask, value);
}
const Tensor& Tensor::masked_fill_(const Tensor& mask, Scalar value) const {
  return assign_result(*this, kiln::masked_fill(*this, mask, value), "masked_fill_");
}

const Tensor& Tensor::index_put_(const std::vector<Tensor>& indices, const Tensor& values,
                                 bool accumulate) const {
  return assign_result(*this, index_put(*this, indices, values, accumulate), "index_put_");
}

const Tensor& Tensor::copy_(const Tensor& src) const {
  // Across devices as PyTorch allows: the source moves first (while tracing, a constant's
  // move is a new constant; a captured tensor's, a dependence on its values).
  Tensor moved = src.impl()->is_traced() ? src : src.to(device());
  assign(*this, expand_to(moved.to(dtype()), *this));
  return *this;
}
const Tensor& Tensor::fill_(Scalar value) const {
  assign(*this, expand_to(scalar_tensor(value, dtype(), device()), *this));
  return *this;
}
const Tensor& Tensor::zero_() const { return fill_(0); }

Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
  if (mask.dtype() != DType::bool_)
    throw Error(
        fmt::format("masked_fill: the mask must be bool, not {}", dtype_name(mask.dtype())));
  return where(mask, scalar_tensor(value, x.dtype(), x.device()), x);
}

Tensor index_put(const Tensor& self, const std::vector<Tensor>& indices, const Tensor& values,
                 bool accumulate) {
  if (indices.empty()) throw ShapeError("index_put: needs at least one index tensor");
  std::vector<Tensor> inputs{self, values};
  inputs.insert(inputs.end(), indices.begin(), indices.end());
  Attrs a;
  a.set("accumulate", static_cast<int64_t>(accumulate));
  return call_op(Op::index_put, inputs, a);
}

const Tensor& operator+=(const Tensor& a, const Tensor& b) { return a.add_(b); }
const Tensor& operator-=(const Tensor& a, const Tensor& b) { return a.sub_(b); }
const Tensor& operator*=(const Tensor& a, const Tensor& b) { return a.mul_(b); }
const Tensor& operator/=(const Tensor& a, const Tensor& b) { return a.div_(b); }
const Tensor& operator+=(const Tensor& a, Scalar b) { return a.add_(b); }
const Tensor& operator-=(const Tensor& a, Scalar b) { return a.sub_(b); }
const Tensor& operator*=(const Tensor& a, Scalar b) { return a.mul_(b); }
const Tensor& operator/=(const Tensor& a, Scalar b) { return a.div_(b); }

}  // namespace kiln
