// Tensor's methods that are ops: views (reshape, permute, narrow, expand, ...) and
// conversions (to a dtype, to a device). Each dispatches through call_op, so it records into
// an active trace or runs eagerly.
#include <fmt/format.h>

#include <algorithm>

#include "eager/dispatch.h"
#include "graph/infer.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "tensor/tensor_impl.h"

namespace kiln {

// ---- views -----------------------------------------------------------------------------

namespace {

// Resolves a user's target shape: -1 takes the remaining elements; a SymInt keeps its
// symbol; a number equal to a dynamic input dim's trace-time size at the same position keeps
// that symbol.
SymShape resolve_target(const Tensor& x, const SymIntList& target, const char* op) {
  SymShape in = symbolic_shape(x);
  SymShape out;
  int infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    const SymInt& t = target[i];
    if (t.is_symbolic()) {
      out.push_back(dim_of(t, op));
    } else if (t.hint() == -1) {
      if (infer_at >= 0) throw ShapeError(fmt::format("{}: only one dim may be -1", op));
      infer_at = static_cast<int>(i);
      out.push_back(Dim::constant(1));
    } else if (t.hint() < 0) {
      throw ShapeError(fmt::format("{}: bad size {} in {}", op, t.hint(), target.to_string()));
    } else if (i < in.size() && !in[i].is_const() && x.sizes()[i] == t.hint()) {
      out.push_back(in[i]);
    } else {
      out.push_back(Dim::constant(t.hint()));
    }
  }
  if (infer_at >= 0) {
    std::optional<Dim> rest = divide_monomials(shape_monomial(in, op), shape_monomial(out, op));
    if (!rest)
      throw ShapeError(
          fmt::format("{}: cannot reshape {} into {}", op, shape_string(in), target.to_string()));
    out[infer_at] = *rest;
  }
  return out;
}

}  // namespace

SymInt Tensor::size(int64_t d) const {
  int64_t nd = normalize_dim(d, dim(), "size");
  int64_t hint = sizes()[static_cast<size_t>(nd)];
  OpRecorder* recorder = active_recorder();
  if (recorder && impl()->is_traced()) {
    Dim sym = symbolic_shape(*this)[static_cast<size_t>(nd)];
    if (!sym.is_const()) return SymInt::symbolic(sym.sym, sym.coeff, hint, recorder->session());
  }
  return hint;
}

std::vector<SymInt> Tensor::sym_sizes() const {
  std::vector<SymInt> out;
  for (int64_t d = 0; d < dim(); ++d) out.push_back(size(d));
  return out;
}

Tensor Tensor::reshape(const SymIntList& shape) const {
  Attrs a;
  a.set("shape", resolve_target(*this, shape, "reshape"));
  return call_op(Op::reshape, {*this}, a);
}

Tensor Tensor::view(const SymIntList& shape) const {
  Tensor out = reshape(shape);
  if (!out.impl()->is_traced() && out.impl()->storage != impl_->storage && numel() > 0)
    throw ShapeError(
        fmt::format("view({}): the strides of a {} tensor do not allow a view; "
                    "use reshape()",
                    shape.to_string(), shape_string(sizes())));
  return out;
}

