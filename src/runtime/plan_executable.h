// What the native backends share: running a CompiledPlan's steps in order over value slots
// (buffers freed after their last reader, elementwise kernels writing over an input that
// dies with them), ext steps through the eager op executor, and describing each launch to
// the launch hooks, the profiler and the structured trace. A backend supplies the kernel
// launch itself: a call into a shared object (native_backend.cc) or cuLaunchKernel
// (cuda_backend.cc).
#pragma once

#include <string>
#include <vector>

#include "runtime/executable.h"
#include "runtime/plan.h"

namespace kiln {

class PlanExecutable : public Executable {
 public:
  explicit PlanExecutable(CompiledPlan plan);
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    return run_writing_into(inputs, {});
  }
  // Writes an output into its input's memory when the kernel computing it is elementwise,
  // the part of it that writes the output is the only one reading the input, no later step
  // and no ext step reads the input, and the input is contiguous, of the output's dtype and
  // sizes.
  std::vector<Tensor> run_writing_into(const std::vector<Tensor>& inputs,
                                       const std::vector<WriteInto>& into) override;
  std::vector<std::string> kernel_names() const override;
  std::vector<KernelInfo> kernels() const override;
  std::string build_options() const override { return p_.options; }

 protected:
  // Launches kernel `kernel` on `buffers` (its params' data, outputs first) with the size
  // symbols bound to `bindings`.
  virtual void launch(size_t kernel, const std::vector<int64_t>& bindings,
                      const std::vector<char*>& buffers) = 0;
  // Runs step `step`'s graph node through the eager op executor (library calls: matmuls).
  virtual Tensor run_ext(size_t step, const Node& node, const std::vector<Tensor>& args,
                         const std::vector<int64_t>& bindings);
  // Called once before the first step of every run, and after the last (device backends
  // put their stream's errors here).
  virtual void before_steps() {}
  virtual void after_steps() {}
  // Must be called by the backend's constructor, once its kernels can be described.
  void describe_launches();
  const CompiledPlan& plan() const { return p_; }
  // bind_inputs against the plan's graph and its size symbols' limits.
  std::vector<int64_t> bind(const std::vector<Tensor>& inputs) const;
  // Step `step`'s name in the profiler and the hooks (a kernel's, or "<backend>_ext_<op>_<step>").
  const std::string& launch_name(size_t step) const { return launches_.at(step).name; }
  // Backend name for profiler slices and ext step names ("cpp", "cuda").
  std::string backend_;
  int stream_id_ = 0;

 private:
  struct LaunchDescription {
    std::string name, kind, file, symbol, hash, kwargs;
  };
  template <class Launch>
  void observed(size_t s, const std::vector<ValueId>& reads, const std::vector<Tensor>& slots,
                Launch&& launch) const;
  bool is_written_by(size_t s, ValueId v) const;
  Tensor reuse(size_t s, const std::vector<Tensor>& slots, const Shape& shape) const;
  // The step at which output value `out` may be written into input `in`'s memory, or -1.
  int64_t write_into_step(ValueId out, ValueId in) const;

  CompiledPlan p_;
  std::vector<int64_t> symbol_limits_;  // bind_inputs' bound on each size symbol
  std::vector<int64_t> last_use_;
  std::vector<std::vector<ValueId>> dead_after_;  // per step: the intermediates it reads last
  std::vector<ValueId> inplace_;             // per step: an input its output may overwrite, or -1
  std::vector<int64_t> written_at_;          // per value: the kernel step writing it, or -1
  std::vector<bool> read_by_ext_;            // per value: an ext step reads it
  std::vector<LaunchDescription> launches_;  // per step
};

}  // namespace kiln
