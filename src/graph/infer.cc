#include "graph/infer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "graph/window.h"
#include "kiln/error.h"
#include "support/limits.h"

namespace kiln {

Dim slice_length(const Dim& size, const Dim& start, const Dim& end, int64_t step,
                 const std::function<void(const std::string&)>& fail) {
  if (start.is_const() && end.is_const() && size.is_const()) {
    if (start.coeff < 0 || end.coeff < start.coeff || end.coeff > size.coeff)
      fail("outside the dim");
    const int64_t n = end.coeff - start.coeff;
    return Dim::constant(n / step + (n % step != 0));
  }
  if (step != 1) fail("a slice with symbolic bounds or of a dynamic dim takes step 1");
  // The length end - start: a Dim when start is 0 or both are multiples of one symbol.
  Dim length;
  if (start.is_const() && start.coeff == 0) {
    length = end;
  } else if (!start.is_const() && !end.is_const() && start.sym == end.sym) {
    if (end.coeff < start.coeff) fail("the end is before the start");
    length =
        end.coeff == start.coeff ? Dim::constant(0) : Dim::symbol(end.sym, end.coeff - start.coeff);
  } else {
    fail(
        "its length is not a multiple of one size (start at 0, or at a multiple of the end's "
        "size symbol)");
  }
  if (start.is_const() && start.coeff < 0) fail("the start is negative");
  // end <= size: decided here for one symbol; for a symbolic end in a constant dim it is a
  // limit on the symbol (symbol_limits checks each binding against it).
  if (end.is_const() && !size.is_const() && end.coeff > 0)
    fail(
        fmt::format("a constant end in a dynamic dim would need {} >= {}; give the bounds "
                    "as sizes (x.size(d)), or do not mark the dim dynamic",
                    size.to_string(), end.coeff));
  if (!end.is_const() && !size.is_const() && (end.sym != size.sym || end.coeff > size.coeff))
    fail("the end may pass the dim's size");
  return length;
}

std::string type_string(const TensorType& type) {
  return fmt::format("{}{}", dtype_name(type.dtype), shape_string(type.shape));
}

namespace {

int category(DType d) { return d == DType::bool_ ? 0 : is_integral(d) ? 1 : 2; }

// Raises ShapeError as "op(f32[4, 5], f32[3]): message".
[[noreturn]] void fail(Op op, const std::vector<const TensorType*>& inputs,
                       const std::string& message) {
  std::string args;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) args += ", ";
    args += type_string(*inputs[i]);
  }
  throw ShapeError(fmt::format("{}({}): {}", op_name(op), args, message));
}

// im2col and col2im (ops.def): the windows' geometry, checked, and the columns' shape.
TensorType window_type(Op op, const std::vector<const TensorType*>& in, const Attrs& attrs) {
  const TensorType& x = *in[0];
  WindowGeometry w;
  try {
    w = window_geometry(attrs);
  } catch (const ShapeError& e) {
    fail(op, in, e.what());
  }
  const size_t s = static_cast<size_t>(w.spatial());
  const int64_t k = w.kernel_elements();
  auto counts_of = [&](const std::vector<int64_t>& sizes) {
    try {
      return window_counts(w, sizes);
    } catch (const ShapeError& e) {
      fail(op, in, e.what());
    }
  };
  auto windows_in = [&](const std::vector<int64_t>& counts) {
    int64_t l = 1;
    for (int64_t c : counts) {
      std::optional<int64_t> next = limits::checked_mul(l, c);
      if (!next) fail(op, in, "too many windows");
      l = *next;
    }
    return l;
  };
  if (op == Op::im2col) {
    if (x.shape.size() != s + 2)
      fail(op, in, fmt::format("input must be [N, C, *spatial] with {} spatial dims", s));
    std::vector<int64_t> spatial;
    for (size_t d = 0; d < s; ++d) {
      if (!x.shape[2 + d].is_const()) fail(op, in, "spatial sizes must be static");
      spatial.push_back(x.shape[2 + d].coeff);
    }
    const Dim& c = x.shape[1];
    std::optional<int64_t> ck = limits::checked_mul(c.coeff, k);
    if (!ck) fail(op, in, "channels times kernel positions overflow");
    if (attrs.has("pad_value") && is_integral(x.dtype) &&
        !std::isfinite(attrs.get_double("pad_value")))
      fail(op, in, "pad_value must be finite for an integer tensor");
    return {x.dtype, {x.shape[0], Dim{*ck, c.sym}, Dim::constant(windows_in(counts_of(spatial)))}};
  }
  if (!is_floating(x.dtype)) fail(op, in, "needs a floating input (it sums its columns)");
  if (x.shape.size() != 3) fail(op, in, "input must be columns [N, C*K, L]");
  std::vector<int64_t> size = attrs.get_ints("output_size");
  if (size.size() != s)
    fail(op, in, fmt::format("output_size has {} entries, expected {}", size.size(), s));
  const Dim& ck = x.shape[1];
  if (ck.coeff % k != 0)
    fail(op, in, fmt::format("dim 1 is not a multiple of the kernel's {} positions", k));
  int64_t l = windows_in(counts_of(size));
  if (x.shape[2] != Dim::constant(l))
    fail(op, in, fmt::format("dim 2 must be the {} windows of output_size", l));
  SymShape shape{x.shape[0], Dim{ck.coeff / k, ck.sym}};
  for (int64_t d : size) shape.push_back(Dim::constant(d));
  return {x.dtype, shape};
}

