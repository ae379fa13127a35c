// pad (include/kiln/ops.h), torch.nn.functional.pad written with kiln's ops: a constant pad
// is a cat with filled blocks (a negative pad a narrow), the other modes an index_select of
// each padded dim along positions computed on the host (reflect, replicate, circular). So
// the derivative is those ops' and a compiled pad fuses with its neighbours.
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

}  // namespace kiln
