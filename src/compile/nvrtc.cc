#include "compile/nvrtc.h"

#include <fmt/format.h>

#include <mutex>
#include <vector>

#include "kiln/error.h"
#include "support/dynamic_library.h"
#include "support/spans.h"

namespace kiln {

namespace {

// The entry points kiln uses, with NVRTC's C ABI (nvrtcResult is an int-sized enum,
// nvrtcProgram an opaque pointer).
struct Nvrtc {
  using Program = void*;
  const char* (*error_string)(int) = nullptr;
  int (*version)(int*, int*) = nullptr;
  int (*create)(Program*, const char*, const char*, int, const char* const*,
                const char* const*) = nullptr;
  int (*compile)(Program, int, const char* const*) = nullptr;
  int (*log_size)(Program, size_t*) = nullptr;
  int (*log)(Program, char*) = nullptr;
  int (*cubin_size)(Program, size_t*) = nullptr;
  int (*cubin)(Program, char*) = nullptr;
  int (*destroy)(Program*) = nullptr;
  std::string problem;  // why it could not be loaded
};

template <class Fn>
void resolve(void* handle, const char* symbol, Fn* fn, std::string* problem) {
  resolve_symbol(handle, "libnvrtc", symbol, fn, problem);
}

const Nvrtc& nvrtc() {
  static const Nvrtc& loaded = *[] {  // immortal: compile threads may outlive exit handlers
    auto* n_ptr = new Nvrtc();
    Nvrtc& n = *n_ptr;
    void* handle = open_toolkit_library("libnvrtc", {13, 12});
    if (!handle) {
      n.problem = "libnvrtc (the CUDA toolkit's runtime compiler) was not found; set CUDA_HOME";
      return n_ptr;
    }
    resolve(handle, "nvrtcGetErrorString", &n.error_string, &n.problem);
    resolve(handle, "nvrtcVersion", &n.version, &n.problem);
    resolve(handle, "nvrtcCreateProgram", &n.create, &n.problem);
    resolve(handle, "nvrtcCompileProgram", &n.compile, &n.problem);
    resolve(handle, "nvrtcGetProgramLogSize", &n.log_size, &n.problem);
    resolve(handle, "nvrtcGetProgramLog", &n.log, &n.problem);
    resolve(handle, "nvrtcGetCUBINSize", &n.cubin_size, &n.problem);
    resolve(handle, "nvrtcGetCUBIN", &n.cubin, &n.problem);
    resolve(handle, "nvrtcDestroyProgram", &n.destroy, &n.problem);
    return n_ptr;
  }();
  return loaded;
}

const Nvrtc& loaded_nvrtc() {
  const Nvrtc& n = nvrtc();
  if (!n.problem.empty()) throw Error(n.problem);
  return n;
}

bool is_arch(const std::string& arch) {
  return arch.size() >= 5 && arch.size() <= 8 && arch.rfind("sm_", 0) == 0 &&
         arch.find_first_not_of("0123456789a", 3) == std::string::npos;
}

}  // namespace

bool nvrtc_available() { return nvrtc().problem.empty(); }

std::string nvrtc_version() {
  const Nvrtc& n = loaded_nvrtc();
  int major = 0, minor = 0;
  n.version(&major, &minor);
  return fmt::format("{}.{}", major, minor);
}

std::string compile_cuda(const std::string& name, const std::string& source,
                         const std::string& arch) {
  if (!is_arch(arch))
    throw Error(fmt::format("kernel {}: '{}' is not a GPU architecture like sm_90", name, arch));
  const Nvrtc& n = loaded_nvrtc();
  SpanScope span("compile", "nvrtc " + name);
  Nvrtc::Program program = nullptr;
  const std::string file = name + ".cu";
  if (int rc = n.create(&program, source.c_str(), file.c_str(), 0, nullptr, nullptr); rc != 0)
    throw Error(fmt::format("kernel {}: nvrtcCreateProgram: {}", name, n.error_string(rc)));
  const std::string arch_option = "--gpu-architecture=" + arch;
  const char* options[] = {arch_option.c_str(), "--std=c++17", "-default-device"};
  int rc = n.compile(program, 3, options);
  size_t log_size = 0;
  n.log_size(program, &log_size);
  std::string log(log_size, '\0');
  if (log_size > 0) n.log(program, log.data());
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  if (rc != 0) {
    n.destroy(&program);
    throw CompileError(fmt::format("kernel {} failed to compile for {} (NVRTC {}: {}):\n{}", name,
                                   arch, nvrtc_version(), n.error_string(rc), log));
  }
  size_t size = 0;
  n.cubin_size(program, &size);
  std::string cubin(size, '\0');
  n.cubin(program, cubin.data());
  n.destroy(&program);
  if (cubin.empty())
    throw CompileError(fmt::format("kernel {}: NVRTC produced no cubin for {}", name, arch));
  return cubin;
}

}  // namespace kiln
