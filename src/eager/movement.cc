// Reference data movement: cat, stack, index_select, gather, embedding, index_put and
// adaptive_avg_pool2d. Indices are checked against the indexed dim before any read.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#include "cuda/eager_cuda.h"
#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "eager/strided_loop.h"
#include "kiln/error.h"
#include "tensor/element.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

Shape out_shape_of(const TensorType& type) {
  Shape s;
  try_const_shape(type.shape, &s);
  return s;
}

std::vector<int64_t> load_indices(const Tensor& index, int64_t bound, Op op) {
  Tensor idx = contiguous_eager(cast(index, DType::i64)).cpu();
  std::vector<int64_t> out(idx.const_data<int64_t>(), idx.const_data<int64_t>() + idx.numel());
  for (int64_t& i : out) {
    if (i < -bound || i >= bound)
      throw ShapeError(
          fmt::format("{}: index {} is out of bounds for a dim of size {}", op_name(op), i, bound));
    if (i < 0) i += bound;
  }
  return out;
}

Tensor concat(const std::vector<Tensor>& in, int64_t dim, const TensorType& type) {
  Tensor out = make_tensor(out_shape_of(type), type.dtype, in[0].device());
  int64_t at = 0;
  for (const Tensor& t : in) {
    int64_t len = t.sizes()[dim];
    copy_into(out.narrow(dim, at, len), t);
    at += len;
  }
  return out;
}

Tensor pool2d(const Tensor& x_in, const Shape& size, const TensorType& type) {
  Tensor x = contiguous_eager(cast(x_in, DType::f64));
  int64_t h = x.sizes()[x.dim() - 2], w = x.sizes()[x.dim() - 1];
  int64_t oh = size[0], ow = size[1];
  int64_t planes = x.numel() / std::max<int64_t>(h * w, 1);
  Shape shape = out_shape_of(type);
  Tensor out = make_tensor(shape, DType::f64, x.device());
  if (on_gpu(x)) {
    cuda::launch_pool2d({reinterpret_cast<const double*>(x.impl()->data_ptr()),
                         reinterpret_cast<double*>(out.impl()->data_ptr()), planes, h, w, oh, ow});
    return cast(out, type.dtype);
  }
  const double* src = x.const_data<double>();
  double* dst = out.data<double>();
  parallel_range(planes, h * w, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p)
      for (int64_t i = 0; i < oh; ++i) {
        int64_t h0 = (i * h) / oh, h1 = ((i + 1) * h + oh - 1) / oh;
        for (int64_t j = 0; j < ow; ++j) {
          int64_t w0 = (j * w) / ow, w1 = ((j + 1) * w + ow - 1) / ow;
          double s = 0;
          for (int64_t r = h0; r < h1; ++r)
            for (int64_t c = w0; c < w1; ++c) s += src[p * h * w + r * w + c];
          dst[(p * oh + i) * ow + j] = s / double((h1 - h0) * (w1 - w0));
        }
      }
  });
  return cast(out, type.dtype);
}

// a + b in T: integers wrap as PyTorch's do (no signed overflow), bools or.
template <class T>
T accumulated(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return a || b;
  } else if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return to_storage<T>(to_compute(a) + to_compute(b));
  }
}

// A copy of self with values written (or added) where the index tensors point, computed on
// the host: indices are checked before any write; duplicates accumulate, or the last wins.
Tensor index_put(const std::vector<Tensor>& in, bool accumulate, const TensorType& type) {
  const Tensor& self = in[0];
  const size_t k = in.size() - 2;
  SymShape batch_sym = const_shape(in[2].sizes());
  for (size_t i = 3; i < in.size(); ++i) {
    SymShape other = const_shape(in[i].sizes());
    batch_sym = broadcast_shapes({&batch_sym, &other}, "index_put");
  }
  Shape batch = out_shape_of({DType::i64, batch_sym});
  std::vector<std::vector<int64_t>> idx;
  for (size_t i = 0; i < k; ++i)
    idx.push_back(load_indices(in[2 + i].expand(batch), self.sizes()[i], Op::index_put));
  Shape picked = batch;
  picked.insert(picked.end(), self.sizes().begin() + static_cast<std::ptrdiff_t>(k),
                self.sizes().end());
  Tensor values = contiguous_eager(cast(in[1], type.dtype).cpu().expand(picked));
  Tensor out = make_tensor(self.sizes(), type.dtype);
  copy_into(out, self.cpu());
  const Shape strides = contiguous_strides(self.sizes());
  const int64_t tail = k == 0 ? out.numel() : strides[k - 1];
  const int64_t rows = idx.empty() ? 1 : static_cast<int64_t>(idx[0].size());
  char* dst = out.impl()->data_ptr();
  const char* src = values.impl()->data_ptr();
  KILN_DISPATCH_ALL(type.dtype, T, {
    T* o = reinterpret_cast<T*>(dst);
    const T* v = reinterpret_cast<const T*>(src);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t base = 0;
      for (size_t d = 0; d < k; ++d) base += idx[d][static_cast<size_t>(r)] * strides[d];
      for (int64_t t = 0; t < tail; ++t)
        o[base + t] = accumulate ? accumulated(o[base + t], v[r * tail + t]) : v[r * tail + t];
    }
  })
  return self.device() == Device::cpu ? out : copy_to_device(out, self.device());
}

}  // namespace

