// The native CPU backend: a CompiledPlan whose units were compiled to shared objects; each
// kernel launch is a call of its function (PlanExecutable runs the steps).
#include "compile/shared_object.h"
#include "runtime/executable.h"
#include "runtime/plan_executable.h"

namespace kiln {

namespace {

using KernelFn = void (*)(const int64_t*, char* const*);

class NativeExecutable final : public PlanExecutable {
 public:
  NativeExecutable(CompiledPlan plan, const std::vector<std::shared_ptr<KernelObject>>& objects)
      : PlanExecutable(std::move(plan)), objects_(objects) {
    backend_ = "cpp";
    for (const KernelLaunch& k : this->plan().kernels)
      fns_.push_back(
          reinterpret_cast<KernelFn>(objects_.at(static_cast<size_t>(k.unit))->symbol(k.symbol)));
    describe_launches();
  }
  std::string_view backend_name() const override { return "cpp"; }

 private:
  void launch(size_t kernel, const std::vector<int64_t>& bindings,
              const std::vector<char*>& buffers) override {
    fns_[kernel](bindings.data(), buffers.data());
  }

  std::vector<std::shared_ptr<KernelObject>> objects_;  // per unit
  std::vector<KernelFn> fns_;                           // per kernel
};

}  // namespace

std::unique_ptr<Executable> make_native_executable(
    CompiledPlan plan, const std::vector<std::shared_ptr<KernelObject>>& objects) {
  if (plan.device == Device::cuda) return make_cuda_executable(std::move(plan), objects);
  return std::make_unique<NativeExecutable>(std::move(plan), objects);
}

}  // namespace kiln
