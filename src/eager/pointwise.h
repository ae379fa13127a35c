// Loop templates shared by the pointwise reference kernels: map a functor over one, two or
// three operands of a StridedLoop, converting f16/bf16 to f32 around the computation.
// Unit-stride runs take a plain indexed loop that the compiler vectorizes.
#pragma once

#include "eager/strided_loop.h"
#include "tensor/element.h"

namespace kiln {

template <class Out, class In, class F>
void map1(const StridedLoop& loop, F f) {
  parallel_for_each_run(loop, [&](char** p, const int64_t* s, int64_t n) {
    auto* out = reinterpret_cast<Out*>(p[0]);
    const auto* a = reinterpret_cast<const In*>(p[1]);
    if (s[0] == sizeof(Out) && s[1] == sizeof(In)) {
      for (int64_t i = 0; i < n; ++i) out[i] = to_storage<Out>(f(to_compute(a[i])));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        *reinterpret_cast<Out*>(p[0] + i * s[0]) =
            to_storage<Out>(f(to_compute(*reinterpret_cast<const In*>(p[1] + i * s[1]))));
      }
    }
  });
}

template <class Out, class In, class F>
void map2(const StridedLoop& loop, F f) {
  parallel_for_each_run(loop, [&](char** p, const int64_t* s, int64_t n) {
    auto* out = reinterpret_cast<Out*>(p[0]);
    const auto* a = reinterpret_cast<const In*>(p[1]);
    const auto* b = reinterpret_cast<const In*>(p[2]);
    constexpr int64_t so = sizeof(Out), si = sizeof(In);
    if (s[0] == so && s[1] == si && s[2] == si) {
      for (int64_t i = 0; i < n; ++i)
        out[i] = to_storage<Out>(f(to_compute(a[i]), to_compute(b[i])));
    } else if (s[0] == so && s[1] == si && s[2] == 0) {
      const auto bv = to_compute(b[0]);
      for (int64_t i = 0; i < n; ++i) out[i] = to_storage<Out>(f(to_compute(a[i]), bv));
    } else if (s[0] == so && s[1] == 0 && s[2] == si) {
      const auto av = to_compute(a[0]);
      for (int64_t i = 0; i < n; ++i) out[i] = to_storage<Out>(f(av, to_compute(b[i])));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        *reinterpret_cast<Out*>(p[0] + i * s[0]) =
            to_storage<Out>(f(to_compute(*reinterpret_cast<const In*>(p[1] + i * s[1])),
                              to_compute(*reinterpret_cast<const In*>(p[2] + i * s[2]))));
      }
    }
  });
}

}  // namespace kiln
