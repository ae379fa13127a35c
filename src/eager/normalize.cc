// Reference softmax, log_softmax and layer_norm: rows with the normalized dims innermost,
// statistics in f64, the result rounded once to the input's dtype.
#include <cmath>
#include <limits>
#include <vector>

#include "cuda/eager_cuda.h"
#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "eager/rows.h"
#include "eager/strided_loop.h"
#include "tensor/element.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

template <class T>
void softmax_rows(const Rows& rows, const Tensor& result, bool log_form) {
  using C = compute_t<T>;
  if constexpr (std::is_floating_point_v<C>) {
    const T* in = reinterpret_cast<const T*>(rows.data.impl()->data_ptr());
    T* out = reinterpret_cast<T*>(result.impl()->data_ptr());
    const int64_t n = rows.length;
    parallel_range(rows.count, n, [&](int64_t begin, int64_t end) {
      std::vector<C> shifted(static_cast<size_t>(n));
      for (int64_t m = begin; m < end; ++m) {
        const T* row = in + m * n;
        C mx = -std::numeric_limits<C>::infinity();
        for (int64_t i = 0; i < n; ++i) mx = std::max(mx, to_compute(row[i]));
        // exp in the compute type, its sum in f64; softmax keeps exp(x - max) in
        // `shifted`, log_softmax keeps x - max.
        double s = 0;
        for (int64_t i = 0; i < n; ++i) {
          C d = to_compute(row[i]) - mx;
          C e = std::exp(d);
          shifted[i] = log_form ? d : e;
          s += double(e);
        }
        if (log_form) {
          C log_s = static_cast<C>(std::log(s));
          for (int64_t i = 0; i < n; ++i) out[m * n + i] = to_storage<T>(shifted[i] - log_s);
        } else {
          C scale = static_cast<C>(1.0 / s);
          for (int64_t i = 0; i < n; ++i) out[m * n + i] = to_storage<T>(shifted[i] * scale);
        }
      }
    });
  }
}

template <class T>
void layer_norm_rows(const Rows& rows, const Tensor& result, const double* w, const double* b,
                     double eps) {
  if constexpr (std::is_floating_point_v<compute_t<T>>) {
    const T* src = reinterpret_cast<const T*>(rows.data.impl()->data_ptr());
    T* out = reinterpret_cast<T*>(result.impl()->data_ptr());
    const int64_t n = rows.length;
    parallel_range(rows.count, n, [&](int64_t begin, int64_t end) {
      for (int64_t m = begin; m < end; ++m) {
        const T* row = src + m * n;
        double mean = 0, ss = 0;
        for (int64_t i = 0; i < n; ++i) mean += double(to_compute(row[i]));
        mean /= double(n);
        for (int64_t i = 0; i < n; ++i) {
          double d = double(to_compute(row[i])) - mean;
          ss += d * d;
        }
        double rstd = 1.0 / std::sqrt(ss / double(n) + eps);
        for (int64_t i = 0; i < n; ++i) {
          double y = (double(to_compute(row[i])) - mean) * rstd;
          if (w) y *= w[i];
          if (b) y += b[i];
          out[m * n + i] = to_storage<T>(y);
        }
      }
    });
  }
}

}  // namespace

Tensor eager_softmax(Op op, const Tensor& x, const Attrs& attrs) {
  if (x.dim() == 0) return eager_softmax(op, x.reshape({1}), attrs).reshape({});
  int64_t dim = normalize_dim(attrs.get_int("dim"), x.dim(), op_name(op));
  Rows rows = to_rows(x, {dim});
  Tensor result = make_tensor(rows.data.sizes(), x.dtype(), x.device());
  if (on_gpu(x) && is_floating(x.dtype())) {
    cuda::launch_rows({rows.data.impl()->data_ptr(), result.impl()->data_ptr(), nullptr, nullptr,
                       rows.count, rows.length, static_cast<int32_t>(x.dtype()),
                       op == Op::log_softmax ? 1 : 0, 0.0});
    return from_rows(result, x.sizes(), rows.permutation);
  }
  KILN_DISPATCH_ALL(x.dtype(), T, softmax_rows<T>(rows, result, op == Op::log_softmax))
  return from_rows(result, x.sizes(), rows.permutation);
}

Tensor eager_layer_norm(const std::vector<Tensor>& in, const Attrs& attrs) {
  const Tensor& x = in[0];
  int64_t k = static_cast<int64_t>(attrs.get_ints("normalized_shape").size());
  std::vector<int64_t> dims;
  for (int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  Rows rows = to_rows(x, dims);
  Tensor weight = in.size() > 1 ? contiguous_eager(cast(in[1], DType::f64)) : Tensor();
  Tensor bias = in.size() > 2 ? contiguous_eager(cast(in[2], DType::f64)) : Tensor();
  Tensor result = make_tensor(x.sizes(), x.dtype(), x.device());
  if (on_gpu(x)) {
    if (is_floating(x.dtype()))
      cuda::launch_rows(
          {rows.data.impl()->data_ptr(), result.impl()->data_ptr(),
           weight.defined() ? reinterpret_cast<const double*>(weight.impl()->data_ptr()) : nullptr,
           bias.defined() ? reinterpret_cast<const double*>(bias.impl()->data_ptr()) : nullptr,
           rows.count, rows.length, static_cast<int32_t>(x.dtype()), 2, attrs.get_double("eps")});
    return result;
  }
  const double* w = weight.defined() ? weight.const_data<double>() : nullptr;
  const double* b = bias.defined() ? bias.const_data<double>() : nullptr;
  KILN_DISPATCH_ALL(x.dtype(), T, layer_norm_rows<T>(rows, result, w, b, attrs.get_double("eps")))
  return result;
}

}  // namespace kiln
