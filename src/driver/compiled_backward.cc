#include "driver/compiled_backward.h"

#include <fmt/format.h>

#include "autograd/graph.h"
#include "kiln/autograd.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "tensor/tensor_impl.h"

namespace kiln {

BackwardPlan trace_backward(Tracer& tracer, const std::vector<Tensor>& call_inputs,
                            size_t num_scalar_inputs, const std::vector<Tensor>& results,
                            std::vector<Tensor>* grads) {
  BackwardPlan plan;
  std::vector<Tensor> roots, tangents, wrt;
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].requires_grad()) continue;
    plan.grad_results.push_back(i);
    roots.push_back(results[i]);
    tangents.push_back(
        tracer.add_tangent_input({results[i].dtype(), tracer.symbolic_shape(results[i])}));
  }
  if (plan.empty()) return plan;
  for (size_t i = 0; i < call_inputs.size(); ++i)
    if (call_inputs[i].requires_grad()) {
      plan.wrt_args.push_back(i);
      wrt.push_back(call_inputs[i]);
    }
  const std::vector<Tensor>& captured = tracer.captured();
  for (size_t j = 0; j < captured.size(); ++j)
    if (captured[j].requires_grad()) {
      plan.wrt_args.push_back(call_inputs.size() + num_scalar_inputs + j);
      wrt.push_back(captured[j]);
    }
  *grads = kiln::grad(roots, wrt, tangents, /*retain_graph=*/false, /*allow_unused=*/true);
  for (size_t k = 0; k < grads->size(); ++k)
    if (!(*grads)[k].defined()) (*grads)[k] = zeros_like(wrt[k]);
  return plan;
}

std::shared_ptr<Executable> backward_executable(const CompiledBackward& backward) {
  std::lock_guard<std::mutex> lock(backward.compiled->mutex);
  if (!backward.compiled->executable) backward.compiled->executable = backward.compile();
  return backward.compiled->executable;
}

std::shared_ptr<Executable> backward_executable_if_compiled(const CompiledBackward& backward) {
  // A backward() compiling it now holds the lock for the compile's length: not compiled yet.
  std::unique_lock<std::mutex> lock(backward.compiled->mutex, std::try_to_lock);
  return lock.owns_lock() ? backward.compiled->executable : nullptr;
}

void attach_backward(const std::shared_ptr<const CompiledBackward>& backward,
                     const std::vector<Tensor>& args, std::vector<Tensor> saved,
                     const std::vector<Tensor>& results) {
  const BackwardPlan& plan = backward->plan;
  std::vector<Tensor> wrt;
  for (size_t a : plan.wrt_args) wrt.push_back(args.at(a));
  std::shared_ptr<GradNode> node = new_grad_node(std::nullopt, {}, wrt);
  node->name_override = backward->name;
  for (size_t r : plan.grad_results)
    node->output_meta.push_back({results[r].dtype(), results[r].device(), results[r].sizes()});
  for (size_t i : backward->saved_inputs) saved.push_back(args.at(i));
  node->custom = [backward, saved = std::move(saved)](const std::vector<Tensor>& grads) {
    std::vector<Tensor> inputs = saved;
    for (const Tensor& g : grads) inputs.push_back(g.contiguous());
    if (backward->first_run) std::call_once(*backward->first_run_once, backward->first_run, inputs);
    return backward_executable(*backward)->run(inputs);
  };
  for (size_t j = 0; j < plan.grad_results.size(); ++j)
    set_history(results[plan.grad_results[j]], node, static_cast<uint32_t>(j));
}

}  // namespace kiln
