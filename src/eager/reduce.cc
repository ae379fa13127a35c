// Reference reductions. The input is laid out as rows [M, R] with the reduced dims
// innermost; each row reduces on one thread, floating rows accumulating in f64 (exact enough
// to serve as the oracle), integer rows in i64. A single long row (a full sum) is split into
// fixed-size chunks whose partial sums combine in order, so results do not depend on the
// thread count.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "cuda/eager_cuda.h"
#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "eager/rows.h"
#include "eager/strided_loop.h"
#include "kiln/error.h"
#include "tensor/element.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

constexpr int64_t kChunk = 65536;

template <class T>
using Acc = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, int64_t>;

template <class T>
Acc<T> sum_range(const T* x, int64_t n) {
  Acc<T> acc = 0;
  if constexpr (std::is_same_v<Acc<T>, double>) {
    // Eight independent partial sums: the adds pipeline (and vectorize) instead of waiting
    // on one accumulator; the order is fixed, so results stay deterministic.
    double part[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) part[k] += static_cast<double>(to_compute(x[i + k]));
    for (; i < n; ++i) acc += static_cast<double>(to_compute(x[i]));
    acc +=
        ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  } else {
    uint64_t u = 0;  // wraps like PyTorch's integer sum
    for (int64_t i = 0; i < n; ++i) u += static_cast<uint64_t>(static_cast<int64_t>(x[i]));
    acc = static_cast<int64_t>(u);
  }
  return acc;
}

template <class T>
Acc<T> chunked_sum(const T* x, int64_t n) {
  if (n < 2 * kChunk) return sum_range(x, n);
  int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<Acc<T>> partial(static_cast<size_t>(chunks));
  parallel_range(chunks, kChunk, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c)
      partial[c] = sum_range(x + c * kChunk, std::min(kChunk, n - c * kChunk));
  });
  Acc<T> acc = 0;
  for (Acc<T> p : partial) acc = static_cast<Acc<T>>(acc + p);
  return acc;
}

template <class T>
void store(const Tensor& out, int64_t m, Acc<T> value) {
  char* p = out.impl()->data_ptr() + m * dtype_size(out.dtype());
  if constexpr (std::is_same_v<Acc<T>, int64_t>) {
    if (out.dtype() == DType::i64) {
      *reinterpret_cast<int64_t*>(p) = value;
      return;
    }
  }
  store_double(p, out.dtype(), static_cast<double>(value));
}

template <class T>
void reduce_row(Op op, const Attrs& attrs, const T* row, int64_t n, const Tensor& out, int64_t m) {
  using C = compute_t<T>;
  switch (op) {
    case Op::sum:
      return store<T>(out, m, chunked_sum(row, n));
    case Op::mean:
      return store<T>(out, m, static_cast<double>(chunked_sum(row, n)) / static_cast<double>(n));
    case Op::prod: {
      Acc<T> acc = 1;
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<Acc<T>, double>) {
          acc *= static_cast<double>(to_compute(row[i]));
        } else {
          acc = static_cast<int64_t>(static_cast<uint64_t>(acc) *
                                     static_cast<uint64_t>(static_cast<int64_t>(row[i])));
        }
      }
      return store<T>(out, m, acc);
    }
    case Op::amax:
    case Op::amin: {
      bool is_max = op == Op::amax;
      C best = to_compute(row[0]);
      for (int64_t i = 1; i < n && best == best; ++i) {
        C v = to_compute(row[i]);
        if (v != v || (is_max ? v > best : v < best)) best = v;
      }
      char* p = out.impl()->data_ptr() + m * dtype_size(out.dtype());
      *reinterpret_cast<T*>(p) = to_storage<T>(best);
      return;
    }
    case Op::argmax:
    case Op::argmin: {
      bool is_max = op == Op::argmax;
      C best = to_compute(row[0]);
      int64_t best_i = 0;
      for (int64_t i = 1; i < n && best == best; ++i) {
        C v = to_compute(row[i]);
        if (v != v || (is_max ? v > best : v < best)) {
          best = v;
          best_i = i;
        }
      }
      reinterpret_cast<int64_t*>(out.impl()->data_ptr())[m] = best_i;
      return;
    }
    case Op::var:
    case Op::std: {
      double mean = static_cast<double>(chunked_sum(row, n)) / static_cast<double>(n);
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) {
        double d = static_cast<double>(to_compute(row[i])) - mean;
        ss += d * d;
      }
      double denom = std::max<double>(0.0, static_cast<double>(n - attrs.get_int("correction")));
      double v = ss / denom;
      return store<T>(out, m, op == Op::std ? std::sqrt(v) : v);
    }
    case Op::logsumexp: {
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(to_compute(row[i])));
      if (std::isinf(mx) || std::isnan(mx)) {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += static_cast<double>(to_compute(row[i]));
        return store<T>(out, m, std::isnan(s) ? s : mx);
      }
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(to_compute(row[i])) - mx);
      return store<T>(out, m, mx + std::log(s));
    }
    default:
      break;
  }
  throw Error(fmt::format("{}: not a reduction", op_name(op)));
}

}  // namespace

