// A cubin loaded into kiln's CUDA context (cuModuleLoadData), unloaded when the last owner
// lets go. Like a shared object, loading runs code: only cubins kiln's workers compiled,
// from the private cache or a validated reply.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "compile/shared_object.h"

namespace kiln::cuda {

class Module final : public KernelObject {
 public:
  // Error naming `name` and the driver's reason when the driver rejects the bytes.
  static std::shared_ptr<Module> load_bytes(std::string_view cubin, const std::string& name);
  ~Module() override;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  // The CUfunction of kernel `symbol`.
  void* symbol(const std::string& symbol) const override;
  const std::string& name() const override { return name_; }

 private:
  Module(void* handle, std::string name) : handle_(handle), name_(std::move(name)) {}
  void* handle_;
  std::string name_;
};

}  // namespace kiln::cuda
