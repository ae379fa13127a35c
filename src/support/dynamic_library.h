// Libraries kiln reaches at run time instead of linking (the CUDA driver, NVRTC,
// cuBLASLt): so a build runs, and reports why, where they are missing.
#pragma once

#include <string>
#include <vector>

namespace kiln {

// The first of `names` dlopen finds (RTLD_NOW | RTLD_LOCAL), or null; never unloaded.
void* open_first_library(const std::vector<std::string>& names);

// A CUDA toolkit library: `stem` with each of the major `versions` (".so.13"...), plain
// ".so", then under $CUDA_HOME/lib64 and /usr/local/cuda/lib64.
void* open_toolkit_library(const std::string& stem, const std::vector<int>& versions);

// The address of `symbol` in `library`, or null.
void* find_symbol(void* library, const char* symbol);
// Looks up `symbol` in `library` into `fn`; when missing, the first such problem is kept
// in `problem` ("<library_name> has no <symbol>").
template <class Fn>
void resolve_symbol(void* library, const char* library_name, const char* symbol, Fn* fn,
                    std::string* problem) {
  *fn = reinterpret_cast<Fn>(find_symbol(library, symbol));
  if (!*fn && problem->empty()) *problem = std::string(library_name) + " has no " + symbol;
}

}  // namespace kiln
