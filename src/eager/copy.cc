// Strided copies with dtype conversion: cast(), contiguous(), and the copies views need.
#include <fmt/format.h>

#include <cstring>

#include "eager/dispatch.h"
#include "eager/pointwise.h"
#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

void copy_into(const Tensor& dst, const Tensor& src) {
  require_data(src, "copy");
  if (dst.sizes() != src.sizes())
    throw ShapeError(fmt::format("copy: destination shape {} differs from source shape {}",
                                 shape_string(dst.sizes()), shape_string(src.sizes())));
  StridedLoop loop = make_strided_loop({&dst, &src});
  if (dst.dtype() == src.dtype()) {
    const int64_t esize = dtype_size(dst.dtype());
    parallel_for_each_run(loop, [esize](char** p, const int64_t* s, int64_t n) {
      if (s[0] == esize && s[1] == esize) {
        std::memcpy(p[0], p[1], static_cast<size_t>(n * esize));
      } else {
        for (int64_t i = 0; i < n; ++i) std::memcpy(p[0] + i * s[0], p[1] + i * s[1], esize);
      }
    });
    return;
  }
  KILN_DISPATCH_ALL(dst.dtype(), To, {
    KILN_DISPATCH_ALL(src.dtype(), From, {
      parallel_for_each_run(loop, [](char** p, const int64_t* s, int64_t n) {
        if (s[0] == sizeof(To) && s[1] == sizeof(From)) {
          auto* out = reinterpret_cast<To*>(p[0]);
          const auto* in = reinterpret_cast<const From*>(p[1]);
          for (int64_t i = 0; i < n; ++i) out[i] = convert<To>(in[i]);
        } else {
          for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<To*>(p[0] + i * s[0]) =
                convert<To>(*reinterpret_cast<const From*>(p[1] + i * s[1]));
        }
      });
    })
  })
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = make_tensor(x.sizes(), dtype);
  copy_into(out, x);
  return out;
}

Tensor contiguous_eager(const Tensor& x) {
  require_data(x, "contiguous()");
  if (x.is_contiguous()) return x;
  Tensor out = make_tensor(x.sizes(), x.dtype());
  copy_into(out, x);
  return out;
}

}  // namespace kiln
