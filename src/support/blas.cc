#include "support/blas.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "kiln/error.h"
#include "support/cpu_features.h"

namespace kiln {

namespace {

// The OpenMP build of OpenBLAS (CMakeLists.txt: it shares kiln's thread pool), found at
// configure time; its soname through the library path when that path is not there.
constexpr const char* kLibraries[] = {KILN_OPENBLAS_LIBRARY, "libopenblas.so.0"};

template <class Fn>
Fn symbol(void* handle, const char* name, const std::string& library) {
  void* p = dlsym(handle, name);
  if (!p) throw Error(fmt::format("BLAS: {} has no symbol {}", library, name));
  return reinterpret_cast<Fn>(p);
}

Blas load() {
  std::vector<int> widths = cpu_vector_widths();
  auto has = [&](int w) { return std::find(widths.begin(), widths.end(), w) != widths.end(); };
  const std::string core = blas_core_for(has(512), has(256));
  const bool set_core = !core.empty() && !std::getenv("OPENBLAS_CORETYPE");
  if (set_core) setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  void* handle = nullptr;
  std::string library, errors;
  for (const char* name : kLibraries) {
    handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (handle) {
      library = name;
      break;
    }
    const char* why = dlerror();
    errors += fmt::format("; {}: {}", name, why ? why : "dlopen failed");
  }
  if (set_core) unsetenv("OPENBLAS_CORETYPE");  // the process's environment as it was
  if (!handle) throw Error("BLAS: cannot load OpenBLAS" + errors);
  Blas b;
  b.sgemm = symbol<decltype(b.sgemm)>(handle, "cblas_sgemm", library);
  b.dgemm = symbol<decltype(b.dgemm)>(handle, "cblas_dgemm", library);
  b.set_num_threads = symbol<void (*)(int)>(handle, "openblas_set_num_threads", library);
  auto corename = symbol<char* (*)()>(handle, "openblas_get_corename", library);
  b.core = corename();
  return b;
}

}  // namespace

std::string blas_core_for(bool avx512, bool avx2_fma) {
  if (avx512) return "SkylakeX";
  if (avx2_fma) return "Haswell";
  return "";
}

const Blas& blas() {
  static std::once_flag once;
  static Blas loaded;
  static std::string error;
  std::call_once(once, [] {
    try {
      loaded = load();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw Error(error);
  return loaded;
}

}  // namespace kiln
