// The native CPU backend: a CompiledPlan whose units were compiled to shared objects, run
// as kernel launches and ext steps over buffers that are freed after their last reader.
#include <fmt/format.h>


#include "compile/shared_object.h"
#include "eager/dispatch.h"
#include "eager/interpreter.h"
#include "kiln/error.h"
#include "runtime/executable.h"
#include "support/stats.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

using KernelFn = void (*)(const int64_t*, char* const*);

class NativeExecutable final : public Executable {
 public:
  NativeExecutable(CompiledPlan plan, const std::vector<std::shared_ptr<SharedObject>>& objects)
      : p_(std::move(plan)), objects_(objects) {
    const Graph& g = p_.graph;
    for (const KernelLaunch& k : p_.kernels)
      fns_.push_back(reinterpret_cast<KernelFn>(objects_.at(static_cast<size_t>(k.unit))->symbol(k.name)));
    // Free each value after the last step that reads it.
    last_use_.assign(static_cast<size_t>(g.num_values()), -1);
    for (size_t s = 0; s < p_.steps.size(); ++s) {
      const PlanStep& step = p_.steps[s];
      auto reads = step.kind == PlanStep::Kind::Kernel ? p_.kernels[static_cast<size_t>(step.kernel)].params
                                                       : g.nodes[static_cast<size_t>(step.node)].inputs;
      for (ValueId v : reads) last_use_[v] = static_cast<int64_t>(s);
    }
    for (ValueId v : g.outputs) last_use_[v] = static_cast<int64_t>(p_.steps.size());
    // In-place candidates: an elementwise kernel reads every input at the index it writes,
    // so it may write over an intermediate of its dtype that dies at this step.
    inplace_.assign(p_.steps.size(), -1);
    for (size_t s = 0; s < p_.steps.size(); ++s) {
      const PlanStep& step = p_.steps[s];
      if (step.kind != PlanStep::Kind::Kernel) continue;
      const KernelLaunch& k = p_.kernels[static_cast<size_t>(step.kernel)];
      if (!k.elementwise || k.outputs.size() != 1) continue;
      for (size_t i = 1; i < k.params.size(); ++i) {
        ValueId v = k.params[i];
        if (g.node_index(v) >= 0 && last_use_[v] == static_cast<int64_t>(s) &&
            g.value_type(v).dtype == g.value_type(k.outputs[0]).dtype) {
          inplace_[s] = v;
          break;
        }
      }
    }
  }

  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    const Graph& g = p_.graph;
    std::vector<int64_t> bindings = bind_inputs(g, inputs);
    std::vector<Tensor> slots(static_cast<size_t>(g.num_values()));
    for (size_t i = 0; i < inputs.size(); ++i)
      slots[i] = p_.read_by_kernel[i] ? contiguous_eager(inputs[i]) : inputs[i];
    for (size_t c = 0; c < g.constants.size(); ++c) slots[g.inputs.size() + c] = g.constants[c].value;
    std::vector<char*> buffers;
    for (size_t s = 0; s < p_.steps.size(); ++s) {
      const PlanStep& step = p_.steps[s];
      if (step.kind == PlanStep::Kind::Kernel) {
        const KernelLaunch& k = p_.kernels[static_cast<size_t>(step.kernel)];
        for (ValueId v : k.outputs) {
          Shape shape;
          for (const Dim& d : g.value_type(v).shape) shape.push_back(d.eval(bindings));
          slots[v] = reuse(s, slots, shape);
          if (!slots[v].defined()) slots[v] = make_tensor(shape, g.value_type(v).dtype);
        }
        buffers.clear();
        for (ValueId v : k.params) buffers.push_back(slots[v].impl()->data_ptr());
        fns_[static_cast<size_t>(step.kernel)](bindings.data(), buffers.data());
      } else {
        const Node& node = g.nodes[static_cast<size_t>(step.node)];
        const ValueId out = g.node_value(static_cast<size_t>(step.node));
        std::vector<Tensor> args;
        for (ValueId v : node.inputs) args.push_back(slots[v]);
        Tensor result = run_node(node, args, bindings);
        slots[out] = p_.read_by_kernel[out] ? contiguous_eager(result) : result;
      }
      for (size_t i = g.inputs.size() + g.constants.size(); i < slots.size(); ++i)
        if (last_use_[i] == static_cast<int64_t>(s)) slots[i] = Tensor();
    }
    std::vector<Tensor> outputs;
    for (ValueId v : g.outputs) outputs.push_back(owned_output(g, slots[v], inputs));
    return outputs;
  }

  std::string_view backend_name() const override { return "cpp"; }

 private:
  // The storage of step `s`'s in-place candidate, when nothing else refers to it (an eager
  // view could share it) and it holds exactly `shape`'s elements; else undefined.
  Tensor reuse(size_t s, const std::vector<Tensor>& slots, const Shape& shape) const {
    ValueId v = inplace_[s];
    if (v < 0) return Tensor();
    const Tensor& t = slots[v];
    if (!t.defined() || t.impl_ptr().use_count() != 1 || t.impl()->storage.use_count() != 1 ||
        t.offset() != 0 || !t.is_contiguous() || t.numel() != shape_numel(shape))
      return Tensor();
    bump(Stat::executor_inplace);
    return make_view(t, shape, contiguous_strides(shape), 0);
  }

 public:
  std::vector<std::string> kernel_names() const override {
    std::vector<std::string> names;
    for (const PlanStep& s : p_.steps)
      names.push_back(s.kind == PlanStep::Kind::Kernel ? p_.kernels[static_cast<size_t>(s.kernel)].name
                                                   : fmt::format("ext:{}", op_name(p_.graph.nodes[static_cast<size_t>(s.node)].op)));
    return names;
  }

  std::vector<KernelInfo> kernels() const override {
    std::vector<KernelInfo> out;
    for (const KernelLaunch& k : p_.kernels) out.push_back({k.name, config_text(k.config), k.tuning});
    return out;
  }

  std::string build_options() const override { return p_.options; }

 private:
  CompiledPlan p_;
  std::vector<std::shared_ptr<SharedObject>> objects_;  // per unit
  std::vector<KernelFn> fns_;                            // per kernel
  std::vector<int64_t> last_use_;
  std::vector<ValueId> inplace_ = {};  // per step: an input its output may overwrite, or -1
};

}  // namespace

std::unique_ptr<Executable> make_native_executable(CompiledPlan plan,
                                                   const std::vector<std::shared_ptr<SharedObject>>& objects) {
  return std::make_unique<NativeExecutable>(std::move(plan), objects);
}

}  // namespace kiln
