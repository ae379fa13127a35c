// Shape ops written with kiln's ops (include/kiln/ops.h), so that their derivatives are those
// ops' and compiled they fuse with their neighbours. pad: a constant pad is a cat with filled
// blocks (a negative pad a narrow), the other modes an index_select of each padded dim along
// positions computed on the host (reflect, replicate, circular); flip and roll: an
// index_select per dim; tril and triu: a where over a mask of two ranges.
#include <fmt/format.h>

#include <algorithm>

#include "kiln/error.h"
#include "kiln/ops.h"
#include "support/text.h"

namespace kiln {

namespace {

// Positions of the padded dim in the input's: reflect mirrors about the ends (not repeating
// them), replicate repeats the end elements, circular wraps around.
std::vector<int64_t> source_positions(const std::string& mode, int64_t n, int64_t left,
                                      int64_t right) {
  std::vector<int64_t> at;
  at.reserve(static_cast<size_t>(n + left + right));
  for (int64_t i = -left; i < n + right; ++i) {
    if (mode == "reflect") {
      at.push_back(i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
    } else if (mode == "replicate") {
      at.push_back(std::clamp<int64_t>(i, 0, n - 1));
    } else {
      at.push_back(((i % n) + n) % n);
    }
  }
  return at;
}

}  // namespace

Tensor pad(const Tensor& x, const Shape& pads, const std::string& mode,
           std::optional<double> value) {
  const std::string context = fmt::format("pad(input {}, pad {}, mode \"{}\")",
                                          shape_string(x.sizes()), shape_string(pads), mode);
  if (mode != "constant" && mode != "reflect" && mode != "replicate" && mode != "circular")
    throw ShapeError(fmt::format(
        "{}: unknown mode (accepted: constant, reflect, replicate, circular)", context));
  if (pads.size() % 2 != 0 || static_cast<int64_t>(pads.size() / 2) > x.dim())
    throw ShapeError(fmt::format(
        "{}: pad must hold a (before, after) pair per padded dim, last dim first, at most one "
        "pair per dim",
        context));
  if (value && mode != "constant")
    throw ShapeError(fmt::format("{}: only the constant mode takes a value", context));
  Tensor y = x;
  for (size_t pair = 0; pair < pads.size() / 2; ++pair) {
    const int64_t d = x.dim() - 1 - static_cast<int64_t>(pair);
    int64_t left = pads[2 * pair], right = pads[2 * pair + 1];
    const int64_t n = y.size(d);
    if (left == 0 && right == 0) continue;
    if (mode == "constant") {
      // Negative pads crop first; what is left must not be negative.
      if (n + std::min<int64_t>(left, 0) + std::min<int64_t>(right, 0) < 0)
        throw ShapeError(fmt::format("{}: dim {} of size {} cannot lose {} elements", context, d, n,
                                     -std::min<int64_t>(left, 0) - std::min<int64_t>(right, 0)));
      const int64_t start = std::max<int64_t>(-left, 0);
      y = y.narrow(d, start, n - start - std::max<int64_t>(-right, 0));
      std::vector<Tensor> parts;
      auto block = [&](int64_t length) {
        std::vector<SymInt> shape = y.sym_sizes();
        shape[static_cast<size_t>(d)] = SymInt(length);
        return full(shape, value.value_or(0.0), y.dtype()).to(y.device());
      };
      if (left > 0) parts.push_back(block(left));
      parts.push_back(y);
      if (right > 0) parts.push_back(block(right));
      y = parts.size() == 1 ? y : cat(parts, d);
      continue;
    }
    if (left < 0 || right < 0)
      throw ShapeError(fmt::format("{}: negative pads are only for the constant mode", context));
    const bool too_long = mode == "reflect"    ? (left >= n || right >= n)
                          : mode == "circular" ? (left > n || right > n)
                                               : n == 0;
    if (too_long)
      throw ShapeError(
          fmt::format("{}: dim {} of size {} is too short for pad ({}, {}) in this "
                      "mode",
                      context, d, n, left, right));
    std::vector<int64_t> at = source_positions(mode, n, left, right);
    const int64_t count = static_cast<int64_t>(at.size());
    y = index_select(y, d, from_vector<int64_t>(at, {count}).to(y.device()));
  }
  return y;
}

namespace {

// Positions along one dim as an index tensor on x's device.
Tensor positions(const std::vector<int64_t>& at, const Tensor& x) {
  return from_vector<int64_t>(at, {static_cast<int64_t>(at.size())}).to(x.device());
}

int64_t checked_dim(const char* op, int64_t dim, const Tensor& x) {
  if (dim < -x.dim() || dim >= std::max<int64_t>(x.dim(), 1))
    throw ShapeError(
        fmt::format("{}: dim {} is out of range for input {}", op, dim, shape_string(x.sizes())));
  return dim < 0 ? dim + x.dim() : dim;
}

}  // namespace

Tensor flip(const Tensor& x, const Shape& dims) {
  Tensor y = x;
  std::vector<bool> seen(static_cast<size_t>(x.dim()), false);
  for (int64_t dim : dims) {
    const int64_t d = checked_dim("flip", dim, x);
    if (seen[static_cast<size_t>(d)])
      throw ShapeError(fmt::format("flip: dim {} appears twice in dims {}", d, shape_string(dims)));
    seen[static_cast<size_t>(d)] = true;
    const int64_t n = x.size(d);
    std::vector<int64_t> at;
    for (int64_t i = n - 1; i >= 0; --i) at.push_back(i);
    y = index_select(y, d, positions(at, y));
  }
  return y;
}

Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims) {
  if (dims.empty()) {
    // As torch.roll: the flattened tensor rolled, in x's shape.
    if (shifts.size() != 1)
      throw ShapeError(
          fmt::format("roll: without dims, shifts {} must be one number", shape_string(shifts)));
    return roll(x.flatten(), shifts, {0}).reshape(x.sym_sizes());
  }
  if (shifts.size() != dims.size())
    throw ShapeError(fmt::format("roll: shifts {} and dims {} must have the same length",
                                 shape_string(shifts), shape_string(dims)));
  Tensor y = x;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = checked_dim("roll", dims[i], x), n = x.size(d);
    if (n == 0) continue;
    const int64_t shift = ((shifts[i] % n) + n) % n;
    std::vector<int64_t> at;
    for (int64_t j = 0; j < n; ++j) at.push_back((j - shift + n) % n);
    y = index_select(y, d, positions(at, y));
  }
  return y;
}

namespace {

// x where col - row <= diagonal (lower) or >= diagonal (upper), zeros elsewhere, over the last
// two dims.
Tensor triangle(const char* op, const Tensor& x, int64_t diagonal, bool lower) {
  if (x.dim() < 2)
    throw ShapeError(
        fmt::format("{}: input {} must have at least 2 dims", op, shape_string(x.sizes())));
  const int64_t m = x.size(-2), n = x.size(-1);
  Tensor rows = arange(m).reshape({m, 1}).to(x.device()), cols = arange(n).to(x.device());
  Tensor offset = cols - rows;
  Tensor keep = lower ? offset <= diagonal : offset >= diagonal;
  return where(keep, x, full({}, 0, x.dtype()).to(x.device()));
}

}  // namespace

Tensor tril(const Tensor& x, int64_t diagonal) { return triangle("tril", x, diagonal, true); }
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle("triu", x, diagonal, false); }

}  // namespace kiln
