// NVRTC, reached at run time (dlopen of libnvrtc from the CUDA toolkit), so that kiln builds
// and runs without the toolkit and never links against it: CUDA C++ source to a cubin for
// one GPU architecture. Compiling needs no GPU and no driver, so compile workers (which
// never touch a GPU) do it. Thread-safe.
#pragma once

#include <string>

namespace kiln {

// Whether libnvrtc can be loaded here (searched on the library path, then under
// $CUDA_HOME/lib64 and /usr/local/cuda/lib64).
bool nvrtc_available();
// "13.0": the loaded NVRTC's version (part of CUDA kernel cache keys); Error if unavailable.
std::string nvrtc_version();

// Compiles `source` (which defines the extern "C" kernel `name`) for `arch` ("sm_90") to a
// cubin. CompileError naming the kernel, with NVRTC's log, when it does not compile; Error
// when NVRTC cannot be loaded.
std::string compile_cuda(const std::string& name, const std::string& source,
                         const std::string& arch);

}  // namespace kiln
