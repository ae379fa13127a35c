// Factories of given values: empty, full, zeros, ones, arange, linspace, eye, from_vector. (Random
// tensors: src/eager/random.cc.)
#include <fmt/format.h>

#include <atomic>
#include <cmath>

#include "eager/dispatch.h"
#include "eager/strided_loop.h"
#include "graph/dim.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "support/limits.h"
#include "tensor/element.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

template <class Fill>
Tensor generate(const Shape& shape, DType dtype, Fill fill) {
  Tensor out = make_tensor(shape, dtype);
  char* data = out.impl()->data_ptr();
  int64_t esize = dtype_size(dtype);
  parallel_range(out.numel(), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) store_double(data + i * esize, dtype, fill(i));
  });
  return out;
}

}  // namespace

Tensor scalar_tensor(Scalar value, DType dtype, Device device) {
  Tensor out = make_tensor({}, dtype);
  if (value.is_floating())
    store_double(out.impl()->data_ptr(), dtype, value.to_double());
  else  // exactly, past 2^53 too
    KILN_DISPATCH_ALL(dtype, T,
                      *reinterpret_cast<T*>(out.impl()->data_ptr()) = to_storage<T>(value.to_int()))
  return device == Device::cpu ? out : copy_to_device(out, device);
}

namespace {

// A fresh tensor of `shape` holding `value`. While tracing: the scalar broadcast, copied
// into a slot of its own (a fresh tensor aliases nothing), so the graph holds no payload
// and a symbolic shape stays symbolic.
Tensor filled(const SymShape& shape, Scalar value, DType dtype, Device device) {
  Tensor scalar = scalar_tensor(value, dtype, device);
  Attrs a;
  a.set("shape", shape);
  if (OpRecorder* recorder = active_recorder())
    return recorder->copy(call_op(Op::expand, {scalar}, a));
  Shape concrete;
  try_const_shape(shape, &concrete);
  return contiguous_eager(call_op(Op::expand, {scalar}, a));
}

}  // namespace

Tensor empty(const SymIntList& size, DType dtype) {
  if (active_recorder()) return zeros(size, dtype);  // a graph value is never uninitialized
  return make_tensor(concrete_sizes(size), dtype);
}

Tensor full(const SymIntList& size, Scalar value, DType dtype) {
  if (active_recorder()) return filled(sym_shape_of(size, "full"), value, dtype, Device::cpu);
  Shape shape = concrete_sizes(size);
  double v = value.to_double();
  if (value.kind() != Scalar::Kind::floating) {
    int64_t i = value.to_int();
    return generate(shape, dtype, [i](int64_t) { return static_cast<double>(i); });
  }
  return generate(shape, dtype, [v](int64_t) { return v; });
}

Tensor zeros(const SymIntList& size, DType dtype) { return full(size, 0, dtype); }
Tensor ones(const SymIntList& size, DType dtype) { return full(size, 1, dtype); }

Tensor full_like(const Tensor& x, Scalar value) {
  return filled(symbolic_shape(x), value, x.dtype(), x.device());
}
Tensor zeros_like(const Tensor& x) { return full_like(x, 0); }
Tensor ones_like(const Tensor& x) { return full_like(x, 1); }
Tensor empty_like(const Tensor& x) {
  if (active_recorder() || x.device() != Device::cpu) return zeros_like(x);
  return make_tensor(x.sizes(), x.dtype());
}

Tensor arange(double end, DType dtype) { return arange(0, end, 1, dtype); }

// A symbolic end (a dynamic dim's size while tracing) is the length itself.
Tensor arange(const SymInt& end, DType dtype) {
  if (!end.is_symbolic()) return arange(0, end.expect_int(), 1, dtype);
  Attrs a;
  a.set("shape", sym_shape_of({end}, "arange")).set("step", 1.0);
  return call_op(Op::arange, {scalar_tensor(0, dtype)}, a);
}

// One path eagerly and while tracing: the arange op of a 0-d start, so that a traced arange
// is a graph node (a constant start), not a stored constant.
Tensor arange(Scalar start, Scalar end, Scalar step, DType dtype) {
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  if (st == 0 || !std::isfinite(s) || !std::isfinite(e) || !std::isfinite(st))
    throw Error(fmt::format("arange({}, {}, {}): bounds must be finite and step non-zero",
                            start.to_string(), end.to_string(), step.to_string()));
  double count = std::ceil((e - s) / st);
  if (count > static_cast<double>(limits::kMaxElements))
    throw ShapeError(fmt::format("arange({}, {}, {}): {} elements exceed kiln's limit of 2^48",
                                 start.to_string(), end.to_string(), step.to_string(), count));
  int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Attrs a;
  a.set("shape", const_shape({n})).set("step", st);
  return call_op(Op::arange, {scalar_tensor(start, dtype)}, a);
}

Tensor eager_arange(const Tensor& start, const Attrs& attrs, const TensorType& out) {
  Shape shape;
  try_const_shape(out.shape, &shape);
  const double s = start.cpu().item_double(), step = attrs.get_double("step");
  Tensor result = generate(shape, out.dtype,
                           [s, step](int64_t i) { return s + static_cast<double>(i) * step; });
  return start.device() == Device::cpu ? result : copy_to_device(result, start.device());
}

Tensor linspace(Scalar start, Scalar end, int64_t steps, DType dtype) {
  if (steps < 0) throw Error(fmt::format("linspace: steps must not be negative, got {}", steps));
  double s = start.to_double(), e = end.to_double();
  if (!std::isfinite(s) || !std::isfinite(e))
    throw Error(fmt::format("linspace({}, {}, {}): bounds must be finite", start.to_string(),
                            end.to_string(), steps));
  if (steps <= 1) return full({steps}, s, dtype);
  // As PyTorch: the first half counts up from start, the second down from end, so that
  // both ends are exact and the steps symmetric.
  double step = (e - s) / static_cast<double>(steps - 1);
  Tensor i = arange(0, steps, 1, DType::f64);
  Tensor up = i * step + s, down = (i - static_cast<double>(steps - 1)) * step + e;
  return where(lt(i, static_cast<double>(steps / 2)), up, down).to(dtype);
}

Tensor eye(int64_t n, int64_t m, DType dtype) {
  if (m < 0) m = n;
  if (n < 0) throw Error(fmt::format("eye: n must not be negative, got {}", n));
  return eq(arange(n).unsqueeze(1), arange(m).unsqueeze(0)).to(dtype);
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw ShapeError(fmt::format("from_vector: {} values for shape {} ({} elements)", values.size(),
                                 shape_string(shape), shape_numel(shape)));
  return generate(shape, dtype, [&](int64_t i) { return values[static_cast<size_t>(i)]; });
}

}  // namespace kiln
