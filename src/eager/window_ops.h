// im2col and col2im (ops.def) as calls, for the composites built from them (eager/conv_ops.cc)
// and for their derivatives (autograd/derivatives.cc): the geometry's padding may differ per
// side, which the public unfold and fold (torch.nn.functional's) do not offer.
#pragma once

#include <vector>

#include "graph/window.h"
#include "kiln/tensor.h"

namespace kiln {

// x [N, C, *spatial] → columns [N, C*K, L]; padded positions read `pad_value`.
Tensor im2col(const Tensor& x, const WindowGeometry& w, double pad_value = 0);
// Columns [N, C*K, L] summed into [N, C, *output_size].
Tensor col2im(const Tensor& cols, const std::vector<int64_t>& output_size, const WindowGeometry& w);

}  // namespace kiln
