// nn::Module: registration, traversal by dotted names, state dicts, train/eval, moves.
#include <fmt/format.h>

#include <functional>
#include <set>

#include "kiln/autograd.h"
#include "kiln/error.h"
#include "kiln/nn.h"
#include "support/text.h"
#include "tensor/tensor_impl.h"

namespace kiln::nn {

namespace {

void check_name(const std::string& name, const char* what) {
  if (name.empty() || name.find('.') != std::string::npos)
    throw Error(
        fmt::format("register_{}: name '{}' must be non-empty and without '.'", what, name));
}

}  // namespace

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_name(name, "parameter");
  for (const auto& [n, t] : parameters_)
    if (n == name) throw Error(fmt::format("register_parameter: '{}' is registered already", name));
  if (value.defined() && requires_grad) value.requires_grad_();
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_name(name, "buffer");
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name, "module");
  if (!module) throw Error(fmt::format("register_module: '{}' is null", name));
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, bool recurse, bool buffers,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : buffers ? buffers_ : parameters_)
    if (t.defined()) out.emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_)
    child->collect(prefix + name + ".", true, buffers, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", recurse, false, out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", recurse, true, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

TensorMap Module::state_dict() const {
  TensorMap out;
  for (auto& [name, t] : named_parameters()) out[name] = t.detach();
  for (auto& [name, t] : named_buffers()) out[name] = t.detach();
  return out;
}

void Module::load_state_dict(const TensorMap& state, bool strict) {
  std::set<std::string> seen;
  NoGradGuard no_grad;  // copying values into parameters records no history
  auto load = [&](const std::string& name, const Tensor& t) {
    auto it = state.find(name);
    if (it == state.end()) {
      if (strict) throw Error(fmt::format("load_state_dict: missing '{}'", name));
      return;
    }
    if (it->second.sizes() != t.sizes())
      throw Error(fmt::format("load_state_dict: '{}' has shape {} in the state, {} in the module",
                              name, shape_string(it->second.sizes()), shape_string(t.sizes())));
    t.copy_(it->second);
    seen.insert(name);
  };
  for (auto& [name, t] : named_parameters()) load(name, t);
  for (auto& [name, t] : named_buffers()) load(name, t);
  if (strict)
    for (const auto& [name, t] : state)
      if (!seen.count(name))
        throw Error(fmt::format("load_state_dict: unexpected '{}' (not in the module)", name));
}

namespace {

// Parameters and buffers are converted in place: every Tensor referring to one (a module's
// member, an optimizer's list) sees the new elements. `convert` makes the new tensor.
void convert_in_place(const Tensor& t, const std::function<Tensor(const Tensor&)>& convert) {
  Tensor converted = convert(t);
  Tensor grad = t.grad();
  TensorImpl& impl = *t.impl();
  impl.storage = converted.impl()->storage;
  impl.strides = converted.impl()->strides;
  impl.offset = converted.impl()->offset;
  impl.device = converted.device();
  impl.dtype = converted.dtype();
  impl.history_epoch = impl.storage->history_epoch;
  if (grad.defined()) t.set_grad(convert(grad));
}

}  // namespace

void Module::to(Device device) {
  NoGradGuard no_grad;
  for_each_tensor([device](const Tensor& t) {
    if (t.defined() && t.device() != device)
      convert_in_place(t, [device](const Tensor& x) { return x.to(device); });
  });
}

void Module::to(DType dtype) {
  if (!is_floating(dtype))
    throw Error(fmt::format("Module::to({}): only floating-point dtypes (as torch's Module.to)",
                            dtype_name(dtype)));
  // Integer and bool tensors keep their dtype (as in PyTorch).
  NoGradGuard no_grad;
  for_each_tensor([dtype](const Tensor& t) {
    if (t.defined() && t.dtype() != dtype && is_floating(t.dtype()))
      convert_in_place(t, [dtype](const Tensor& x) { return x.to(dtype); });
  });
}

void Module::for_each_tensor(const std::function<void(const Tensor&)>& f) const {
  for (const auto& [name, t] : named_parameters()) f(t);
  for (const auto& [name, t] : named_buffers()) f(t);
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.set_grad({});
}

}  // namespace kiln::nn
