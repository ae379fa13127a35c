#include "support/dynamic_library.h"

#include <dlfcn.h>

#include <cstdlib>

namespace kiln {

void* open_first_library(const std::vector<std::string>& names) {
  for (const std::string& name : names)
    if (void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
  return nullptr;
}

void* open_toolkit_library(const std::string& stem, const std::vector<int>& versions) {
  std::vector<std::string> names;
  for (int v : versions) names.push_back(stem + ".so." + std::to_string(v));
  names.push_back(stem + ".so");
  for (const char* home : {static_cast<const char*>(std::getenv("CUDA_HOME")), "/usr/local/cuda"})
    if (home) names.push_back(std::string(home) + "/lib64/" + stem + ".so");
  return open_first_library(names);
}

void* find_symbol(void* library, const char* symbol) { return dlsym(library, symbol); }

}  // namespace kiln
