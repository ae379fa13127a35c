// Recording history: the hooks eager/dispatch.h calls for ops, copies and in-place writes
// while an input requires grad, and Tensor's autograd methods (requires_grad_, grad,
// detach, ...). See graph.h for what the graph holds.
#include <fmt/format.h>

#include <atomic>
#include <mutex>

#include "autograd/derivatives.h"
#include "autograd/graph.h"
#include "eager/dispatch.h"
#include "kiln/autograd.h"
#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

thread_local bool t_grad_mode = true;
std::atomic<uint64_t> g_sequence{0};

uint64_t version_of(const Tensor& t) {
  return t.impl()->storage ? t.impl()->storage->version() : 0;
}

SavedTensor save(const Tensor& t) { return {alias_without_history(t), version_of(t)}; }

std::shared_ptr<GradNode> new_node(std::optional<Op> op, const Attrs& attrs,
                                   const std::vector<Tensor>& inputs) {
  return new_grad_node(op, attrs, inputs);
}

void record_op(Op op, const std::vector<Tensor>& inputs, const Attrs& attrs, const Tensor& out) {
  const char* name = op_name(op).data();
  for (const Tensor& in : inputs) check_history_current(in, name);
  if (!grad_mode_enabled()) return;
  bool wanted = false;
  for (const Tensor& in : inputs) wanted = wanted || in.impl()->requires_grad;
  if (!wanted || !is_floating(out.dtype())) return;  // integer and bool results: no gradient
  const Derivative* d = derivative_of(op);
  if (!d) {
    std::vector<std::string> shapes;
    for (const Tensor& in : inputs) shapes.push_back(shape_string(in.sizes()));
    throw Error(fmt::format(
        "{}: has no derivative, but an input requires grad (inputs {}); detach() it, or run the "
        "op under NoGradGuard",
        name, fmt::join(shapes, ", ")));
  }
  auto node = new_node(op, attrs, inputs);
  bool scalar_operand = attrs.find_scalar("scalar").has_value();
  bool saves_inputs = d->saves == Saves::inputs || d->saves == Saves::inputs_and_output ||
                      (d->saves == Saves::inputs_unless_scalar && !scalar_operand);
  if (saves_inputs)
    for (const Tensor& in : inputs) node->inputs.push_back(save(in));
  if (d->saves == Saves::output || d->saves == Saves::inputs_and_output) node->output = save(out);
  set_history(out, std::move(node));
}

void record_copy(const Tensor& input, const Tensor& out) {
  check_history_current(input, "copy");
  if (!grad_mode_enabled() || !input.impl()->requires_grad) return;
  set_history(out, new_node(std::nullopt, {}, {input}));
}

// self ← value in place. A leaf that requires grad refuses (its .grad would no longer be the
// gradient of anything); otherwise self takes value's history, and the storage's epoch moves
// on, so that other views of it (whose history no longer describes their elements) refuse
// to be used by autograd.
void record_assign(const Tensor& self, const Tensor& value) {
  check_history_current(self, "in-place op");
  if (!grad_mode_enabled()) return;
  TensorImpl& impl = *self.impl();
  bool leaf = impl.requires_grad && !(impl.autograd && impl.autograd->grad_fn);
  if (leaf)
    throw Error(fmt::format(
        "in-place op on a leaf tensor {} that requires grad: its .grad would no longer be the "
        "gradient of anything; update it under NoGradGuard (as optimizers do), or clone() it",
        shape_string(impl.sizes)));
  if (!impl.requires_grad && !value.impl()->requires_grad) return;
  if (impl.storage) ++impl.storage->history_epoch;
  if (!value.impl()->requires_grad) {  // the write replaced every element by a constant
    impl.requires_grad = false;
    impl.autograd = nullptr;
    impl.history_epoch = impl.storage ? impl.storage->history_epoch : 0;
    return;
  }
  const AutogradMeta* from = value.impl()->autograd.get();
  if (from && from->grad_fn) {
    set_history(self, from->grad_fn, from->output_nr);
  } else {
    set_history(self, new_node(std::nullopt, {}, {value}));
  }
}

const GradHooks kHooks{record_op, record_copy, record_assign};

}  // namespace

void set_history(const Tensor& t, std::shared_ptr<GradNode> node, uint32_t output_nr) {
  TensorImpl& impl = *t.impl();
  impl.requires_grad = true;
  impl.autograd = std::make_shared<AutogradMeta>();
  impl.autograd->grad_fn = std::move(node);
  impl.autograd->output_nr = output_nr;
  impl.history_epoch = impl.storage ? impl.storage->history_epoch : 0;
}