Tensor eager_reduce(Op op, const Tensor& x, const Attrs& attrs, const TensorType& out_type) {
  std::vector<int64_t> dims;
  if (op_info(op).rule == OpRule::ReduceIndex) {
    if (attrs.has("dim"))
      dims = {normalize_dim(attrs.get_int("dim"), x.dim(), op_name(op))};
    else
      dims = reduction_dims({}, x.dim(), op_name(op));
  } else {
    dims = reduction_dims(attrs.get_ints("dims"), x.dim(), op_name(op));
  }
  if (x.dim() == 0) dims.clear();
  // logsumexp of integers computes in f32 (its result dtype).
  Tensor in = op == Op::logsumexp ? cast(x, out_type.dtype) : x;
  Rows rows = to_rows(in, dims);
  Shape shape;
  try_const_shape(out_type.shape, &shape);
  Tensor out = make_tensor(shape, out_type.dtype, x.device());
  bool needs_element = op == Op::amax || op == Op::amin || op == Op::argmax || op == Op::argmin;
  if (needs_element && rows.length == 0 && rows.count > 0)
    throw ShapeError(fmt::format("{}: cannot reduce over an empty dim of shape {}", op_name(op),
                                 shape_string(x.sizes())));
  if (on_gpu(out)) {
    cuda::ReduceArgs args{
        rows.data.impl()->data_ptr(),
        out.impl()->data_ptr(),
        rows.count,
        rows.length,
        static_cast<int32_t>(rows.data.dtype()),
        static_cast<int32_t>(out.dtype()),
        static_cast<int32_t>(op),
        attrs.has("correction") ? static_cast<int32_t>(attrs.get_int("correction")) : 0};
    if (rows.length == 0) {  // empty rows: sum 0, prod 1, mean and var NaN, as on the CPU
      Tensor host = make_tensor(shape, out_type.dtype);
      KILN_DISPATCH_ALL(rows.data.dtype(), T, {
        for (int64_t m = 0; m < rows.count; ++m) reduce_row<T>(op, attrs, nullptr, 0, host, m);
      })
      copy_into(out, host);
      return out;
    }
    cuda::launch_reduce(args);
    return out;
  }
  KILN_DISPATCH_ALL(rows.data.dtype(), T, {
    const T* data = reinterpret_cast<const T*>(rows.data.impl()->data_ptr());
    int64_t n = rows.length;
    parallel_range(rows.count, n, [&](int64_t begin, int64_t end) {
      for (int64_t m = begin; m < end; ++m) reduce_row<T>(op, attrs, data + m * n, n, out, m);
    });
  })
  return out;
}

}  // namespace kiln
