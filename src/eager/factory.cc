// Factories and the counter-based random generator. Element i of a random tensor is a pure
// function of (seed, stream offset + i), so any thread count gives the same numbers.
#include <fmt/format.h>

#include <atomic>
#include <cmath>

#include "eager/strided_loop.h"
#include "graph/dim.h"
#include "kiln/error.h"
#include "tensor/element.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

std::atomic<uint64_t> g_seed{0x6b696c6e};  // "kiln"
std::atomic<uint64_t> g_offset{0};

uint64_t mix(uint64_t z) {  // splitmix64's finalizer: a bijection with full avalanche
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t random_bits(uint64_t seed, uint64_t counter) {
  return mix(mix(seed) ^ (counter * 0x9e3779b97f4a7c15ull));
}

double uniform(uint64_t seed, uint64_t counter) {  // [0, 1) with 53 random bits
  return static_cast<double>(random_bits(seed, counter) >> 11) * 0x1.0p-53;
}

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

void manual_seed(uint64_t seed) {
  g_seed = seed;
  g_offset = 0;
}

Tensor empty(const Shape& shape, DType dtype) { return make_tensor(shape, dtype); }

Tensor full(const Shape& shape, Scalar value, DType dtype) {
  double v = value.to_double();
  if (value.kind() != Scalar::Kind::floating) {
    int64_t i = value.to_int();
    return generate(shape, dtype, [i](int64_t) { return static_cast<double>(i); });
  }
  return generate(shape, dtype, [v](int64_t) { return v; });
}

Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1, dtype); }

Tensor arange(Scalar end, DType dtype) { return arange(0, end, 1, dtype); }

Tensor arange(Scalar start, Scalar end, Scalar step, DType dtype) {
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  if (st == 0 || !std::isfinite(s) || !std::isfinite(e) || !std::isfinite(st))
    throw Error(fmt::format("arange({}, {}, {}): bounds must be finite and step non-zero",
                            start.to_string(), end.to_string(), step.to_string()));
  double count = std::ceil((e - s) / st);
  int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  return generate({n}, dtype, [s, st](int64_t i) { return s + static_cast<double>(i) * st; });
}

Tensor rand(const Shape& shape, DType dtype) {
  if (!is_floating(dtype)) throw Error("rand: dtype must be floating");
  uint64_t seed = g_seed, base = g_offset.fetch_add(static_cast<uint64_t>(shape_numel(shape)));
  return generate(shape, dtype, [=](int64_t i) { return uniform(seed, base + i); });
}

Tensor randn(const Shape& shape, DType dtype) {
  if (!is_floating(dtype)) throw Error("randn: dtype must be floating");
  uint64_t n = static_cast<uint64_t>(shape_numel(shape));
  uint64_t seed = g_seed, base = g_offset.fetch_add(2 * n);
  return generate(shape, dtype, [=](int64_t i) {
    // Box-Muller on two uniforms; 1 - u keeps the log's argument in (0, 1].
    double u1 = 1.0 - uniform(seed, base + 2 * i);
    double u2 = uniform(seed, base + 2 * i + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  });
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw ShapeError(fmt::format("from_vector: {} values for shape {} ({} elements)", values.size(),
                                 shape_string(shape), shape_numel(shape)));
  return generate(shape, dtype, [&](int64_t i) { return values[static_cast<size_t>(i)]; });
}

}  // namespace kiln
