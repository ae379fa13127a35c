// A loaded shared object (dlopen with RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE), released
// when the last owner lets go. Loading a shared object runs code: only load what kiln
// itself compiled, from the private cache or a worker's validated reply.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace kiln {

// What a translation unit's compiled bytes become once loaded: a shared object (CPU) or a
// CUDA module (src/cuda/module.h). symbol() gives a kernel's entry: a function address, or
// a CUfunction.
class KernelObject {
 public:
  virtual ~KernelObject() = default;
  // Throws Error naming the object when `symbol` is missing.
  virtual void* symbol(const std::string& symbol) const = 0;
  virtual const std::string& name() const = 0;
};

class SharedObject final : public KernelObject {
 public:
  // Loads an object from its bytes (validated by the caller: a cache entry's checksum, a
  // worker's reply) through an anonymous memory file, so no file anyone else can replace
  // is opened and a noexec /tmp does not matter. `name` names it in errors.
  static std::shared_ptr<SharedObject> load_bytes(std::string_view bytes, const std::string& name);
  ~SharedObject() override;
  SharedObject(const SharedObject&) = delete;
  SharedObject& operator=(const SharedObject&) = delete;
  // The address of `symbol`; throws Error naming the file when it is missing.
  void* symbol(const std::string& name) const override;
  const std::string& name() const override { return name_; }

 private:
  SharedObject(void* handle, std::string name) : handle_(handle), name_(std::move(name)) {}
  void* handle_;
  std::string name_;
};

}  // namespace kiln