SymShape reduce_shape(const SymShape& shape, const std::vector<int64_t>& dims, bool keepdim) {
  SymShape out;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    bool reduced = std::find(dims.begin(), dims.end(), i) != dims.end();
    if (!reduced) {
      out.push_back(shape[i]);
    } else if (keepdim) {
      out.push_back(Dim::constant(1));
    }
  }
  return out;
}

bool dims_match(const Dim& a, const Dim& b) { return a == b; }

// matmul and linear may carry `epilogue=relu` or `epilogue=gelu_tanh` (put there by
// fuse_gemm_epilogues for the GPU's fused epilogues): the activation of the product (plus
// bias), the type unchanged;
// and `algorithm=tuned` (max_autotune on the GPU: cuBLASLt's candidates are timed).
void check_epilogue(Op op, const Attrs& attrs, const std::vector<const TensorType*>& in) {
  if (attrs.has("epilogue") && attrs.get_string("epilogue") != "relu" &&
      attrs.get_string("epilogue") != "gelu_tanh")
    fail(op, in,
         fmt::format("unknown epilogue '{}' (accepted: relu, gelu_tanh)",
                     attrs.get_string("epilogue")));
  if (attrs.has("algorithm") && attrs.get_string("algorithm") != "tuned")
    fail(op, in,
         fmt::format("unknown algorithm '{}' (accepted: tuned)", attrs.get_string("algorithm")));
}

TensorType infer_matmul(Op op, const std::vector<const TensorType*>& in) {
  const TensorType& a = *in[0];
  const TensorType& b = *in[1];
  if (a.dtype != b.dtype) fail(op, in, "operands must have the same dtype (cast one with .to())");
  if (a.shape.empty() || b.shape.empty()) fail(op, in, "operands must have at least 1 dim");
  SymShape as = a.shape, bs = b.shape;
  bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), Dim::constant(1));
  if (b_vec) bs.push_back(Dim::constant(1));
  const Dim& ka = as[as.size() - 1];
  const Dim& kb = bs[bs.size() - 2];
  if (!dims_match(ka, kb))
    fail(op, in,
         fmt::format("contraction sizes differ ({} vs {})", ka.to_string(), kb.to_string()));
  SymShape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  SymShape out = broadcast_shapes({&a_batch, &b_batch}, op_name(op));
  if (!a_vec) out.push_back(as[as.size() - 2]);
  if (!b_vec) out.push_back(bs[bs.size() - 1]);
  return {a.dtype, out};
}

