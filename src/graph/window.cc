#include "graph/window.h"

#include <fmt/format.h>

#include "kiln/error.h"

namespace kiln {

int64_t WindowGeometry::kernel_elements() const {
  int64_t n = 1;
  for (int64_t k : kernel) n *= k;  // each at most kMaxWindow: no overflow (window_geometry)
  return n;
}

namespace {

// Larger windows than any model uses, small enough that kernel products never overflow.
constexpr int64_t kMaxWindow = int64_t{1} << 16;
// No tensor holds more elements than this along one dim (support/limits.h allows 2^48 in all).
constexpr int64_t kMaxSpatial = int64_t{1} << 48;

std::vector<int64_t> list(const Attrs& attrs, const char* name, size_t spatial, int64_t min) {
  std::vector<int64_t> v = attrs.get_ints(name);
  if (spatial && v.size() != spatial)
    throw ShapeError(fmt::format("{} has {} entries, expected one per spatial dim ({})", name,
                                 v.size(), spatial));
  for (int64_t x : v)
    if (x < min || x > kMaxWindow)
      throw ShapeError(
          fmt::format("{} entries must be in [{}, {}], got {}", name, min, kMaxWindow, x));
  return v;
}

}  // namespace

WindowGeometry window_geometry(const Attrs& attrs) {
  WindowGeometry w;
  w.kernel = list(attrs, "kernel_size", 0, 1);
  if (w.kernel.empty() || w.kernel.size() > 3)
    throw ShapeError(
        fmt::format("kernel_size has {} entries; 1 to 3 spatial dims", w.kernel.size()));
  size_t s = w.kernel.size();
  w.dilation = list(attrs, "dilation", s, 1);
  w.padding = list(attrs, "padding", s, 0);
  w.padding_end = list(attrs, "padding_end", s, 0);
  w.stride = list(attrs, "stride", s, 1);
  return w;
}

void set_window_attrs(Attrs& attrs, const WindowGeometry& w) {
  attrs.set_ints("kernel_size", w.kernel);
  attrs.set_ints("dilation", w.dilation);
  attrs.set_ints("padding", w.padding);
  attrs.set_ints("padding_end", w.padding_end);
  attrs.set_ints("stride", w.stride);
}

std::vector<int64_t> window_counts(const WindowGeometry& w, const std::vector<int64_t>& in) {
  std::vector<int64_t> out;
  for (size_t d = 0; d < in.size(); ++d) {
    // A size from outside (col2im's output_size) is bounded first; then every term is at
    // most kMaxWindow or kMaxSpatial: no overflow.
    if (in[d] > kMaxSpatial)
      throw ShapeError(
          fmt::format("spatial dim {} of size {} is larger than {}", d, in[d], kMaxSpatial));
    int64_t padded = in[d] + w.padding[d] + w.padding_end[d];
    int64_t span = w.dilation[d] * (w.kernel[d] - 1) + 1;
    if (in[d] < 1 || padded < span)
      throw ShapeError(
          fmt::format("spatial dim {} of size {} (padded {}) is smaller than the kernel's span {} "
                      "(kernel_size {}, dilation {})",
                      d, in[d], padded, span, w.kernel[d], w.dilation[d]));
    out.push_back((padded - span) / w.stride[d] + 1);
  }
  return out;
}

}  // namespace kiln
