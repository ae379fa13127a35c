// The CUDA driver, reached at run time: libcuda.so.1 is opened with dlopen on first use, so
// kiln links against no CUDA library and a build runs unchanged on a machine with no GPU
// and no driver (every CUDA entry then raises Error saying why). The declarations below
// are the driver API's stable C ABI (CUresult is an int, handles are opaque pointers,
// device pointers 64-bit integers); kiln declares them itself so that building needs no
// CUDA header either.
//
// kiln uses device 0's primary context and one stream of its own: every eager kernel,
// compiled launch and copy is ordered on it, so the caching allocator may hand a freed
// block to the next allocation at once (docs/design.md §3, src/cuda/device_memory.h).
#pragma once

#include <cstdint>
#include <string>

namespace kiln::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUfunction = struct CUfunc_st*;
using CUstream = struct CUstream_st*;
using CUevent = struct CUevent_st*;
using CUgraph = struct CUgraph_st*;
using CUgraphExec = struct CUgraphExec_st*;

// The driver's entry points kiln calls; resolved once, never unloaded.
struct Driver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDriverGetVersion)(int*);
  CUresult (*cuDeviceGetCount)(int*);
  CUresult (*cuDeviceGet)(CUdevice*, int);
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice);
  CUresult (*cuDeviceGetName)(char*, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuMemAlloc)(CUdeviceptr*, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemGetInfo)(size_t*, size_t*);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void*, size_t, CUstream);
  CUresult (*cuMemcpyDtoHAsync)(void*, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
  CUresult (*cuStreamCreate)(CUstream*, unsigned);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuStreamBeginCapture)(CUstream, int);
  CUresult (*cuStreamEndCapture)(CUstream, CUgraph*);
  CUresult (*cuGraphInstantiate)(CUgraphExec*, CUgraph, unsigned long long);
  CUresult (*cuGraphLaunch)(CUgraphExec, CUstream);
  CUresult (*cuGraphExecDestroy)(CUgraphExec);
  CUresult (*cuGraphDestroy)(CUgraph);
  CUresult (*cuModuleLoadData)(CUmodule*, const void*);
  CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuFuncSetAttribute)(CUfunction, int, int);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void**, void**);
  CUresult (*cuEventCreate)(CUevent*, unsigned);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  CUresult (*cuEventSynchronize)(CUevent);
  CUresult (*cuEventElapsedTime)(float*, CUevent, CUevent);
  CUresult (*cuEventDestroy)(CUevent);
  CUresult (*cuMemHostAlloc)(void**, size_t, unsigned);
  CUresult (*cuGetErrorName)(CUresult, const char**);
  CUresult (*cuGetErrorString)(CUresult, const char**);
};

// Whether a CUDA GPU can be used here: the driver loads, initializes and has a device.
// Never throws; the first call does the probe (and creates the context and stream).
bool available();
// Why not, when !available(): "libcuda.so.1 was not found (no NVIDIA driver)", ...
std::string unavailable_reason();

// The loaded driver with device 0's context current on the calling thread; Error when no
// GPU can be used (the message says why).
const Driver& driver();
// Throws Error "<what>: CUDA_ERROR_NAME (description)" unless `result` is success.
void check(CUresult result, const char* what);

// kiln's stream on device 0.
CUstream stream();
// Waits until everything queued on kiln's stream has finished, then raises any error a
// kernel left (naming `what`).
void synchronize(const char* what);

struct DeviceInfo {
  std::string name;  // "NVIDIA H100 80GB HBM3"
  std::string arch;  // "sm_90": what NVRTC compiles for
  int multiprocessors = 0;
  int max_threads_per_block = 0;
  int driver_version = 0;  // 13000
};
const DeviceInfo& device_info();

}  // namespace kiln::cuda
