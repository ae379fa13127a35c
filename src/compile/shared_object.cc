#include "compile/shared_object.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include "kiln/error.h"

namespace kiln {

std::shared_ptr<SharedObject> SharedObject::load(const std::string& path) {
  // RTLD_NODELETE: code stays mapped after the last owner lets go, since an OpenMP pool
  // thread may still be returning through it.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!handle) throw Error(fmt::format("cannot load {}: {}", path, dlerror()));
  return std::shared_ptr<SharedObject>(new SharedObject(handle, path));
}

SharedObject::~SharedObject() { dlclose(handle_); }

void* SharedObject::symbol(const std::string& name) const {
  dlerror();
  void* p = dlsym(handle_, name.c_str());
  if (!p) throw Error(fmt::format("{}: no symbol {}", path_, name));
  return p;
}

}  // namespace kiln
