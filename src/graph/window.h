// The sliding windows of im2col and col2im (ops.def), the ops that convolution and pooling are
// built from: per spatial dim a kernel size, dilation, stride and the padding before and after.
// One parse and one output-size rule, shared by type inference and the eager kernels, so that
// the two cannot disagree.
#pragma once

#include <cstdint>
#include <vector>

#include "graph/attrs.h"

namespace kiln {

struct WindowGeometry {
  std::vector<int64_t> kernel, dilation, padding, padding_end, stride;
  int spatial() const { return static_cast<int>(kernel.size()); }
  // Positions each window covers: the product of the kernel sizes.
  int64_t kernel_elements() const;
};

// The attributes `kernel_size`, `dilation`, `padding`, `padding_end`, `stride`, one entry per
// spatial dim (1 to 3 of them). Throws ShapeError naming the attribute when a list has the
// wrong length, a size or step is below 1 or a padding below 0 (type inference adds the op).
WindowGeometry window_geometry(const Attrs& attrs);
void set_window_attrs(Attrs& attrs, const WindowGeometry& w);

// Windows along each spatial dim of an input of sizes `in` (one per spatial dim):
// (in + padding + padding_end - dilation * (kernel - 1) - 1) / stride + 1. Throws ShapeError
// when a dilated kernel is larger than the padded input.
std::vector<int64_t> window_counts(const WindowGeometry& w, const std::vector<int64_t>& in);

}  // namespace kiln