TensorType infer_concat(Op op, const Attrs& attrs, const std::vector<const TensorType*>& in) {
  const TensorType& first = *in[0];
  int64_t rank = static_cast<int64_t>(first.shape.size());
  bool stacking = op_info(op).rule == OpRule::Stack;
  int64_t dim = normalize_dim(attrs.get_int("dim"), stacking ? rank + 1 : rank, op_name(op));
  DType dtype = first.dtype;
  SymShape out = first.shape;
  for (size_t i = 1; i < in.size(); ++i) {
    const TensorType& t = *in[i];
    dtype = promote_types(dtype, t.dtype);
    if (static_cast<int64_t>(t.shape.size()) != rank)
      fail(op, in, fmt::format("input {} has {} dims, input 0 has {}", i, t.shape.size(), rank));
    for (int64_t d = 0; d < rank; ++d) {
      if (!stacking && d == dim) continue;
      if (!dims_match(t.shape[d], first.shape[d]))
        fail(op, in, fmt::format("input {} differs from input 0 in dim {}", i, d));
    }
    if (!stacking) {
      const Dim& x = out[dim];
      const Dim& y = t.shape[dim];
      int64_t total = 0;
      if (__builtin_add_overflow(x.coeff, y.coeff, &total)) fail(op, in, "sizes overflow");
      if (x.is_const() && y.is_const()) {
        out[dim] = Dim::constant(total);
      } else if (x.sym == y.sym || x.coeff == 0 || y.coeff == 0) {
        out[dim] = Dim{total, x.is_const() ? y.sym : x.sym};
      } else {
        fail(op, in, "cannot concatenate a dynamic dim with another size");
      }
    }
  }
  if (stacking) out.insert(out.begin() + dim, Dim::constant(static_cast<int64_t>(in.size())));
  shape_monomial(out, "cat");
  return {dtype, out};
}

}  // namespace

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  int ca = category(a), cb = category(b);
  if (ca != cb) return ca > cb ? a : b;
  if (ca == 1) return DType::i64;
  // Two different floating types.
  if (a == DType::f64 || b == DType::f64) return DType::f64;
  return DType::f32;
}

DType promote_with_scalar(DType tensor, Scalar::Kind scalar) {
  if (scalar == Scalar::Kind::floating && !is_floating(tensor)) return DType::f32;
  if (scalar == Scalar::Kind::integer && tensor == DType::bool_) return DType::i64;
  return tensor;
}

DType binary_compute_dtype(Op op, const Attrs& attrs, const std::vector<DType>& in) {
  OpRule rule = op_info(op).rule;
  if (rule == OpRule::Logical) return DType::bool_;
  DType dtype;
  if (auto scalar = attrs.find_scalar("scalar")) {
    dtype = promote_with_scalar(in.at(0), scalar->kind());
  } else {
    dtype = promote_types(in.at(0), in.at(1));
  }
  if (rule == OpRule::BinaryFloat && !is_floating(dtype)) dtype = DType::f32;
  return dtype;
}

int64_t normalize_dim(int64_t dim, int64_t rank, std::string_view op) {
  int64_t lo = rank == 0 ? -1 : -rank, hi = rank == 0 ? 0 : rank - 1;
  if (dim < lo || dim > hi)
    throw ShapeError(
        fmt::format("{}: dim {} is out of range for a tensor of {} dims "
                    "(expected {}..{})",
                    op, dim, rank, lo, hi));
  return dim < 0 ? dim + std::max<int64_t>(rank, 1) : dim;
}