Tensor eager_movement(Op op, const std::vector<Tensor>& in, const Attrs& attrs,
                      const TensorType& type) {
  switch (op) {
    case Op::cat:
      return concat(in, normalize_dim(attrs.get_int("dim"), in[0].dim(), "cat"), type);
    case Op::stack: {
      int64_t dim = normalize_dim(attrs.get_int("dim"), in[0].dim() + 1, "stack");
      std::vector<Tensor> expanded;
      for (const Tensor& t : in) expanded.push_back(t.unsqueeze(dim));
      return concat(expanded, dim, type);
    }
    case Op::index_select: {
      const Tensor& x = in[0];
      if (x.dim() == 0) return x.clone();
      int64_t dim = normalize_dim(attrs.get_int("dim"), x.dim(), "index_select");
      auto idx = load_indices(in[1], x.sizes()[dim], op);
      Tensor out = make_tensor(out_shape_of(type), type.dtype, x.device());
      for (size_t i = 0; i < idx.size(); ++i)
        copy_into(out.narrow(dim, static_cast<int64_t>(i), 1), x.narrow(dim, idx[i], 1));
      return out;
    }
    case Op::embedding: {
      const Tensor& weight = in[1];
      auto idx = load_indices(in[0], weight.sizes()[0], op);
      Tensor out = make_tensor(out_shape_of(type), type.dtype, weight.device());
      Tensor rows = out.reshape({static_cast<int64_t>(idx.size()), weight.sizes()[1]});
      for (size_t i = 0; i < idx.size(); ++i)
        copy_into(rows.narrow(0, static_cast<int64_t>(i), 1), weight.narrow(0, idx[i], 1));
      return out;
    }
    case Op::gather: {
      const Tensor& x = in[0];
      int64_t dim = normalize_dim(attrs.get_int("dim"), x.dim(), "gather");
      for (int64_t d = 0; d < x.dim(); ++d)
        if (d != dim && in[1].sizes()[d] > x.sizes()[d])
          throw ShapeError(fmt::format("gather: index shape {} exceeds input shape {} in dim {}",
                                       shape_string(in[1].sizes()), shape_string(x.sizes()), d));
      auto idx = load_indices(in[1], x.dim() ? x.sizes()[dim] : 1, op);
      Tensor out = make_tensor(out_shape_of(type), type.dtype, x.device());
      const Shape& shape = out.sizes();
      const int64_t es = dtype_size(x.dtype());
      // Each output element's byte offset in x; copied on the host, gathered on the GPU.
      Tensor offsets = make_tensor({out.numel()}, DType::i64);
      int64_t* off = offsets.data<int64_t>();
      for (int64_t linear = 0; linear < out.numel(); ++linear) {
        int64_t rest = linear, offset = 0;
        for (int64_t d = x.dim() - 1; d >= 0; --d) {
          int64_t i = rest % shape[d];
          rest /= shape[d];
          offset += (d == dim ? idx[linear] : i) * x.strides()[d];
        }
        off[linear] = offset * es;
      }
      char* dst = out.impl()->data_ptr();
      const char* src = x.impl()->data_ptr();
      if (on_gpu(x)) {
        Tensor device_offsets = offsets.cuda();
        cuda::launch_gather({dst, src,
                             reinterpret_cast<const int64_t*>(device_offsets.impl()->data_ptr()),
                             out.numel(), static_cast<int32_t>(es)});
        return out;
      }
      for (int64_t linear = 0; linear < out.numel(); ++linear)
        std::memcpy(dst + linear * es, src + off[linear], es);
      return out;
    }
    case Op::index_put:
      return index_put(in, attrs.get_int("accumulate") != 0, type);
    case Op::adaptive_avg_pool2d:
      return pool2d(in[0], attrs.get_ints("output_size"), type);
    default:
      break;
  }
  throw Error(fmt::format("{}: not a data movement op", op_name(op)));
}

}  // namespace kiln
