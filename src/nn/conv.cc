// The convolution, pooling and channel normalization modules of include/kiln/nn.h, with
// PyTorch's initialization.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "kiln/autograd.h"
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

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps_, double momentum_, bool affine,
                         bool track_running_stats)
    : eps(eps_), momentum(momentum_) {
  if (num_features <= 0)
    throw Error(fmt::format("BatchNorm2d({}): num_features must be positive", num_features));
  if (affine) {
    weight = register_parameter("weight", ones({num_features}));
    bias = register_parameter("bias", zeros({num_features}));
  }
  if (track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({num_features}));
    running_var = register_buffer("running_var", ones({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::i64));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  if (x.dim() != 4)
    throw ShapeError(
        fmt::format("BatchNorm2d: expected a 4-D input [N, C, H, W], got {}-D", x.dim()));
  const bool batch_stats = is_training() || !running_mean.defined();
  if (is_training() && num_batches_tracked.defined()) {
    NoGradGuard no_grad;
    num_batches_tracked.add_(1);
  }
  return batch_norm(x, running_mean, running_var, weight, bias, batch_stats, momentum, eps);
}

GroupNorm::GroupNorm(int64_t groups, int64_t num_channels, double eps_, bool affine)
    : num_groups(groups), eps(eps_) {
  if (groups <= 0 || num_channels <= 0 || num_channels % groups != 0)
    throw Error(
        fmt::format("GroupNorm({}, {}): num_channels must be a positive multiple of "
                    "num_groups",
                    groups, num_channels));
  if (affine) {
    weight = register_parameter("weight", ones({num_channels}));
    bias = register_parameter("bias", zeros({num_channels}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) { return group_norm(x, num_groups, weight, bias, eps); }

}  // namespace kiln::nn
