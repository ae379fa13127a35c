// The autograd graph: what every tensor that requires grad carries (AutogradMeta) and the
// backward nodes its history is made of. Built as ops run (src/autograd/record.cc, through
// the hooks of eager/dispatch.h), walked by the engine (engine.cc), whose node functions are
// the derivative table (derivatives.cc).
//
// Ownership points backward only: a tensor owns its grad_fn, a node owns the nodes of its
// inputs (and leaf tensors, whose .grad it accumulates). What a node saves for backward are
// aliases without history (alias_without_history), so no cycle holds a graph alive.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graph/attrs.h"
#include "graph/op.h"
#include "kiln/tensor.h"

namespace kiln {

struct GradNode;

struct AutogradMeta {
  std::shared_ptr<GradNode> grad_fn;  // null for a leaf
  Tensor grad;                        // a leaf's accumulated gradient
  uint32_t output_nr = 0;             // which output of grad_fn this tensor is
  // The storage's history_epoch when this tensor got its history: a tensor on a storage
  // whose epoch moved on was overtaken by an in-place op on another view of it.
  uint64_t history_epoch = 0;
};

// Where a node's input gradient goes: the node that computed the input, or the leaf whose
// .grad accumulates it; neither for an input that does not require grad.
struct Edge {
  std::shared_ptr<GradNode> node;
  uint32_t output_nr = 0;  // of node
  std::shared_ptr<TensorImpl> leaf;
  bool defined() const { return node || leaf; }
};

// A tensor saved for backward, with its storage's version then: a later in-place write to
// it makes backward an error instead of a silently wrong gradient.
struct SavedTensor {
  Tensor value;  // without history
  uint64_t version = 0;
};

// What an input looked like, to shape and type its gradient.
struct InputMeta {
  DType dtype;
  Device device;
  Shape sizes;
};

// A node's own backward, for nodes that are not one op (a compiled function's backward
// graph): the gradients of its outputs (zeros for those nothing used) -> per input.
using CustomBackward = std::function<std::vector<Tensor>(const std::vector<Tensor>& grads)>;

struct GradNode {
  std::optional<Op> op;  // none for a copy (clone, contiguous, to(Device)) or a custom node
  CustomBackward custom;
  std::vector<InputMeta> output_meta;  // a custom node's outputs (an op's one needs none)
  Attrs attrs;
  std::vector<SavedTensor> inputs;  // what the derivative reads, per input (may be empty)
  SavedTensor output;
  std::vector<InputMeta> input_meta;
  std::vector<Edge> next;     // per input
  uint64_t sequence = 0;      // creation order: later nodes run first
  bool released = false;      // backward ran without retain_graph: saved tensors freed
  std::string name_override;  // a custom node's name
  std::string name() const;   // "MulBackward", "CopyBackward", "CompiledFunctionBackward"
  size_t num_outputs() const { return custom ? output_meta.size() : 1; }
};

// Grad mode (NoGradGuard): off, ops record no history.
bool grad_mode_enabled();
void set_grad_mode(bool enabled);

// The autograd state of `t`, made on first use.
AutogradMeta& autograd_meta(const Tensor& t);
// The edge a gradient for `t` flows along (undefined when t does not require grad).
Edge gradient_edge(const Tensor& t);
// Throws when `t`'s history was overtaken by an in-place op on another view of its
// storage (naming `op`, the op about to use it).
void check_history_current(const Tensor& t, const char* op);
// Throws the Error of a backward through `node` after an earlier one freed its saved tensors.
[[noreturn]] void throw_released(const GradNode& node);
// Installs the hooks of eager/dispatch.h (once; requires_grad_ calls it).
void install_grad_hooks();
// Gives `t` the history: output `output_nr` of `node`.
void set_history(const Tensor& t, std::shared_ptr<GradNode> node, uint32_t output_nr = 0);
// A node over `inputs` (their edges and metadata), numbered after every earlier node.
std::shared_ptr<GradNode> new_grad_node(std::optional<Op> op, const Attrs& attrs,
                                        const std::vector<Tensor>& inputs);

}  // namespace kiln
