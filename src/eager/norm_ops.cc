// batch_norm, instance_norm, group_norm and local_response_norm (include/kiln/ops.h): PyTorch's
// definitions written with kiln's ops, so that they have derivatives and fuse when compiled.
// Statistics use the biased variance; the running statistics a training-mode batch_norm or
// instance_norm updates in place (as PyTorch: momentum-weighted, the unbiased variance) are
// written under no_grad, and while a compile traces them the write is a mutation like any
// other (functionalized, written back after each call).
#include <fmt/format.h>

#include <algorithm>

#include "eager/window_ops.h"
#include "kiln/autograd.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "support/text.h"

namespace kiln {

namespace {

std::string text(const Tensor& t) { return shape_string(t.sizes()); }

void require_channels(const char* op, const Tensor& x) {
  if (x.dim() < 2) throw ShapeError(fmt::format("{}: input {} must be [N, C, ...]", op, text(x)));
  if (!is_floating(x.dtype()))
    throw ShapeError(fmt::format("{}: needs a floating input, got {}; cast with .to(f32)", op,
                                 dtype_name(x.dtype())));
}

// A per-channel vector [C] as [1, C, 1, ...] against x; undefined stays undefined.
Tensor per_channel(const char* op, const char* name, const Tensor& v, const Tensor& x) {
  if (!v.defined()) return v;
  const int64_t c = x.size(1);
  if (v.dim() != 1 || v.size(0) != c)
    throw ShapeError(
        fmt::format("{}: {} {} must be [{}] for input {}", op, name, text(v), c, text(x)));
  Shape shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = c;
  return v.reshape(shape);
}

Tensor affine(const char* op, Tensor y, const Tensor& weight, const Tensor& bias, const Tensor& x) {
  if (weight.defined()) y = y * per_channel(op, "weight", weight, x);
  if (bias.defined()) y = y + per_channel(op, "bias", bias, x);
  return y;
}

// running = (1 - momentum) * running + momentum * value, in place, recording no history.
void update_running(const Tensor& running, const Tensor& value, double momentum) {
  NoGradGuard no_grad;
  running.mul_(1 - momentum).add_(value.detach().to(running.dtype()), momentum);
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  require_channels("batch_norm", x);
  if (running_mean.defined() != running_var.defined())
    throw ShapeError("batch_norm: running_mean and running_var must both be given or neither");
  Shape dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  Tensor mean, var;
  if (training || !running_mean.defined()) {
    const int64_t n = x.numel() / x.size(1);
    if (training && n <= 1)
      throw ShapeError(fmt::format(
          "batch_norm: expected more than 1 value per channel when training, got input {}",
          text(x)));
    mean = x.mean(dims, true);
    var = x.var(dims, 0, true);
    if (training && running_mean.defined()) {
      per_channel("batch_norm", "running_mean", running_mean, x);
      per_channel("batch_norm", "running_var", running_var, x);
      update_running(running_mean, mean.reshape({-1}), momentum);
      update_running(running_var, var.reshape({-1}) * (static_cast<double>(n) / (n - 1)), momentum);
    }
  } else {
    mean = per_channel("batch_norm", "running_mean", running_mean, x).to(x.dtype());
    var = per_channel("batch_norm", "running_var", running_var, x).to(x.dtype());
  }
  return affine("batch_norm", (x - mean) * (var + eps).rsqrt(), weight, bias, x);
}

Tensor instance_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                     const Tensor& weight, const Tensor& bias, bool use_input_stats,
                     double momentum, double eps) {
  require_channels("instance_norm", x);
  if (x.dim() < 3)
    throw ShapeError(fmt::format("instance_norm: input {} must be [N, C, *spatial]", text(x)));
  if (!use_input_stats) {
    if (!running_mean.defined() || !running_var.defined())
      throw ShapeError("instance_norm: use_input_stats=false needs running_mean and running_var");
    return batch_norm(x, running_mean, running_var, weight, bias, false, momentum, eps);
  }
  // As PyTorch: an instance's statistics need more than one element.
  const int64_t n = x.numel() / std::max<int64_t>(x.size(0) * x.size(1), 1);
  if (n <= 1)
    throw ShapeError(fmt::format(
        "instance_norm: expected more than 1 spatial element when using the input's statistics, "
        "got input {}",
        text(x)));
  Shape dims;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  Tensor mean = x.mean(dims, true), var = x.var(dims, 0, true);
  if (running_mean.defined() != running_var.defined())
    throw ShapeError("instance_norm: running_mean and running_var must both be given or neither");
  if (running_mean.defined()) {
    // As PyTorch: the batch's mean of each instance's statistics (the variance unbiased).
    per_channel("instance_norm", "running_mean", running_mean, x);
    per_channel("instance_norm", "running_var", running_var, x);
    update_running(running_mean, mean.mean({0}).reshape({-1}), momentum);
    update_running(
        running_var,
        var.mean({0}).reshape({-1}) * (static_cast<double>(n) / static_cast<double>(n - 1)),
        momentum);
  }
  return affine("instance_norm", (x - mean) * (var + eps).rsqrt(), weight, bias, x);
}

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias,
                  double eps) {
  require_channels("group_norm", x);
  if (num_groups < 1 || x.size(1) % num_groups != 0)
    throw ShapeError(
        fmt::format("group_norm: the {} channels of input {} are not divisible into "
                    "{} groups",
                    x.size(1), text(x), num_groups));
  Tensor g = x.reshape({x.sym_sizes()[0], SymInt(num_groups), SymInt(-1)});
  Tensor y = (g - g.mean({2}, true)) * (g.var({2}, 0, true) + eps).rsqrt();
  return affine("group_norm", y.reshape(x.sym_sizes()), weight, bias, x);
}

Tensor local_response_norm(const Tensor& x, int64_t size, double alpha, double beta, double k) {
  require_channels("local_response_norm", x);
  if (x.dim() < 3)
    throw ShapeError(
        fmt::format("local_response_norm: input {} must be [N, C, *spatial]", text(x)));
  if (size < 1)
    throw ShapeError(fmt::format("local_response_norm: size {} must be positive", size));
  // The mean of x² over `size` neighbouring channels, zeros beyond the ends (PyTorch pads
  // size/2 before and (size-1)/2 after, and averages over the whole window).
  const int64_t c = x.size(1);
  Tensor sq = (x * x).reshape({x.sym_sizes()[0], SymInt(1), SymInt(c), SymInt(-1)});
  WindowGeometry w{{size, 1}, {1, 1}, {size / 2, 0}, {(size - 1) / 2, 0}, {1, 1}};
  Tensor div = im2col(sq, w).sum({1}) / static_cast<double>(size);
  div = (div.reshape(x.sym_sizes()) * alpha + k).pow(beta);
  return x / div;
}

}  // namespace kiln
