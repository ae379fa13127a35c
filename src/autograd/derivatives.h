// The derivative table: for each op of src/graph/ops.def, how its input gradients follow from
// its output gradient, written with kiln's own ops (so the same formulas run eagerly and,
// traced, become backward graphs). derivatives.cc holds the table in ops.def's order; an op
// absent from it has no derivative (integer or bool results, random draws, argmax), which
// non_differentiable() lists, so that every op is one or the other (derivatives_test.cc).
#pragma once

#include <vector>

#include "autograd/graph.h"

namespace kiln {

// What a derivative reads: the node's saved tensors (an Error once backward freed them).
class GradContext {
 public:
  explicit GradContext(const GradNode& node) : node_(node) {}
  const Tensor& input(size_t i) const;
  const Tensor& output() const;
  const Attrs& attrs() const { return node_.attrs; }
  const InputMeta& meta(size_t i) const { return node_.input_meta.at(i); }
  size_t num_inputs() const { return node_.input_meta.size(); }
  // Whether input i's gradient is wanted (it requires grad).
  bool needs(size_t i) const { return node_.next.at(i).defined(); }

 private:
  const GradNode& node_;
};

// Per input, its gradient (undefined: none). Shapes may still be broadcast ones and dtypes
// the computation's: the engine sums and casts each to its input's.
using DerivativeFn = std::vector<Tensor> (*)(const GradContext& c, const Tensor& grad);

// Which of the node's values the derivative reads (what recording saves).
enum class Saves : uint8_t {
  nothing,
  inputs,
  output,
  inputs_and_output,
  inputs_unless_scalar,  // a binary op with a Scalar operand needs none
};

struct Derivative {
  DerivativeFn fn;
  Saves saves;
};

// The derivative of `op`; null when it has none.
const Derivative* derivative_of(Op op);
// The ops without a derivative, as the table leaves them out.
bool non_differentiable(Op op);
// The gradient of a copy (clone, contiguous, to(Device)): the same values, moved back.
Tensor copy_derivative(const InputMeta& input, const Tensor& grad);

}  // namespace kiln