Tensor Tensor::permute(const Shape& dims) const {
  Attrs a;
  a.set_ints("dims", dims);
  return call_op(Op::permute, {*this}, a);
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  int64_t r = dim();
  Shape dims(r);
  for (int64_t i = 0; i < r; ++i) dims[i] = i;
  if (r == 0) return *this;
  std::swap(dims[normalize_dim(dim0, r, "transpose")], dims[normalize_dim(dim1, r, "transpose")]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, std::optional<SymInt> start, std::optional<SymInt> end,
                     int64_t step) const {
  int64_t nd = normalize_dim(d, dim(), "slice");
  if (step <= 0) throw ShapeError(fmt::format("slice: step must be positive, got {}", step));
  const Dim size = symbolic_shape(*this)[static_cast<size_t>(nd)];
  const int64_t hint = sizes()[nd];
  // A number counts from the end when negative and is clamped into the dim, as in PyTorch;
  // one equal to a dynamic dim's trace-time size is that size (as view() takes it).
  auto bound = [&](const std::optional<SymInt>& b, const Dim& absent) {
    if (!b) return absent;
    if (b->is_symbolic()) return dim_of(*b, "slice");
    int64_t i = b->hint();
    if (i < 0) i += hint;
    i = std::clamp<int64_t>(i, 0, hint);
    return !size.is_const() && i == hint ? size : Dim::constant(i);
  };
  Dim s = bound(start, Dim::constant(0)), e = bound(end, size);
  if (s.is_const() && e.is_const()) e.coeff = std::max(s.coeff, e.coeff);
  Attrs a;
  a.set("dim", nd).set_dim("start", s).set_dim("end", e).set("step", step);
  return call_op(Op::slice, {*this}, a);
}

Tensor Tensor::narrow(int64_t d, const SymInt& start, const SymInt& length) const {
  int64_t nd = normalize_dim(d, dim(), "narrow");
  if (start.is_symbolic() || length.is_symbolic()) return slice(nd, start, start + length, 1);
  int64_t first = start.hint(), n = length.hint();
  if (first < 0) first += sizes()[nd];
  if (first < 0 || n < 0 || first + n > sizes()[nd])
    throw ShapeError(fmt::format("narrow: start {} + length {} exceed dim {} of size {}", first, n,
                                 nd, sizes()[nd]));
  return slice(nd, first, first + n, 1);
}

Tensor Tensor::expand(const SymIntList& shape) const {
  SymShape in = symbolic_shape(*this);
  if (shape.size() < in.size())
    throw ShapeError(fmt::format("expand: target {} has fewer dims than {}", shape.to_string(),
                                 shape_string(sizes())));
  SymShape target;
  size_t shift = shape.size() - in.size();
  for (size_t i = 0; i < shape.size(); ++i) {
    const SymInt& t = shape[i];
    bool keep =
        i >= shift && !t.is_symbolic() && (t.hint() == -1 || t.hint() == sizes()[i - shift]);
    target.push_back(keep ? in[i - shift] : dim_of(t, "expand"));
  }
  Attrs a;
  a.set("shape", target);
  return call_op(Op::expand, {*this}, a);
}

// The shape views below keep symbolic sizes symbolic (sym_sizes): a dynamic dim is never
// squeezed (its size is not known to be 1) and moves with its position.
Tensor Tensor::squeeze() const {
  std::vector<SymInt> target;
  for (const SymInt& s : sym_sizes())
    if (s.is_symbolic() || s.expect_int() != 1) target.push_back(s);
  return reshape(target);
}

Tensor Tensor::squeeze(int64_t d) const {
  int64_t nd = normalize_dim(d, dim(), "squeeze");
  if (dim() == 0) return *this;
  std::vector<SymInt> target = sym_sizes();
  const SymInt& at = target[static_cast<size_t>(nd)];
  if (at.is_symbolic() || at.expect_int() != 1) return *this;
  target.erase(target.begin() + nd);
  return reshape(target);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  int64_t nd = normalize_dim(d, dim() + 1, "unsqueeze");
  std::vector<SymInt> target = sym_sizes();
  target.insert(target.begin() + nd, SymInt(1));
  return reshape(target);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  int64_t s = normalize_dim(start_dim, dim(), "flatten");
  int64_t e = normalize_dim(end_dim, dim(), "flatten");
  if (s > e) throw ShapeError("flatten: start_dim must not come after end_dim");
  const std::vector<SymInt> sizes = sym_sizes();
  std::vector<SymInt> target(sizes.begin(), sizes.begin() + s);
  SymInt merged(1);
  for (int64_t d = s; d <= e; ++d) merged = merged * sizes[static_cast<size_t>(d)];
  target.push_back(merged);
  target.insert(target.end(), sizes.begin() + e + 1, sizes.end());
  return reshape(target);
}

namespace {
// `out`, a copy of `in`: its history is a copy's (autograd passes the gradient through).
Tensor copied(const Tensor& in, Tensor out) {
  if (const GradHooks* hooks = grad_hooks(); hooks && any_requires_grad({in})) hooks->copy(in, out);
  return out;
}
}  // namespace

Tensor Tensor::contiguous() const {
  if (!defined()) return *this;
  if (OpRecorder* recorder = active_recorder())  // a copy exactly where eager makes one
    return is_contiguous() ? *this : copied(*this, recorder->copy(*this));
  if (is_contiguous()) return contiguous_eager(*this);  // itself
  return copied(*this, contiguous_eager(*this));
}

Tensor Tensor::to(DType dtype) const {
  if (this->dtype() == dtype) return *this;
  Attrs a;
  a.set("dtype", dtype);
  return call_op(Op::to, {*this}, a);
}

Tensor Tensor::clone() const {
  if (OpRecorder* recorder = active_recorder(); recorder && defined())
    return copied(*this, recorder->copy(*this));  // the same value, aliasing nothing
  require_data(*this, "clone()");
  Tensor out = make_tensor(sizes(), dtype(), device());
  copy_into(out, *this);
  return copied(*this, out);
}

Tensor Tensor::to(Device device) const {
  if (impl_ && this->device() == device) return *this;  // as torch: the tensor itself
  if (impl_ && impl_->is_traced())
    throw Error(
        fmt::format("to({}): moving a traced value between devices is not supported; move the "
                    "inputs before calling the compiled function",
                    device_name(device)));
  require_data(*this, "to(device)");
  // A captured tensor copied to another device while tracing: the copy is a constant of the
  // graph, and a write to the captured tensor makes the next call trace again.
  OpRecorder* recorder = active_recorder();
  if (recorder && impl_->storage->serial() < recorder->first_serial())
    recorder->depends_on_values(*this, "copied to another device");
  Tensor moved = copy_to_device(*this, device);
  moved.impl()->dynamic_dims = impl_->dynamic_dims;  // mark_dynamic travels with the values
  return copied(*this, moved);
}

void mark_dynamic(const Tensor& tensor, int64_t dim) {
  int64_t d = normalize_dim(dim, tensor.dim(), "mark_dynamic");
  tensor.impl()->dynamic_dims |= uint64_t{1} << d;
}

}  // namespace kiln
