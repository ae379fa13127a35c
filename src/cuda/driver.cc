#include "cuda/driver.h"

#include <fmt/format.h>

#include <mutex>
#include <thread>

#include "kiln/error.h"
#include "support/dynamic_library.h"
#include "support/log.h"
#include "support/stats.h"

namespace kiln::cuda {

namespace {

// Values from the driver API's enums (cuda.h), which never change within a major ABI.
constexpr int kAttrMaxThreadsPerBlock = 1;
constexpr int kAttrMultiprocessorCount = 16;
constexpr int kAttrComputeMajor = 75;
constexpr int kAttrComputeMinor = 76;
constexpr unsigned kStreamNonBlocking = 1;

struct State {
  Driver fns{};
  CUcontext context = nullptr;
  CUstream stream = nullptr;
  DeviceInfo info;
  std::string problem;  // empty when usable
};

template <class Fn>
void resolve(void* handle, const char* symbol, Fn* fn, std::string* problem) {
  resolve_symbol(handle, "the CUDA driver (libcuda.so.1)", symbol, fn, problem);
}

std::string describe(const Driver& d, CUresult result) {
  const char *name = nullptr, *text = nullptr;
  if (d.cuGetErrorName) d.cuGetErrorName(result, &name);
  if (d.cuGetErrorString) d.cuGetErrorString(result, &text);
  return fmt::format("{} ({})", name ? name : fmt::format("CUresult {}", result),
                     text ? text : "no description");
}

void resolve_all(void* h, Driver& d, std::string* p) {
  resolve(h, "cuInit", &d.cuInit, p);
  resolve(h, "cuDriverGetVersion", &d.cuDriverGetVersion, p);
  resolve(h, "cuDeviceGetCount", &d.cuDeviceGetCount, p);
  resolve(h, "cuDeviceGet", &d.cuDeviceGet, p);
  resolve(h, "cuDeviceGetAttribute", &d.cuDeviceGetAttribute, p);
  resolve(h, "cuDeviceGetName", &d.cuDeviceGetName, p);
  resolve(h, "cuDevicePrimaryCtxRetain", &d.cuDevicePrimaryCtxRetain, p);
  resolve(h, "cuCtxSetCurrent", &d.cuCtxSetCurrent, p);
  resolve(h, "cuMemAlloc_v2", &d.cuMemAlloc, p);
  resolve(h, "cuMemFree_v2", &d.cuMemFree, p);
  resolve(h, "cuMemGetInfo_v2", &d.cuMemGetInfo, p);
  resolve(h, "cuMemcpyHtoDAsync_v2", &d.cuMemcpyHtoDAsync, p);
  resolve(h, "cuMemcpyDtoHAsync_v2", &d.cuMemcpyDtoHAsync, p);
  resolve(h, "cuMemcpyDtoDAsync_v2", &d.cuMemcpyDtoDAsync, p);
  resolve(h, "cuMemsetD8Async", &d.cuMemsetD8Async, p);
  resolve(h, "cuStreamCreate", &d.cuStreamCreate, p);
  resolve(h, "cuStreamSynchronize", &d.cuStreamSynchronize, p);
  resolve(h, "cuStreamBeginCapture_v2", &d.cuStreamBeginCapture, p);
  resolve(h, "cuStreamEndCapture", &d.cuStreamEndCapture, p);
  resolve(h, "cuGraphInstantiateWithFlags", &d.cuGraphInstantiate, p);
  resolve(h, "cuGraphLaunch", &d.cuGraphLaunch, p);
  resolve(h, "cuGraphExecDestroy", &d.cuGraphExecDestroy, p);
  resolve(h, "cuGraphDestroy", &d.cuGraphDestroy, p);
  resolve(h, "cuModuleLoadData", &d.cuModuleLoadData, p);
  resolve(h, "cuModuleGetFunction", &d.cuModuleGetFunction, p);
  resolve(h, "cuModuleUnload", &d.cuModuleUnload, p);
  resolve(h, "cuFuncSetAttribute", &d.cuFuncSetAttribute, p);
  resolve(h, "cuLaunchKernel", &d.cuLaunchKernel, p);
  resolve(h, "cuEventCreate", &d.cuEventCreate, p);
  resolve(h, "cuEventRecord", &d.cuEventRecord, p);
  resolve(h, "cuEventSynchronize", &d.cuEventSynchronize, p);
  resolve(h, "cuEventElapsedTime", &d.cuEventElapsedTime, p);
  resolve(h, "cuEventDestroy_v2", &d.cuEventDestroy, p);
  resolve(h, "cuMemHostAlloc", &d.cuMemHostAlloc, p);
  resolve(h, "cuGetErrorName", &d.cuGetErrorName, p);
  resolve(h, "cuGetErrorString", &d.cuGetErrorString, p);
}

// The toolkit libraries a process that uses the GPU goes on to need, NVRTC to compile
// kernels and cuBLASLt for matrix products, are opened on a thread of their own as soon as
// the GPU is set up: read from disk, they take a few hundred ms (cuBLASLt's alone ~300 ms
// on the H100 machine), which then overlaps the caller's setup instead of adding to its
// first compile. The later loads find them open. Nothing is initialized here.
void preload_toolkit_libraries() {
  std::thread([] {
    open_toolkit_library("libnvrtc", {13, 12});
    open_toolkit_library("libnvrtc-builtins", {});
    open_toolkit_library("libcublasLt", {13, 12});
  }).detach();
}

// Opens the driver, initializes it and sets up device 0; records the first problem.
void probe(State& s) {
  void* handle = open_first_library({"libcuda.so.1"});
  if (!handle) {
    s.problem = "libcuda.so.1 was not found (no NVIDIA driver on this machine)";
    return;
  }
  resolve_all(handle, s.fns, &s.problem);
  if (!s.problem.empty()) return;
  Driver& d = s.fns;
  auto step = [&](CUresult r, const char* what) {
    if (r != 0 && s.problem.empty()) s.problem = fmt::format("{}: {}", what, describe(d, r));
    return r == 0;
  };
  int count = 0;
  CUdevice device = 0;
  if (!step(d.cuInit(0), "cuInit") || !step(d.cuDeviceGetCount(&count), "cuDeviceGetCount")) return;
  if (count == 0) {
    s.problem = "the CUDA driver sees no GPU";
    return;
  }
  if (!step(d.cuDeviceGet(&device, 0), "cuDeviceGet") ||
      !step(d.cuDevicePrimaryCtxRetain(&s.context, device), "cuDevicePrimaryCtxRetain") ||
      !step(d.cuCtxSetCurrent(s.context), "cuCtxSetCurrent") ||
      !step(d.cuStreamCreate(&s.stream, kStreamNonBlocking), "cuStreamCreate"))
    return;
  int major = 0, minor = 0;
  char name[256] = {};
  d.cuDeviceGetAttribute(&major, kAttrComputeMajor, device);
  d.cuDeviceGetAttribute(&minor, kAttrComputeMinor, device);
  d.cuDeviceGetAttribute(&s.info.multiprocessors, kAttrMultiprocessorCount, device);
  d.cuDeviceGetAttribute(&s.info.max_threads_per_block, kAttrMaxThreadsPerBlock, device);
  d.cuDeviceGetName(name, sizeof name - 1, device);
  d.cuDriverGetVersion(&s.info.driver_version);
  s.info.name = name;
  s.info.arch = fmt::format("sm_{}{}", major, minor);
  preload_toolkit_libraries();
}

State& state() {
  static State& s = *[] {  // immortal: storages and pool threads may use it during exit
    auto* st = new State();
    probe(*st);
    return st;
  }();
  return s;
}

}  // namespace

bool available() { return state().problem.empty(); }
std::string unavailable_reason() { return state().problem; }

const Driver& driver() {
  State& s = state();
  if (!s.problem.empty()) throw Error("CUDA is not available: " + s.problem);
  // The primary context must be current on every thread that calls the driver.
  thread_local bool current = false;
  if (!current) {
    check(s.fns.cuCtxSetCurrent(s.context), "cuCtxSetCurrent");
    current = true;
  }
  return s.fns;
}

void check(CUresult result, const char* what) {
  if (result == 0) return;
  throw Error(fmt::format("{}: {}", what, describe(state().fns, result)));
}

CUstream stream() {
  driver();
  return state().stream;
}

void synchronize(const char* what) {
  const Driver& d = driver();
  bump(Stat::cuda_synchronizations);  // each one stalls the host until the GPU catches up
  if (log_enabled("cuda")) log_line("cuda", fmt::format("host waits for the GPU: {}", what));
  CUresult r = d.cuStreamSynchronize(state().stream);
  if (r != 0)
    throw Error(
        fmt::format("{}: a CUDA kernel failed: {} (the context is unusable after a device fault)",
                    what, describe(d, r)));
}

const DeviceInfo& device_info() {
  driver();
  return state().info;
}

}  // namespace kiln::cuda