std::shared_ptr<GradNode> new_grad_node(std::optional<Op> op, const Attrs& attrs,
                                        const std::vector<Tensor>& inputs) {
  auto node = std::make_shared<GradNode>();
  node->op = op;
  node->attrs = attrs;
  node->sequence = g_sequence.fetch_add(1, std::memory_order_relaxed);
  for (const Tensor& in : inputs) {
    node->input_meta.push_back({in.dtype(), in.device(), in.sizes()});
    node->next.push_back(gradient_edge(in));
  }
  return node;
}

bool grad_mode_enabled() { return t_grad_mode; }
void set_grad_mode(bool enabled) { t_grad_mode = enabled; }

void install_grad_hooks() {
  static std::once_flag once;
  std::call_once(once, [] { set_grad_hooks(&kHooks); });
}

AutogradMeta& autograd_meta(const Tensor& t) {
  TensorImpl& impl = *t.impl();
  if (!impl.autograd) impl.autograd = std::make_shared<AutogradMeta>();
  return *impl.autograd;
}

Edge gradient_edge(const Tensor& t) {
  const TensorImpl& impl = *t.impl();
  if (!impl.requires_grad) return {};
  if (impl.autograd && impl.autograd->grad_fn)
    return {impl.autograd->grad_fn, impl.autograd->output_nr, nullptr};
  return {nullptr, 0, t.impl_ptr()};
}

void check_history_current(const Tensor& t, const char* op) {
  if (!t.impl()->history_stale()) return;
  throw Error(fmt::format(
      "{}: a tensor {} was modified in place through another view of its storage (or it is "
      "such a view), after its autograd history was recorded; kiln does not track gradients "
      "through in-place writes to views: write to a clone(), or use out-of-place ops",
      op, shape_string(t.sizes())));
}

void throw_released(const GradNode& node) {
  throw Error(fmt::format(
      "{}: trying to backward through the graph a second time (its saved tensors were freed "
      "after the first backward); pass retain_graph = true to the first backward()",
      node.name()));
}

std::string GradNode::name() const {
  if (!name_override.empty()) return name_override;
  std::string n = op ? std::string(op_name(*op)) : std::string("copy");
  if (!n.empty()) n[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(n[0])));
  return n + "Backward";
}

NoGradGuard::NoGradGuard() : previous_(grad_mode_enabled()) { set_grad_mode(false); }
NoGradGuard::~NoGradGuard() { set_grad_mode(previous_); }
bool is_grad_enabled() { return grad_mode_enabled(); }
void set_grad_enabled(bool enabled) { set_grad_mode(enabled); }

const Tensor& Tensor::requires_grad_(bool requires_grad) const {
  TensorImpl& impl = *impl_;
  if (!requires_grad) {
    if (impl.autograd && impl.autograd->grad_fn)
      throw Error(
          "requires_grad_(false) on a tensor computed from others that require grad; use "
          "detach() to take it out of the graph");
    impl.requires_grad = false;
    return *this;
  }
  if (!is_floating(impl.dtype))
    throw Error(fmt::format("requires_grad_: only floating tensors can require gradients, not {}",
                            dtype_name(impl.dtype)));
  install_grad_hooks();
  impl.requires_grad = true;
  autograd_meta(*this);
  return *this;
}

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

bool Tensor::is_leaf() const { return !(impl_ && impl_->autograd && impl_->autograd->grad_fn); }

Tensor Tensor::grad() const {
  if (!impl_ || !impl_->autograd) return Tensor();
  return impl_->autograd->grad;
}

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined() && (grad.sizes() != sizes() || grad.dtype() != dtype()))
    throw Error(fmt::format("set_grad: a gradient {} {} for a tensor {} {}",
                            dtype_name(grad.dtype()), shape_string(grad.sizes()),
                            dtype_name(dtype()), shape_string(sizes())));
  autograd_meta(*this).grad = grad;
}

std::string Tensor::grad_fn_name() const {
  if (!impl_ || !impl_->autograd || !impl_->autograd->grad_fn) return "";
  return impl_->autograd->grad_fn->name();
}

Tensor Tensor::detach() const {
  if (!impl_) return *this;
  return alias_without_history(*this);
}

}  // namespace kiln
