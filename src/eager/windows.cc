// Reference im2col and col2im (ops.def, graph/window.h): the sliding windows that convolution
// and pooling are built from (eager/conv_ops.cc). im2col copies elements (any dtype, padding
// read as pad_value); col2im sums columns back into an image in f32 (f64 for f64 inputs),
// each image plane written by one thread in a fixed order, so that results are deterministic.
// CUDA tensors are copied to the host and back.
#include <algorithm>
#include <array>
#include <cstring>

#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "eager/strided_loop.h"
#include "graph/window.h"
#include "kiln/error.h"
#include "tensor/element.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// The geometry in three spatial dims, leading ones of size 1 added for 1-D and 2-D windows.
struct Windows3 {
  std::array<int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, dilation{1, 1, 1},
      padding{0, 0, 0}, stride{1, 1, 1};
  int64_t kernel_elements() const { return kernel[0] * kernel[1] * kernel[2]; }
  int64_t windows() const { return out[0] * out[1] * out[2]; }
  int64_t image() const { return in[0] * in[1] * in[2]; }
  // Kernel position k's offsets along the three dims.
  std::array<int64_t, 3> offsets(int64_t k) const {
    return {k / (kernel[1] * kernel[2]) * dilation[0], k / kernel[2] % kernel[1] * dilation[1],
            k % kernel[2] * dilation[2]};
  }
};

Windows3 windows3(const Attrs& attrs, const std::vector<int64_t>& image) {
  WindowGeometry w = window_geometry(attrs);
  std::vector<int64_t> out = window_counts(w, image);
  Windows3 g;
  const size_t lead = 3 - image.size();
  for (size_t d = 0; d < image.size(); ++d) {
    g.in[lead + d] = image[d];
    g.out[lead + d] = out[d];
    g.kernel[lead + d] = w.kernel[d];
    g.dilation[lead + d] = w.dilation[d];
    g.padding[lead + d] = w.padding[d];
    g.stride[lead + d] = w.stride[d];
  }
  return g;
}

// The windows c in [first, last) along the innermost dim whose element
// c * stride - padding + offset lies inside [0, size).
struct Inside {
  int64_t first, last;
};
Inside inside(int64_t windows, int64_t stride, int64_t start, int64_t size) {
  auto ceil_div = [](int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); };
  int64_t first = std::clamp<int64_t>(ceil_div(-start, stride), 0, windows);
  int64_t last = std::clamp<int64_t>(ceil_div(size - start, stride), first, windows);
  return {first, last};
}

// One row of the columns: kernel position k of one image plane over every window. The
// innermost dim's padding is filled around one run of inside elements (a copy at stride 1),
// with no test per element.
template <class T>
void im2col_row(const T* plane, T* row, const Windows3& g, int64_t k, T pad) {
  const std::array<int64_t, 3> off = g.offsets(k);
  const int64_t start = off[2] - g.padding[2], stride = g.stride[2];
  const Inside in = inside(g.out[2], stride, start, g.in[2]);
  for (int64_t a = 0; a < g.out[0]; ++a) {
    const int64_t z = a * g.stride[0] - g.padding[0] + off[0];
    for (int64_t b = 0; b < g.out[1]; ++b, row += g.out[2]) {
      const int64_t y = b * g.stride[1] - g.padding[1] + off[1];
      if (z < 0 || z >= g.in[0] || y < 0 || y >= g.in[1]) {
        std::fill(row, row + g.out[2], pad);
        continue;
      }
      const T* line = plane + (z * g.in[1] + y) * g.in[2] + start;
      std::fill(row, row + in.first, pad);
      if (stride == 1) {
        std::memcpy(row + in.first, line + in.first, sizeof(T) * (in.last - in.first));
      } else {
        for (int64_t c = in.first; c < in.last; ++c) row[c] = line[c * stride];
      }
      std::fill(row + in.last, row + g.out[2], pad);
    }
  }
}

