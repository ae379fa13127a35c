// Losses, as torch.nn.functional's, composed of kiln's ops (so autograd differentiates them
// and compile() fuses them).
#include <fmt/format.h>

#include "kiln/error.h"
#include "kiln/nn.h"
#include "kiln/ops.h"
#include "support/text.h"

namespace kiln {

namespace {

Tensor reduced(const Tensor& per_element, const std::string& reduction, const char* loss) {
  if (reduction == "mean") return per_element.mean();
  if (reduction == "sum") return per_element.sum();
  if (reduction == "none") return per_element;
  throw Error(fmt::format("{}: reduction must be \"mean\", \"sum\" or \"none\", not \"{}\"", loss,
                          reduction));
}

// The log-probabilities [N, C] and targets [N] of a classification loss, checked.
void check_classes(const Tensor& scores, const Tensor& target, const char* loss) {
  if (scores.dim() != 2 || target.dim() != 1 || target.sizes()[0] != scores.sizes()[0])
    throw ShapeError(fmt::format("{}: expected input [N, C] and target [N], got {} and {}", loss,
                                 shape_string(scores.sizes()), shape_string(target.sizes())));
  if (!is_integral(target.dtype()))
    throw Error(fmt::format("{}: target must hold class indices (i32 or i64), not {}", loss,
                            dtype_name(target.dtype())));
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  Tensor d = input - target;
  return reduced(d * d, reduction, "mse_loss");
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const std::string& reduction) {
  check_classes(log_probs, target, "nll_loss");
  Tensor picked = gather(log_probs, 1, target.unsqueeze(1)).squeeze(1);
  return reduced(-picked, reduction, "nll_loss");
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const std::string& reduction,
                     double label_smoothing) {
  if (logits.dim() == 1)
    return cross_entropy(logits.unsqueeze(0), target.reshape({1}), reduction, label_smoothing);
  check_classes(logits, target, "cross_entropy");
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
    throw Error(
        fmt::format("cross_entropy: label_smoothing must be in [0, 1], not {}", label_smoothing));
  Tensor logp = logits.log_softmax(1);
  Tensor nll = -gather(logp, 1, target.unsqueeze(1)).squeeze(1);
  if (label_smoothing == 0.0) return reduced(nll, reduction, "cross_entropy");
  // PyTorch: (1 - e) * nll + e * mean over classes of -log p.
  double classes = static_cast<double>(logits.sizes()[1]);
  Tensor smooth = -logp.sum({1}) / classes;
  return reduced(nll * (1.0 - label_smoothing) + smooth * label_smoothing, reduction,
                 "cross_entropy");
}

}  // namespace kiln
