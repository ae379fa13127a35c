// The convolution and pooling modules of include/kiln/nn.h, with PyTorch's initialization.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "kiln/error.h"
#include "kiln/nn.h"
#include "kiln/ops.h"

namespace kiln::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Shape kernel_size, Shape stride_,
               Shape padding_, Shape dilation_, int64_t groups_, bool has_bias)
    : stride(std::move(stride_)),
      padding(std::move(padding_)),
      dilation(std::move(dilation_)),
      groups(groups_) {
  if (kernel_size.size() == 1) kernel_size.push_back(kernel_size[0]);
  const bool sizes_ok = in_channels > 0 && out_channels > 0 && groups > 0 &&
                        in_channels % groups == 0 && out_channels % groups == 0 &&
                        kernel_size.size() == 2 && kernel_size[0] > 0 && kernel_size[1] > 0;
  if (!sizes_ok)
    throw Error(fmt::format(
        "Conv2d({}, {}, kernel_size [{}], groups {}): channels and the kernel must be positive, "
        "the kernel two sizes (or one for both), the channels multiples of groups",
        in_channels, out_channels, fmt::join(kernel_size, ", "), groups));
  const double fan_in = static_cast<double>(in_channels / groups * kernel_size[0] * kernel_size[1]);
  const double bound = 1.0 / std::sqrt(fan_in);
  weight = register_parameter(
      "weight", kiln::empty({out_channels, in_channels / groups, kernel_size[0], kernel_size[1]})
                    .uniform_(-bound, bound));
  if (has_bias)
    bias = register_parameter("bias", kiln::empty({out_channels}).uniform_(-bound, bound));
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, stride, padding, dilation, groups);
}

MaxPool2d::MaxPool2d(Shape kernel, Shape stride_, Shape padding_, Shape dilation_, bool ceil)
    : kernel_size(std::move(kernel)),
      stride(std::move(stride_)),
      padding(std::move(padding_)),
      dilation(std::move(dilation_)),
      ceil_mode(ceil) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode);
}

AvgPool2d::AvgPool2d(Shape kernel, Shape stride_, Shape padding_, bool ceil, bool include_pad)
    : kernel_size(std::move(kernel)),
      stride(std::move(stride_)),
      padding(std::move(padding_)),
      ceil_mode(ceil),
      count_include_pad(include_pad) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad);
}

}  // namespace kiln::nn
