// The derivative of every differentiable op, in src/graph/ops.def's order: one entry per op,
// `DERIVATIVE(op, saves) { ... return {grad of input 0, grad of input 1, ...}; }`, where `g`
// is the gradient of the op's output and `x(i)` / `out()` the saved input i and output. The
// formulas are PyTorch's (tools/autograd/derivatives.yaml), ties and edge cases included:
// maximum/minimum split a tie's gradient, amax/amin spread it over all maxima, prod handles
// zeros, pow's exponent gradient is 0 where the base is 0.
#include "autograd/derivatives.h"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <numbers>

#include "eager/window_ops.h"
#include "graph/infer.h"
#include "kiln/error.h"
#include "kiln/ops.h"

namespace kiln {

const Tensor& GradContext::input(size_t i) const {
  if (node_.released) throw_released(node_);
  const Tensor& t = node_.inputs.at(i).value;
  if (!t.defined()) throw Error(fmt::format("{}: input {} was not saved", node_.name(), i));
  return t;
}

const Tensor& GradContext::output() const {
  if (node_.released) throw_released(node_);
  if (!node_.output.value.defined())
    throw Error(fmt::format("{}: its output was not saved", node_.name()));
  return node_.output.value;
}

Tensor copy_derivative(const InputMeta& input, const Tensor& grad) { return grad.to(input.device); }

namespace {

using Grads = std::vector<Tensor>;

// A float mask of `condition` in g's dtype.
Tensor as_mask(const Tensor& condition, const Tensor& g) { return condition.to(g.dtype()); }

// The dims a reduction reduced (normalized, all of them for an empty list).
std::vector<int64_t> reduced_dims(const GradContext& c) {
  int64_t rank = static_cast<int64_t>(c.meta(0).sizes.size());
  std::vector<int64_t> dims = c.attrs().get_ints("dims");
  if (dims.empty())
    for (int64_t d = 0; d < rank; ++d) dims.push_back(d);
  for (int64_t& d : dims) d = normalize_dim(d, rank, "backward");
  return dims;
}

// A reduction's result (or its gradient) put back in the input's rank: reduced dims of size 1.
Tensor keep_dims(const Tensor& t, const GradContext& c, const std::vector<int64_t>& dims) {
  if (c.attrs().get_bool("keepdim", false)) return t;
  Shape shape = c.meta(0).sizes;
  for (int64_t d : dims) shape[static_cast<size_t>(d)] = 1;
  return t.reshape(shape);
}

// The gradient of a reduction, spread back over the input.
Tensor unreduce(const Tensor& g, const GradContext& c, const std::vector<int64_t>& dims) {
  return keep_dims(g, c, dims).expand(c.meta(0).sizes);
}

int64_t reduced_count(const GradContext& c, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= c.meta(0).sizes[static_cast<size_t>(d)];
  return n;
}

// trunc(z) from the ops kiln has.
Tensor trunc_of(const Tensor& z) { return where(z >= 0.0, floor(z), ceil(z)); }

// For a binary op, its operands: (x, y) with a Scalar operand as a 0-d tensor in place.
std::pair<Tensor, Tensor> operands(const GradContext& c) {
  if (auto s = c.attrs().find_scalar("scalar")) {
    Tensor scalar = scalar_tensor(*s, DType::f64, c.input(0).device()).to(c.input(0).dtype());
    if (c.attrs().get_bool("scalar_first", false)) return {scalar, c.input(0)};
    return {c.input(0), scalar};
  }
  return {c.input(0), c.input(1)};
}

// Gradients of a binary op given per operand; with a Scalar operand only the tensor's.
Grads binary_grads(const GradContext& c, Tensor dx, Tensor dy) {
  if (!c.attrs().find_scalar("scalar")) return {dx, dy};
  return {c.attrs().get_bool("scalar_first", false) ? dy : dx};
}

// [.., T, D] matrices' transpose.
Tensor mT(const Tensor& t) { return t.transpose(-1, -2); }

// Gradient of `base` (input 0, of c) everywhere zero except where the view `picked` of it
// along `dim` at `index` (1-D positions) read: g scattered back.
Tensor scatter_along(const GradContext& c, int64_t dim, const Tensor& index, const Tensor& g,
                     bool accumulate) {
  Tensor zero = zeros(c.meta(0).sizes, g.dtype()).to(g.device());
  if (dim == 0) return index_put(zero, {index}, g, accumulate);
  Tensor moved = index_put(zero.transpose(0, dim), {index}, g.transpose(0, dim), accumulate);
  return moved.transpose(0, dim);
}

struct Entry {
  Op op;
  Derivative d;
};

#define DERIVATIVE(name, saves_what)                             \
  Grads d_##name(const GradContext& c, const Tensor& g);         \
  const Entry e_##name{Op::name, {d_##name, Saves::saves_what}}; \
  Grads d_##name([[maybe_unused]] const GradContext& c, [[maybe_unused]] const Tensor& g)

// Unary.
DERIVATIVE(neg, nothing) { return {-g}; }
DERIVATIVE(abs, inputs) { return {g * sign(c.input(0))}; }
DERIVATIVE(relu, output) { return {g * as_mask(c.output() > 0.0, g)}; }
DERIVATIVE(floor, nothing) { return {zeros_like(g)}; }
DERIVATIVE(ceil, nothing) { return {zeros_like(g)}; }
DERIVATIVE(round, nothing) { return {zeros_like(g)}; }
DERIVATIVE(sign, nothing) { return {zeros_like(g)}; }
DERIVATIVE(exp, output) { return {g * c.output()}; }
DERIVATIVE(log, inputs) { return {g / c.input(0)}; }
DERIVATIVE(log1p, inputs) { return {g / (c.input(0) + 1.0)}; }
DERIVATIVE(sqrt, output) { return {g / (c.output() * 2.0)}; }
DERIVATIVE(rsqrt, output) {
  const Tensor& y = c.output();
  return {g * y * y * y * -0.5};
}
DERIVATIVE(sin, inputs) { return {g * cos(c.input(0))}; }
DERIVATIVE(cos, inputs) { return {-g * sin(c.input(0))}; }
DERIVATIVE(tan, output) { return {g * (c.output() * c.output() + 1.0)}; }
DERIVATIVE(tanh, output) { return {g * (1.0 - c.output() * c.output())}; }
DERIVATIVE(sigmoid, output) { return {g * c.output() * (1.0 - c.output())}; }
DERIVATIVE(gelu, inputs) {
  const Tensor& x = c.input(0);
  bool tanh_form = c.attrs().has("approximate") && c.attrs().get_string("approximate") == "tanh";
  if (!tanh_form) {
    Tensor cdf = (erf(x * std::numbers::sqrt2 / 2) + 1.0) * 0.5;
    Tensor pdf = exp(x * x * -0.5) * (1 / std::sqrt(2 * std::numbers::pi));
    return {g * (cdf + x * pdf)};
  }
  const double k = std::sqrt(2 / std::numbers::pi), a = 0.044715;
  Tensor t = tanh((x + x * x * x * a) * k);
  Tensor inner = (x * x * (3 * a) + 1.0) * k;
  return {g * ((t + 1.0) * 0.5 + x * (1.0 - t * t) * inner * 0.5)};
}
DERIVATIVE(erf, inputs) {
  const Tensor& x = c.input(0);
  return {g * exp(-(x * x)) * (2 / std::sqrt(std::numbers::pi))};
}
DERIVATIVE(reciprocal, output) { return {-g * c.output() * c.output()}; }

// Binary (either operand may be a Scalar attribute).
DERIVATIVE(add, nothing) { return binary_grads(c, g, g); }
DERIVATIVE(sub, nothing) { return binary_grads(c, g, -g); }
DERIVATIVE(mul, inputs_unless_scalar) {
  if (auto s = c.attrs().find_scalar("scalar")) return {g * *s};
  return {g * c.input(1), g * c.input(0)};
}
DERIVATIVE(maximum, inputs) {
  auto [x, y] = operands(c);
  Tensor share = as_mask(x > y, g) + as_mask(x == y, g) * 0.5;  // a tie splits the gradient
  return binary_grads(c, g * share, g * (1.0 - share));
}
DERIVATIVE(minimum, inputs) {
  auto [x, y] = operands(c);
  Tensor share = as_mask(x < y, g) + as_mask(x == y, g) * 0.5;
  return binary_grads(c, g * share, g * (1.0 - share));
}
DERIVATIVE(fmod, inputs) {
  auto [x, y] = operands(c);
  return binary_grads(c, g, -g * trunc_of(x / y));
}
DERIVATIVE(remainder, inputs) {
  auto [x, y] = operands(c);
  return binary_grads(c, g, -g * floor(x / y));
}
DERIVATIVE(pow, inputs_and_output) {
  auto [x, y] = operands(c);
  // d/dx: y * x^(y-1), 0 where y == 0; d/dy: x^y * log(x), 0 where x == 0 and y >= 0.
  Tensor dx = where(y == 0.0, zeros_like(g), g * y * pow(x, y - 1.0));
  Tensor dy = where(logical_and(x == 0.0, y >= 0.0), zeros_like(g), g * c.output() * log(x));
  return binary_grads(c, dx, dy);
}
DERIVATIVE(div, inputs_and_output) {
  auto [x, y] = operands(c);
  return binary_grads(c, g / y, -g * c.output() / y);
}
DERIVATIVE(atan2, inputs) {
  auto [a, b] = operands(c);
  Tensor r = a * a + b * b;
  return binary_grads(c, g * b / r, -g * a / r);
}

DERIVATIVE(where, inputs) {
  const Tensor& cond = c.input(0);
  Tensor zero = zeros_like(g);
  return {Tensor(), where(cond, g, zero), where(cond, zero, g)};
}
DERIVATIVE(clamp, inputs) {
  const Tensor& x = c.input(0);
  Tensor keep = ones_like(x).to(DType::bool_);
  if (auto lo = c.attrs().find_scalar("min")) keep = logical_and(keep, x >= *lo);
  if (auto hi = c.attrs().find_scalar("max")) keep = logical_and(keep, x <= *hi);
  return {g * as_mask(keep, g)};
}
DERIVATIVE(to, nothing) { return {g.to(c.meta(0).dtype)}; }

// Reductions.
DERIVATIVE(sum, nothing) { return {unreduce(g, c, reduced_dims(c))}; }
DERIVATIVE(prod, inputs_and_output) {
  // prod over one dim: out / x, and where x is 0, the product of the others (0 with two).
  const Tensor& x = c.input(0);
  std::vector<int64_t> dims = reduced_dims(c);
  Tensor is_zero = x == 0.0;
  Tensor others = keep_dims(where(is_zero, ones_like(x), x).prod(dims[0]), c, dims);
  Tensor zeros_in_row = keep_dims(is_zero.to(DType::i64).sum(dims), c, dims);
  Tensor out = keep_dims(c.output(), c, dims);
  Tensor at_zero = where(zeros_in_row == 1, others, zeros_like(others));
  return {unreduce(g, c, dims) * where(is_zero, at_zero.expand(x.sizes()), out / x)};
}
Grads extreme(const GradContext& c, const Tensor& g) {  // amax, amin: ties share evenly
  std::vector<int64_t> dims = reduced_dims(c);
  Tensor hit = as_mask(c.input(0) == keep_dims(c.output(), c, dims), g);
  Tensor count = hit.sum(dims, true);
  return {unreduce(g, c, dims) * hit / count};
}
DERIVATIVE(amax, inputs_and_output) { return extreme(c, g); }
DERIVATIVE(amin, inputs_and_output) { return extreme(c, g); }
DERIVATIVE(mean, nothing) {
  std::vector<int64_t> dims = reduced_dims(c);
  return {unreduce(g, c, dims) / static_cast<double>(reduced_count(c, dims))};
}
Tensor centered(const GradContext& c, const std::vector<int64_t>& dims) {
  const Tensor& x = c.input(0);
  return x - x.mean(dims, true);
}
double dof(const GradContext& c, const std::vector<int64_t>& dims) {
  return static_cast<double>(reduced_count(c, dims) - c.attrs().get_int("correction", 1));
}
DERIVATIVE(var, inputs) {
  std::vector<int64_t> dims = reduced_dims(c);
  return {unreduce(g, c, dims) * centered(c, dims) * (2 / dof(c, dims))};
}
DERIVATIVE(std, inputs_and_output) {
  std::vector<int64_t> dims = reduced_dims(c);
  return {unreduce(g, c, dims) * centered(c, dims) /
          (keep_dims(c.output(), c, dims) * dof(c, dims))};
}
DERIVATIVE(logsumexp, inputs_and_output) {
  std::vector<int64_t> dims = reduced_dims(c);
  return {unreduce(g, c, dims) * exp(c.input(0) - keep_dims(c.output(), c, dims))};
}

DERIVATIVE(softmax, output) {
  const Tensor& y = c.output();
  int64_t dim = c.attrs().get_int("dim");
  return {y * (g - (g * y).sum({dim}, true))};
}
DERIVATIVE(log_softmax, output) {
  int64_t dim = c.attrs().get_int("dim");
  return {g - exp(c.output()) * g.sum({dim}, true)};
}
DERIVATIVE(layer_norm, inputs) {
  const Tensor& x = c.input(0);
  size_t k = c.attrs().get_ints("normalized_shape").size();
  int64_t rank = x.dim();
  std::vector<int64_t> norm_dims, lead_dims;
  for (int64_t d = 0; d < rank; ++d)
    (d >= rank - static_cast<int64_t>(k) ? norm_dims : lead_dims).push_back(d);
  Tensor mu = x.mean(norm_dims, true);
  Tensor xc = x - mu;
  Tensor rstd = rsqrt((xc * xc).mean(norm_dims, true) + c.attrs().get_double("eps"));
  Tensor xhat = xc * rstd;
  bool affine = c.num_inputs() > 1;
  Tensor gxhat = affine ? g * c.input(1) : g;
  Tensor gx =
      rstd * (gxhat - gxhat.mean(norm_dims, true) - xhat * (gxhat * xhat).mean(norm_dims, true));
  Grads out{gx};
  if (affine) out.push_back(c.needs(1) ? (g * xhat).sum(lead_dims) : Tensor());
  if (c.num_inputs() > 2) out.push_back(c.needs(2) ? g.sum(lead_dims) : Tensor());
  return out;
}
DERIVATIVE(matmul, inputs) {
  // As 2-D (or batched) products: a vector operand is a 1-row or 1-column matrix; the engine
  // sums broadcast batch dims and reshapes back.
  Tensor a = c.input(0), b = c.input(1), gm = g;
  if (a.dim() == 1 && b.dim() == 1) return {g * b, g * a};  // a dot product
  if (a.dim() == 1) {
    a = a.unsqueeze(0);
    gm = gm.unsqueeze(-2);
  }
  if (b.dim() == 1) {
    b = b.unsqueeze(-1);
    gm = gm.unsqueeze(-1);
  }
  Tensor ga, gb;
  if (c.needs(0)) ga = c.input(0).dim() == 1 ? matmul(gm, mT(b)).squeeze(-2) : matmul(gm, mT(b));
  if (c.needs(1)) gb = c.input(1).dim() == 1 ? matmul(mT(a), gm).squeeze(-1) : matmul(mT(a), gm);
  return {ga, gb};
}
DERIVATIVE(bmm, inputs) {
  return {c.needs(0) ? bmm(g, mT(c.input(1))) : Tensor(),
          c.needs(1) ? bmm(mT(c.input(0)), g) : Tensor()};
}
DERIVATIVE(linear, inputs) {
  const Tensor& x = c.input(0);
  const Tensor& w = c.input(1);
  if (c.attrs().has("epilogue"))
    throw Error("linear with a fused epilogue has no derivative (the fusion runs after tracing)");
  Tensor g2 = g.reshape({-1, g.size(-1)});
  Grads out{c.needs(0) ? matmul(g, w) : Tensor(),
            c.needs(1) ? matmul(mT(g2), x.reshape({-1, x.size(-1)})) : Tensor()};
  if (c.num_inputs() > 2) out.push_back(c.needs(2) ? g2.sum({0}) : Tensor());
  return out;
}
DERIVATIVE(attention, inputs) {
  // Recomputed: s = q k^T scale, p = softmax(s), out = p v.
  const Tensor &q = c.input(0), &k = c.input(1), &v = c.input(2);
  double scale = c.attrs().get_double("scale");
  Tensor p = (matmul(q, mT(k)) * scale).softmax(-1);
  Tensor gp = matmul(g, mT(v));
  Tensor gs = p * (gp - (gp * p).sum({-1}, true)) * scale;
  return {matmul(gs, k), matmul(mT(gs), q), matmul(mT(p), g)};
}

DERIVATIVE(cat, nothing) {
  int64_t rank = static_cast<int64_t>(c.meta(0).sizes.size());
  int64_t dim = normalize_dim(c.attrs().get_int("dim"), rank, "cat");
  Grads out;
  int64_t at = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    int64_t n = c.meta(i).sizes[static_cast<size_t>(dim)];
    out.push_back(c.needs(i) ? g.narrow(dim, at, n) : Tensor());
    at += n;
  }
  return out;
}
DERIVATIVE(stack, nothing) {
  int64_t rank = static_cast<int64_t>(c.meta(0).sizes.size()) + 1;
  int64_t dim = normalize_dim(c.attrs().get_int("dim"), rank, "stack");
  Grads out;
  for (size_t i = 0; i < c.num_inputs(); ++i)
    out.push_back(c.needs(i) ? g.narrow(dim, static_cast<int64_t>(i), 1).squeeze(dim) : Tensor());
  return out;
}
DERIVATIVE(index_select, inputs) {
  int64_t rank = static_cast<int64_t>(c.meta(0).sizes.size());
  int64_t dim = rank == 0 ? 0 : normalize_dim(c.attrs().get_int("dim"), rank, "index_select");
  const Tensor& index = c.input(1);
  if (rank == 0) return {g.reshape(Shape{}), Tensor()};
  return {scatter_along(c, dim, index.reshape({-1}), g, true), Tensor()};
}
DERIVATIVE(gather, inputs) {
  // Every position of the index grid, with `index` along dim: index_put adds g there.
  const Tensor& index = c.input(1);
  int64_t rank = index.dim();
  int64_t dim = normalize_dim(c.attrs().get_int("dim"), rank, "gather");
  const Shape& input_sizes = c.meta(0).sizes;
  bool one_pick = index.sizes()[static_cast<size_t>(dim)] == 1;
  for (int64_t d = 0; d < rank; ++d)
    one_pick = one_pick && (d == dim || index.sizes()[static_cast<size_t>(d)] ==
                                            input_sizes[static_cast<size_t>(d)]);
  if (one_pick) {
    // One element picked per line (cross_entropy's target): g where the position along dim
    // is the index, a pointwise mask that fuses, where index_put would be an eager step.
    Shape iota_shape(static_cast<size_t>(rank), 1);
    iota_shape[static_cast<size_t>(dim)] = input_sizes[static_cast<size_t>(dim)];
    Tensor iota =
        arange(input_sizes[static_cast<size_t>(dim)]).reshape(iota_shape).to(index.device());
    return {g * as_mask(iota == index, g), Tensor()};
  }
  std::vector<Tensor> positions;
  for (int64_t d = 0; d < rank; ++d) {
    if (d == dim) {
      positions.push_back(index);
      continue;
    }
    Shape shape(static_cast<size_t>(rank), 1);
    shape[static_cast<size_t>(d)] = index.sizes()[static_cast<size_t>(d)];
    positions.push_back(
        arange(index.sizes()[static_cast<size_t>(d)]).reshape(shape).to(index.device()));
  }
  Tensor zero = zeros(c.meta(0).sizes, g.dtype()).to(g.device());
  return {index_put(zero, positions, g, true), Tensor()};
}
DERIVATIVE(embedding, inputs) {
  const Tensor& indices = c.input(0);
  Tensor zero = zeros(c.meta(1).sizes, g.dtype()).to(g.device());
  return {Tensor(), index_put(zero, {indices}, g, true)};
}
DERIVATIVE(index_put, inputs) {
  // self: g, with the written positions zeroed unless accumulating; values: g at them.
  std::vector<Tensor> indices(c.num_inputs() - 2);
  for (size_t i = 2; i < c.num_inputs(); ++i) indices[i - 2] = c.input(i);
  bool accumulate = c.attrs().get_int("accumulate", 0) != 0;
  Tensor g_self = accumulate ? g : index_put(g, indices, zeros({}, g.dtype()).to(g.device()));
  // g at the indexed positions: the first k dims flattened into one linear index.
  const Shape& sizes = c.meta(0).sizes;
  Tensor linear;
  int64_t stride = 1;
  for (size_t d = indices.size(); d-- > 0;) {
    Tensor i = indices[d].to(DType::i64);
    i = where(i < 0, i + sizes[d], i);
    linear = linear.defined() ? linear + i * stride : i * stride;
    stride *= sizes[d];
  }
  Shape rest(sizes.begin() + static_cast<std::ptrdiff_t>(indices.size()), sizes.end());
  Shape flat{stride};
  flat.insert(flat.end(), rest.begin(), rest.end());
  Shape index_shape = linear.sizes();
  Shape out_shape = index_shape;
  out_shape.insert(out_shape.end(), rest.begin(), rest.end());
  Tensor g_values = index_select(g.reshape(flat), 0, linear.reshape({-1})).reshape(out_shape);
  return {g_self, g_values};
}
DERIVATIVE(adaptive_avg_pool2d, nothing) {
  // out = A x B^T per plane, A [OH, H] and B [OW, W] the windows' averaging weights: the
  // gradient is A^T g B.
  const Shape& sizes = c.meta(0).sizes;
  int64_t h = sizes[sizes.size() - 2], w = sizes[sizes.size() - 1];
  std::vector<int64_t> out = c.attrs().get_ints("output_size");
  auto weights = [](int64_t n_out, int64_t n_in) {
    std::vector<double> m(static_cast<size_t>(n_out * n_in), 0.0);
    for (int64_t i = 0; i < n_out; ++i) {
      int64_t lo = i * n_in / n_out, hi = ((i + 1) * n_in + n_out - 1) / n_out;
      for (int64_t j = lo; j < hi; ++j)
        m[static_cast<size_t>(i * n_in + j)] = 1.0 / static_cast<double>(hi - lo);
    }
    return from_vector(m, {n_out, n_in}, DType::f64);
  };
  Tensor a = weights(out[0], h).to(g.dtype()).to(g.device());
  Tensor b = weights(out[1], w).to(g.dtype()).to(g.device());
  return {matmul(matmul(mT(a), g), b)};
}

// Sliding windows: each is the other's adjoint (the padding reads nothing back).
DERIVATIVE(im2col, nothing) {
  const Shape& sizes = c.meta(0).sizes;
  return {col2im(g, Shape(sizes.begin() + 2, sizes.end()), window_geometry(c.attrs()))};
}
DERIVATIVE(col2im, nothing) { return {im2col(g, window_geometry(c.attrs()))}; }

// Views.
DERIVATIVE(reshape, nothing) { return {g.reshape(c.meta(0).sizes)}; }
DERIVATIVE(permute, nothing) {
  std::vector<int64_t> dims = c.attrs().get_ints("dims");
  int64_t rank = static_cast<int64_t>(dims.size());
  Shape inverse(dims.size());
  for (int64_t i = 0; i < rank; ++i)
    inverse[static_cast<size_t>(normalize_dim(dims[static_cast<size_t>(i)], rank, "permute"))] = i;
  return {g.permute(inverse)};
}
DERIVATIVE(slice, nothing) {
  int64_t rank = static_cast<int64_t>(c.meta(0).sizes.size());
  int64_t dim = normalize_dim(c.attrs().get_int("dim"), rank, "slice");
  int64_t size = c.meta(0).sizes[static_cast<size_t>(dim)];
  int64_t start = c.attrs().get_dim("start").coeff, end = c.attrs().get_dim("end").coeff;
  int64_t step = c.attrs().get_int("step", 1);
  start = std::clamp(start < 0 ? start + size : start, int64_t{0}, size);
  end = std::clamp(end < 0 ? end + size : end, start, size);
  if (step == 1) {
    // g between zeros: a cat, which fuses with its neighbours (the three slices of an
    // attention's in_proj become one kernel), where index_put would be an eager step.
    Shape sizes = c.meta(0).sizes;
    std::vector<Tensor> parts;
    auto zeros_of = [&](int64_t length) {
      sizes[static_cast<size_t>(dim)] = length;
      parts.push_back(zeros(sizes, g.dtype()).to(g.device()));
    };
    if (start > 0) zeros_of(start);
    parts.push_back(g);
    if (end < size) zeros_of(size - end);
    return {parts.size() == 1 ? g : cat(parts, dim)};
  }
  Tensor index = arange(start, end, step).to(g.device());
  return {scatter_along(c, dim, index, g, false)};
}
DERIVATIVE(expand, nothing) { return {g}; }  // the engine sums the broadcast dims

#undef DERIVATIVE

// The table, in ops.def's order.
const std::array kTable = {
    &e_neg,          &e_abs,       &e_relu,        &e_floor,      &e_ceil,
    &e_round,        &e_sign,      &e_exp,         &e_log,        &e_log1p,
    &e_sqrt,         &e_rsqrt,     &e_sin,         &e_cos,        &e_tan,
    &e_tanh,         &e_sigmoid,   &e_gelu,        &e_erf,        &e_reciprocal,
    &e_add,          &e_sub,       &e_mul,         &e_maximum,    &e_minimum,
    &e_fmod,         &e_remainder, &e_pow,         &e_div,        &e_atan2,
    &e_where,        &e_clamp,     &e_to,          &e_sum,        &e_prod,
    &e_amax,         &e_amin,      &e_mean,        &e_var,        &e_std,
    &e_logsumexp,    &e_softmax,   &e_log_softmax, &e_layer_norm, &e_matmul,
    &e_bmm,          &e_linear,    &e_attention,   &e_cat,        &e_stack,
    &e_index_select, &e_gather,    &e_embedding,   &e_index_put,  &e_adaptive_avg_pool2d,
    &e_im2col,       &e_col2im,    &e_reshape,     &e_permute,    &e_slice,
    &e_expand,
};

// Ops whose results carry no gradient: bool results, integer results, random draws, ranges.
constexpr std::array kNone = {
    Op::isnan,  Op::logical_not, Op::eq,          Op::ne,         Op::lt,          Op::le,
    Op::gt,     Op::ge,          Op::logical_and, Op::logical_or, Op::logical_xor, Op::argmax,
    Op::argmin, Op::arange,      Op::rand,        Op::randn,
};

}  // namespace

const Derivative* derivative_of(Op op) {
  static const std::array<const Derivative*, kNumOps> by_op = [] {
    std::array<const Derivative*, kNumOps> out{};
    for (const Entry* e : kTable) out[static_cast<size_t>(e->op)] = &e->d;
    return out;
  }();
  return by_op[static_cast<size_t>(op)];
}

bool non_differentiable(Op op) {
  for (Op o : kNone)
    if (o == op) return true;
  return false;
}

}  // namespace kiln
