// Random numbers: one counter-based generator (Philox4x32-10, as PyTorch's CUDA generator,
// defined once in support/philox.inc) whose state is a seed and an offset. Every random op is a
// graph op (rand, randn) taking that state as a tensor, i64[2]: element i of a draw is a pure
// function of (seed, offset + draw, i), so any thread count, eager or compiled, gives the same
// bits. Each eager draw advances the offset by one; a compiled call takes as many offsets as its
// graph draws.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>

#include "cuda/eager_cuda.h"
#include "eager/dispatch.h"
#include "eager/strided_loop.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "support/philox.h"
#include "tensor/element.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

struct Generator {
  std::mutex mutex;
  uint64_t seed = 0x6b696c6e;  // "kiln"
  uint64_t offset = 0;
};

Generator& generator() {
  static Generator g;
  return g;
}

// The state tensor of `draws` fresh draws of the generator, on `device`.
Tensor take_state(Device device) {
  auto [seed, offset] = take_draws(1);
  Tensor state = make_tensor({2}, DType::i64);
  auto* p = reinterpret_cast<int64_t*>(state.impl()->data_ptr());
  p[0] = static_cast<int64_t>(seed);
  p[1] = static_cast<int64_t>(offset);
  return device == Device::cpu ? state : copy_to_device(state, device);
}

Tensor draw(Op op, const SymShape& shape, DType dtype, Device device) {
  if (!is_floating(dtype))
    throw Error(fmt::format("{}: dtype must be floating, not {}", op_name(op), dtype_name(dtype)));
  Attrs a;
  a.set("shape", shape).set("dtype", dtype);
  Tensor state;
  if (OpRecorder* recorder = active_recorder()) {
    int64_t index = 0;
    state = recorder->rng_draw(&index);
    a.set("draw", index);
  } else {
    state = take_state(device);
    a.set("draw", int64_t{0});
  }
  return call_op(op, {state}, a);
}

// A draw on the GPU, by the eager CUDA kernel of the same generator (the state stays there).
Tensor gpu_random(Op op, const Tensor& state, uint64_t draw, const Shape& shape, DType dtype) {
  Tensor s = contiguous_eager(state);
  Tensor result = make_tensor(shape, dtype, Device::cuda);
  cuda::launch_random({reinterpret_cast<const int64_t*>(s.impl()->data_ptr()),
                       result.impl()->data_ptr(), result.numel(), static_cast<int64_t>(draw),
                       static_cast<int32_t>(dtype), op == Op::randn ? 1 : 0});
  return result;
}

}  // namespace

std::pair<uint64_t, uint64_t> take_draws(uint64_t draws) {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  uint64_t first = g.offset;
  g.offset += draws;
  return {g.seed, first};
}

void manual_seed(uint64_t seed) {
  Generator& g = generator();
  std::lock_guard<std::mutex> lock(g.mutex);
  g.seed = seed;
  g.offset = 0;
}

Tensor eager_random(Op op, const Tensor& state, const Attrs& attrs, const TensorType& out) {
  Shape shape;
  try_const_shape(out.shape, &shape);
  const uint64_t draw = static_cast<uint64_t>(attrs.get_int("draw"));
  if (state.device() == Device::cuda) return gpu_random(op, state, draw, shape, out.dtype);
  Tensor s = contiguous_eager(state);
  const int64_t* st = s.const_data<int64_t>();
  const uint64_t seed = static_cast<uint64_t>(st[0]);
  const uint64_t stream = static_cast<uint64_t>(st[1]) + draw;
  Tensor result = make_tensor(shape, out.dtype);
  char* data = result.impl()->data_ptr();
  const int64_t esize = dtype_size(out.dtype), numel = result.numel();
  const int wide = out.dtype == DType::f64, normal = op == Op::randn;
  const DType dtype = out.dtype;
  // One Philox call serves 2^shift consecutive elements (support/philox.inc).
  const int shift = kiln_philox_shift(normal, wide);
  const int64_t calls = (numel + (int64_t{1} << shift) - 1) >> shift;
  parallel_range(calls, 16, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const kiln_philox_t r = kiln_philox(seed, static_cast<uint64_t>(c), stream);
      for (int64_t i = c << shift; i < std::min(numel, (c + 1) << shift); ++i) {
        const uint64_t e = static_cast<uint64_t>(i);
        store_double(data + i * esize, dtype,
                     normal ? kiln_randn_of(r, e, wide) : kiln_rand_of(r, e, wide));
      }
    }
  });
  return result;
}

// Eagerly the sizes are numbers (checked as a tensor's); while tracing they may be symbolic.
SymShape draw_shape(const SymIntList& size, const char* op) {
  if (active_recorder()) return sym_shape_of(size, op);
  return const_shape(concrete_sizes(size));
}

Tensor rand(const SymIntList& size, DType dtype) {
  return draw(Op::rand, draw_shape(size, "rand"), dtype, Device::cpu);
}
Tensor randn(const SymIntList& size, DType dtype) {
  return draw(Op::randn, draw_shape(size, "randn"), dtype, Device::cpu);
}
Tensor rand_like(const Tensor& x) {
  return draw(Op::rand, symbolic_shape(x), is_floating(x.dtype()) ? x.dtype() : DType::f32,
              x.device());
}
Tensor randn_like(const Tensor& x) {
  return draw(Op::randn, symbolic_shape(x), is_floating(x.dtype()) ? x.dtype() : DType::f32,
              x.device());
}

Tensor randint(int64_t low, int64_t high, const SymIntList& size, DType dtype) {
  if (high <= low)
    throw Error(fmt::format("randint: high ({}) must be greater than low ({})", high, low));
  if (!is_integral(dtype) && !is_floating(dtype))
    throw Error(fmt::format("randint: dtype {} cannot hold integers", dtype_name(dtype)));
  // floor(u * (high - low)) + low in f64: exact while the bounds stay within 2^53 (and
  // high - low cannot overflow).
  constexpr int64_t kExact = int64_t{1} << 53;
  if (low < -kExact || high > kExact)
    throw Error(fmt::format("randint: bounds [{}, {}) must lie within ±2^53", low, high));
  Tensor u = rand(size, DType::f64);
  return add(floor(mul(u, static_cast<double>(high - low))), static_cast<double>(low)).to(dtype);
}
Tensor randint(int64_t high, const SymIntList& size, DType dtype) {
  return randint(0, high, size, dtype);
}

Tensor bernoulli(const Tensor& p) { return lt(rand_like(p), p).to(p.dtype()); }
Tensor bernoulli(const Tensor& x, double p) {
  if (!(p >= 0 && p <= 1)) throw Error(fmt::format("bernoulli: p = {} is not in [0, 1]", p));
  return lt(rand_like(x), p).to(x.dtype());
}

Tensor dropout(const Tensor& x, double p, bool train) {
  if (!(p >= 0 && p <= 1))
    throw Error(fmt::format("dropout: probability has to be between 0 and 1, but got {}", p));
  if (!train || p == 0) return x;
  if (p == 1) return mul(x, 0);
  Tensor keep = ge(rand_like(x), p);
  return mul(mul(x, keep), 1.0 / (1.0 - p));
}

const Tensor& Tensor::uniform_(double from, double to) const {
  return copy_(add(mul(rand_like(*this), to - from), from));
}
const Tensor& Tensor::normal_(double mean, double std) const {
  return copy_(add(mul(randn_like(*this), std), mean));
}

}  // namespace kiln
