#include "support/blas.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>

#include "kiln/error.h"
#include "support/cpu_features.h"
#include "support/env.h"

namespace kiln {

namespace {

// The OpenMP build of OpenBLAS (CMakeLists.txt: it shares kiln's thread pool), found at
// configure time; its soname through the library path when that path is not there.
constexpr const char* kLibraries[] = {KILN_OPENBLAS_LIBRARY, "libopenblas.so.0"};
// oneDNN, likewise (KILN_DNNL_LIBRARY is empty when configure did not find it).
constexpr const char* kDnnlLibraries[] = {KILN_DNNL_LIBRARY, "libdnnl.so.2"};

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
  b.sgemm_library = "OpenBLAS";
  std::optional<std::string> choice = env_value("KILN_SGEMM");
  if (choice && *choice != "openblas" && *choice != "onednn")
    throw Error(
        fmt::format("KILN_SGEMM: '{}' is not accepted (accepted: openblas, onednn)", *choice));
  if (choice && *choice == "openblas") return b;
  // RTLD_GLOBAL: generated GEMM templates call dnnl_sgemm (codegen/gemm_template.cc).
  std::string dnnl_errors;
  for (const char* name : kDnnlLibraries) {
    if (*name == '\0') continue;
    if (void* dnnl = dlopen(name, RTLD_NOW | RTLD_GLOBAL)) {
      b.dnnl_sgemm = symbol<DnnlSgemm>(dnnl, "dnnl_sgemm", name);
      b.sgemm_library = "oneDNN";
      return b;
    }
    const char* why = dlerror();
    dnnl_errors += fmt::format("; {}: {}", name, why ? why : "dlopen failed");
  }
  if (choice) throw Error("KILN_SGEMM=onednn: cannot load oneDNN" + dnnl_errors);
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

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, float* c, int64_t ldc, float beta) {
  const Blas& lib = blas();
  if (lib.dnnl_sgemm) {
    int status = lib.dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b,
                                ldb, beta, c, ldc);
    if (status != 0)
      throw Error(
          fmt::format("sgemm: oneDNN refused [{}, {}] @ [{}, {}] (lda {}, ldb {}, ldc {}): "
                      "status {}",
                      m, k, k, n, lda, ldb, ldc, status));
    return;
  }
  for (int64_t v : {m, n, k, lda, ldb, ldc})
    if (v > INT32_MAX)
      throw Error(
          fmt::format("sgemm: [{}, {}] @ [{}, {}] exceeds OpenBLAS's int sizes", m, k, k, n));
  lib.sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
            int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

}  // namespace kiln