template <class T>
void im2col_typed(const Tensor& x, Tensor& out, const Windows3& g, const Tensor& pad_tensor) {
  const int64_t planes = x.sizes()[0] * x.sizes()[1], k = g.kernel_elements();
  const T pad = *reinterpret_cast<const T*>(pad_tensor.impl()->data_ptr());
  const T* src = reinterpret_cast<const T*>(x.impl()->data_ptr());
  T* dst = reinterpret_cast<T*>(out.impl()->data_ptr());
  parallel_range(planes * k, g.windows(), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      im2col_row(src + r / k * g.image(), dst + r * g.windows(), g, r % k, pad);
  });
}

Tensor im2col(const Tensor& x_in, const Attrs& attrs, const Shape& shape) {
  Tensor x = contiguous_eager(x_in);
  Windows3 g = windows3(attrs, Shape(x.sizes().begin() + 2, x.sizes().end()));
  Tensor out = make_tensor(shape, x.dtype(), x.device());
  // The padding's element in x's dtype, converted once as a cast would.
  Tensor pad = make_tensor({}, x.dtype());
  store_double(pad.impl()->data_ptr(), x.dtype(),
               attrs.has("pad_value") ? attrs.get_double("pad_value") : 0.0);
  switch (dtype_size(x.dtype())) {
    case 1:
      im2col_typed<uint8_t>(x, out, g, pad);
      break;
    case 2:
      im2col_typed<uint16_t>(x, out, g, pad);
      break;
    case 4:
      im2col_typed<uint32_t>(x, out, g, pad);
      break;
    default:
      im2col_typed<uint64_t>(x, out, g, pad);
      break;
  }
  return out;
}

template <class T>
void col2im_typed(const Tensor& cols, Tensor& out, const Windows3& g) {
  const int64_t planes = out.sizes()[0] * out.sizes()[1], k = g.kernel_elements();
  const T* src = cols.const_data<T>();
  T* dst = out.data<T>();
  parallel_range(planes, k * g.windows(), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      T* plane = dst + p * g.image();
      std::fill(plane, plane + g.image(), T(0));
      for (int64_t kk = 0; kk < k; ++kk) {
        const std::array<int64_t, 3> off = g.offsets(kk);
        const T* row = src + (p * k + kk) * g.windows();
        for (int64_t a = 0; a < g.out[0]; ++a) {
          const int64_t z = a * g.stride[0] - g.padding[0] + off[0];
          for (int64_t b = 0; b < g.out[1]; ++b, row += g.out[2]) {
            const int64_t y = b * g.stride[1] - g.padding[1] + off[1];
            if (z < 0 || z >= g.in[0] || y < 0 || y >= g.in[1]) continue;
            T* line = plane + (z * g.in[1] + y) * g.in[2];
            for (int64_t c = 0; c < g.out[2]; ++c) {
              const int64_t x = c * g.stride[2] - g.padding[2] + off[2];
              if (x >= 0 && x < g.in[2]) line[x] += row[c];
            }
          }
        }
      }
    }
  });
}

Tensor col2im(const Tensor& cols_in, const Attrs& attrs, const Shape& shape, DType dtype) {
  const DType compute = dtype == DType::f64 ? DType::f64 : DType::f32;
  Tensor cols = contiguous_eager(cast(cols_in, compute));
  Windows3 g = windows3(attrs, attrs.get_ints("output_size"));
  Tensor out = make_tensor(shape, compute, cols.device());
  if (compute == DType::f64) {
    col2im_typed<double>(cols, out, g);
  } else {
    col2im_typed<float>(cols, out, g);
  }
  return cast(out, dtype);
}

}  // namespace

Tensor eager_windows(Op op, const Tensor& x, const Attrs& attrs, const TensorType& type) {
  // CUDA tensors take the host kernels through two copies: correct, not fast, until the GPU
  // has kernels of its own (a convolution's product still runs in cuBLASLt).
  if (on_gpu(x)) return eager_windows(op, x.cpu(), attrs, type).to(Device::cuda);
  Shape shape;
  try_const_shape(type.shape, &shape);
  return op == Op::im2col ? im2col(x, attrs, shape) : col2im(x, attrs, shape, type.dtype);
}

}  // namespace kiln
