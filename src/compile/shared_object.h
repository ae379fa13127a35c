// A loaded shared object (dlopen with RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE), released
// when the last owner lets go. Loading a shared object runs code: only load what kiln
// itself compiled.
#pragma once

#include <memory>
#include <string>

namespace kiln {

class SharedObject {
 public:
  static std::shared_ptr<SharedObject> load(const std::string& path);
  ~SharedObject();
  SharedObject(const SharedObject&) = delete;
  SharedObject& operator=(const SharedObject&) = delete;
  // The address of `symbol`; throws Error naming the file when it is missing.
  void* symbol(const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  SharedObject(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  void* handle_;
  std::string path_;
};

}  // namespace kiln