std::vector<int64_t> reduction_dims(const std::vector<int64_t>& dims, int64_t rank,
                                    std::string_view op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t i = 0; i < rank; ++i) out.push_back(i);
    return out;
  }
  for (int64_t d : dims) {
    int64_t n = normalize_dim(d, rank, op);
    if (rank == 0) continue;
    if (std::find(out.begin(), out.end(), n) != out.end())
      throw ShapeError(fmt::format("{}: dim {} appears twice in the reduction dims", op, n));
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

SymShape broadcast_shapes(const std::vector<const SymShape*>& shapes, std::string_view op) {
  size_t rank = 0;
  for (const SymShape* s : shapes) rank = std::max(rank, s->size());
  SymShape out(rank, Dim::constant(1));
  for (const SymShape* s : shapes) {
    size_t shift = rank - s->size();
    for (size_t i = 0; i < s->size(); ++i) {
      Dim& o = out[shift + i];
      const Dim& d = (*s)[i];
      if (d.is_one() || o == d) continue;
      if (o.is_one()) {
        o = d;
        continue;
      }
      std::string all;
      for (size_t k = 0; k < shapes.size(); ++k)
        all += (k ? " and " : "") + shape_string(*shapes[k]);
      throw ShapeError(fmt::format("{}: cannot broadcast shapes {} (dim {}: {} vs {})", op, all,
                                   shift + i, o.to_string(), d.to_string()));
    }
  }
  return out;
}

namespace {
TensorType infer_unchecked(Op op, const Attrs& attrs, const std::vector<const TensorType*>& in);
}

TensorType infer_type(Op op, const Attrs& attrs, const std::vector<const TensorType*>& in) {
  TensorType type = infer_unchecked(op, attrs, in);
  shape_monomial(type.shape, op_name(op).data());
  check_shape_limits(type.shape, op_name(op));
  return type;
}

namespace {
TensorType infer_unchecked(Op op, const Attrs& attrs, const std::vector<const TensorType*>& in) {
  const OpInfo& info = op_info(op);
  int n = static_cast<int>(in.size());
  bool scalar_operand = is_binary(info.rule) && attrs.has("scalar");
  int want_min = scalar_operand ? 1 : (is_binary(info.rule) ? 2 : info.min_inputs);
  int want_max = scalar_operand ? 1 : info.max_inputs;
  if (n < want_min || (want_max >= 0 && n > want_max)) {
    fail(op, in,
         want_min == want_max
             ? fmt::format("takes {} tensor inputs, got {}", want_min, n)
             : fmt::format("takes {} to {} tensor inputs, got {}", want_min,
                           want_max < 0 ? std::string("any") : std::to_string(want_max), n));
  }
  const TensorType& x = *in[0];
  int64_t rank = static_cast<int64_t>(x.shape.size());
  auto require_floating = [&](const char* why) {
    if (!is_floating(x.dtype))
      fail(op, in, fmt::format("needs a floating input ({}); cast with .to(f32)", why));
  };
  switch (info.rule) {
    case OpRule::UnarySame:
      if (x.dtype == DType::bool_ && op != Op::abs && op != Op::relu)
        fail(op, in, "is not defined on bool tensors");
      return x;
    case OpRule::UnaryFloat:
      if (op == Op::gelu) {
        const std::string& a =
            attrs.has("approximate") ? attrs.get_string("approximate") : std::string("none");
        if (a != "none" && a != "tanh")
          fail(op, in, fmt::format("approximate must be \"none\" or \"tanh\", got \"{}\"", a));
      }
      return {is_floating(x.dtype) ? x.dtype : DType::f32, x.shape};
    case OpRule::UnaryPredicate:
      return {DType::bool_, x.shape};
    case OpRule::BinaryArith:
    case OpRule::BinaryFloat:
    case OpRule::Compare:
    case OpRule::Logical: {
      std::vector<DType> dtypes;
      for (auto* t : in) dtypes.push_back(t->dtype);
      DType compute = binary_compute_dtype(op, attrs, dtypes);
      if (compute == DType::bool_ && op == Op::sub) fail(op, in, "is not defined on bool tensors");
      std::vector<const SymShape*> shapes;
      for (auto* t : in) shapes.push_back(&t->shape);
      SymShape shape = broadcast_shapes(shapes, op_name(op));
      bool predicate = info.rule == OpRule::Compare || info.rule == OpRule::Logical;
      return {predicate ? DType::bool_ : compute, shape};
    }
    case OpRule::Where: {
      if (x.dtype != DType::bool_) fail(op, in, "condition must be a bool tensor");
      SymShape shape = broadcast_shapes({&in[0]->shape, &in[1]->shape, &in[2]->shape}, "where");
      return {promote_types(in[1]->dtype, in[2]->dtype), shape};
    }
    case OpRule::Clamp: {
      auto lo = attrs.find_scalar("min"), hi = attrs.find_scalar("max");
      if (!lo && !hi) fail(op, in, "needs at least one of min and max");
      DType dtype = x.dtype;
      if (lo) dtype = promote_with_scalar(dtype, lo->kind());
      if (hi) dtype = promote_with_scalar(dtype, hi->kind());
      return {dtype, x.shape};
    }
    case OpRule::Cast:
      return {attrs.get_dtype("dtype"), x.shape};
    case OpRule::ReduceAccumulate:
    case OpRule::ReduceSame:
    case OpRule::ReduceFloat: {
      auto dims = reduction_dims(attrs.get_ints("dims"), rank, op_name(op));
      SymShape shape = reduce_shape(x.shape, dims, attrs.get_bool("keepdim", false));
      DType dtype = x.dtype;
      if (info.rule == OpRule::ReduceAccumulate && !is_floating(dtype)) dtype = DType::i64;
      if (info.rule == OpRule::ReduceFloat && !is_floating(dtype)) {
        if (op != Op::logsumexp) require_floating("a mean of integers is ambiguous");
        dtype = DType::f32;
      }
      if ((op == Op::var || op == Op::std) && !attrs.has("correction"))
        fail(op, in, "needs a correction attribute");
      // max/min of nothing has no value (PyTorch raises too); sums and means do.
      if (info.rule == OpRule::ReduceSame)
        for (int64_t d : dims)
          if (x.shape[static_cast<size_t>(d)] == Dim::constant(0))
            fail(op, in, fmt::format("cannot reduce over dim {} of size 0", d));
      return {dtype, shape};
    }
    case OpRule::ReduceIndex: {
      std::vector<int64_t> dims;
      if (attrs.has("dim"))
        dims = {normalize_dim(attrs.get_int("dim"), rank, op_name(op))};
      else
        dims = reduction_dims({}, rank, op_name(op));
      if (rank == 0) dims.clear();
      return {DType::i64, reduce_shape(x.shape, dims, attrs.get_bool("keepdim", false))};
    }
    case OpRule::Softmax:
      require_floating("softmax of integers");
      normalize_dim(attrs.get_int("dim"), rank, op_name(op));
      return x;
    case OpRule::LayerNorm: {
      require_floating("normalization of integers");
      auto ns = attrs.get_ints("normalized_shape");
      int64_t k = static_cast<int64_t>(ns.size());
      if (k == 0 || k > rank) fail(op, in, "normalized_shape must name 1..rank trailing dims");
      for (int64_t i = 0; i < k; ++i)
        if (!(x.shape[rank - k + i] == Dim::constant(ns[i])))
          fail(op, in,
               fmt::format("trailing dims must equal normalized_shape {}", shape_string(ns)));
      for (int i = 1; i < n; ++i)
        if (!(in[i]->shape == const_shape(ns)))
          fail(op, in,
               fmt::format("{} must have shape {}", i == 1 ? "weight" : "bias", shape_string(ns)));
      attrs.get_double("eps");
      return x;
    }
    case OpRule::Matmul:
      check_epilogue(op, attrs, in);
      return infer_matmul(op, in);
    case OpRule::Bmm:
      check_epilogue(op, attrs, in);
      if (x.shape.size() != 3 || in[1]->shape.size() != 3) fail(op, in, "needs two 3-D tensors");
      if (!(x.shape[0] == in[1]->shape[0])) fail(op, in, "batch sizes differ");
      return infer_matmul(op, in);
    case OpRule::Linear: {
      check_epilogue(op, attrs, in);
      const TensorType& w = *in[1];
      if (w.shape.size() != 2) fail(op, in, "weight must be 2-D [out_features, in_features]");
      if (rank < 1 || !(x.shape.back() == w.shape[1]))
        fail(op, in, "input's last dim must equal weight's in_features (dim 1)");
      if (x.dtype != w.dtype) fail(op, in, "input and weight must have the same dtype");
      if (n == 3 && !(in[2]->shape == SymShape{w.shape[0]}))
        fail(op, in, "bias must have shape [out_features]");
      SymShape shape(x.shape.begin(), x.shape.end() - 1);
      shape.push_back(w.shape[0]);
      return {x.dtype, shape};
    }
    case OpRule::Attention: {
      // q [..., T, D], k [..., S, D], v [..., S, Dv] with the same batch dims -> [..., T, Dv].
      const TensorType &k = *in[1], &v = *in[2];
      require_floating("attention of integers");
      if (rank < 2 || k.shape.size() != x.shape.size() || v.shape.size() != x.shape.size())
        fail(op, in, "q, k and v must have the same rank, at least 2");
      if (k.dtype != x.dtype || v.dtype != x.dtype)
        fail(op, in, "q, k and v must have the same dtype");
      for (int64_t d = 0; d + 2 < rank; ++d)
        if (!(k.shape[d] == x.shape[d]) || !(v.shape[d] == x.shape[d]))
          fail(op, in, "batch dims differ");
      if (!(k.shape.back() == x.shape.back())) fail(op, in, "q and k must have the same last dim");
      if (!(v.shape[rank - 2] == k.shape[rank - 2])) fail(op, in, "k and v must have as many rows");
      attrs.get_double("scale");
      SymShape shape = x.shape;
      shape.back() = v.shape.back();
      return {x.dtype, shape};
    }
    case OpRule::Cat:
    case OpRule::Stack:
      return infer_concat(op, attrs, in);
    case OpRule::IndexSelect: {
      const TensorType& idx = *in[1];
      if (!is_integral(idx.dtype)) fail(op, in, "index must be i32 or i64");
      if (idx.shape.size() > 1) fail(op, in, "index must be 1-D");
      int64_t dim = normalize_dim(attrs.get_int("dim"), rank, op_name(op));
      SymShape shape = x.shape;
      if (rank > 0) shape[dim] = idx.shape.empty() ? Dim::constant(1) : idx.shape[0];
      return {x.dtype, shape};
    }
    case OpRule::Gather: {
      const TensorType& idx = *in[1];
      if (!is_integral(idx.dtype)) fail(op, in, "index must be i32 or i64");
      if (idx.shape.size() != x.shape.size()) fail(op, in, "index must have as many dims as input");
      normalize_dim(attrs.get_int("dim"), rank, op_name(op));
      return {x.dtype, idx.shape};
    }
    case OpRule::IndexPut: {
      const TensorType& values = *in[1];
      if (values.dtype != x.dtype)
        fail(op, in,
             fmt::format("values are {} but self is {}; cast them with .to()",
                         dtype_name(values.dtype), dtype_name(x.dtype)));
      std::vector<const SymShape*> index_shapes;
      for (size_t i = 2; i < in.size(); ++i) {
        if (in[i]->dtype == DType::bool_)
          fail(op, in, "boolean mask indices are not supported; use masked_fill or where");
        if (!is_integral(in[i]->dtype)) fail(op, in, "indices must be i32 or i64");
        index_shapes.push_back(&in[i]->shape);
      }
      int64_t k = static_cast<int64_t>(index_shapes.size());
      if (k > rank) fail(op, in, fmt::format("{} index tensors for {} dims", k, rank));
      SymShape picked = broadcast_shapes(index_shapes, op_name(op));
      picked.insert(picked.end(), x.shape.begin() + k, x.shape.end());
      SymShape both = broadcast_shapes({&picked, &values.shape}, op_name(op));
      if (!(both == picked))
        fail(op, in,
             fmt::format("values of shape {} do not broadcast to the indexed shape {}",
                         shape_string(values.shape), shape_string(picked)));
      return x;
    }
    case OpRule::Embedding: {
      const TensorType& w = *in[1];
      if (!is_integral(x.dtype)) fail(op, in, "indices must be i32 or i64");
      if (w.shape.size() != 2) fail(op, in, "weight must be 2-D [num_embeddings, dim]");
      SymShape shape = x.shape;
      shape.push_back(w.shape[1]);
      return {w.dtype, shape};
    }
    case OpRule::AdaptiveAvgPool2d: {
      require_floating("average of integers");
      auto size = attrs.get_ints("output_size");
      if (rank != 3 && rank != 4) fail(op, in, "input must be 3-D or 4-D");
      if (size.size() != 2 || size[0] <= 0 || size[1] <= 0)
        fail(op, in, "output_size must be two positive sizes");
      SymShape shape(x.shape.begin(), x.shape.end() - 2);
      shape.push_back(Dim::constant(size[0]));
      shape.push_back(Dim::constant(size[1]));
      return {x.dtype, shape};
    }
    case OpRule::Im2col:
    case OpRule::Col2im:
      return window_type(op, in, attrs);
    case OpRule::Arange: {
      if (rank != 0) fail(op, in, "start must be a 0-d tensor");
      const SymShape& shape = attrs.get_dims("shape");
      if (shape.size() != 1) fail(op, in, "shape must be [n]");
      if (!std::isfinite(attrs.get_double("step"))) fail(op, in, "step must be finite");
      return {x.dtype, shape};
    }
    case OpRule::Random: {
      if (x.dtype != DType::i64 || x.shape != const_shape({2}))
        fail(op, in, "the generator state must be i64[2] (seed, offset)");
      DType dtype = attrs.has("dtype") ? attrs.get_dtype("dtype") : DType::f32;
      if (!is_floating(dtype)) fail(op, in, "dtype must be floating");
      if (attrs.get_int("draw") < 0) fail(op, in, "draw must not be negative");
      return {dtype, attrs.get_dims("shape")};
    }
    case OpRule::Reshape: {
      const SymShape& target = attrs.get_dims("shape");
      for (const Dim& d : target)
        if (d.coeff < 0) fail(op, in, fmt::format("bad target shape {}", shape_string(target)));
      if (!(shape_monomial(target, "reshape") == shape_monomial(x.shape, "reshape")))
        fail(op, in,
             fmt::format("cannot reshape to {}: element counts differ", shape_string(target)));
      return {x.dtype, target};
    }
    case OpRule::Permute: {
      auto dims = attrs.get_ints("dims");
      if (static_cast<int64_t>(dims.size()) != rank)
        fail(op, in, fmt::format("dims {} must list all {} dims", shape_string(dims), rank));
      std::vector<bool> seen(rank, false);
      SymShape shape;
      for (int64_t d : dims) {
        int64_t nd = normalize_dim(d, rank, op_name(op));
        if (seen[nd]) fail(op, in, fmt::format("dims {} repeat dim {}", shape_string(dims), nd));
        seen[nd] = true;
        shape.push_back(x.shape[nd]);
      }
      return {x.dtype, shape};
    }
    case OpRule::Slice: {
      int64_t dim = normalize_dim(attrs.get_int("dim"), rank, op_name(op));
      const Dim start = attrs.get_dim("start"), end = attrs.get_dim("end");
      int64_t step = attrs.get_int("step", 1);
      const Dim& size = x.shape[dim];
      if (step <= 0) fail(op, in, "step must be positive");
      SymShape shape = x.shape;
      shape[dim] = slice_length(size, start, end, step, [&](const std::string& why) {
        fail(op, in,
             fmt::format("range [{}, {}) of dim {} (size {}): {}", start.to_string(),
                         end.to_string(), dim, size.to_string(), why));
      });
      return {x.dtype, shape};
    }
    case OpRule::Expand: {
      const SymShape& target = attrs.get_dims("shape");
      if (target.size() < x.shape.size())
        fail(op, in, fmt::format("cannot expand to fewer dims {}", shape_string(target)));
      size_t shift = target.size() - x.shape.size();
      for (size_t i = 0; i < x.shape.size(); ++i)
        if (!(x.shape[i] == target[shift + i]) && !x.shape[i].is_one())
          fail(op, in,
               fmt::format("cannot expand dim {} of size {} to {}", i, x.shape[i].to_string(),
                           target[shift + i].to_string()));
      return {x.dtype, target};
    }
  }
  fail(op, in, "has no type rule");
}
}  // namespace

}  // namespace kiln
