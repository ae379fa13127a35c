// Autograd, as libtorch's: tensors that require grad record how each result was computed,
// and backward() runs the derivatives in reverse, accumulating into the leaves' .grad.
//
//   Tensor w = randn({4, 3}).requires_grad_();
//   Tensor loss = matmul(x, w).relu().sum();
//   loss.backward();           // w.grad() is d loss / d w
//   { NoGradGuard no_grad; w.sub_(w.grad() * 0.1); }   // an update records no history
//
// Every op of the op set has its derivative (src/autograd/derivatives.cc); an op without one
// (argmax, comparisons, random draws) has no gradient, and an integer or bool result never
// requires grad. What autograd cannot follow is an Error, never a wrong gradient: a saved
// tensor written in place before backward, a second backward through freed saved tensors
// (retain_graph keeps them), an in-place write to a leaf that requires grad (outside
// NoGradGuard), a tensor whose storage another view wrote in place after its history was
// recorded.
#pragma once

#include <vector>

#include "kiln/tensor.h"

namespace kiln {

// Ops under a NoGradGuard record no history (this thread, for its lifetime).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};
bool is_grad_enabled();
void set_grad_enabled(bool enabled);

// torch.autograd.backward: the gradients of `outputs` (seeded with `grad_outputs`, ones for
// an empty list and scalar outputs) accumulated into the leaves' .grad.
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs = {},
              bool retain_graph = false);
// torch.autograd.grad: the gradients of `outputs` with respect to `inputs` (leaves or not),
// returned instead of accumulated; an input the outputs do not depend on gets an undefined
// tensor with allow_unused, an Error otherwise.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool allow_unused = false);

}  // namespace kiln
