// Toolchains: C compilers that turn a kernel's source into a shared object, and NVRTC,
// which turns CUDA source into a cubin for one GPU architecture. Compiling is a
// pure function (source, toolchain) → bytes; caching wraps it (later), keyed by identity().
//   fast      tcc (no optimization, milliseconds), gcc -O1 for what tcc cannot build
//   optimized gcc -O3 -march=native with OpenMP (or clang)
#pragma once

#include <string>
#include <vector>

namespace kiln {

enum class Tier { fast, optimized };

struct Toolchain {
  std::string name;  // tcc, gcc, clang
  std::string binary;
  std::vector<std::string> flags;
  std::string version;  // the compiler's own --version line
  std::string target;   // the ISA it generates for (e.g. x86_64 znver3)
  // Everything that changes the bytes it produces: part of every cache key.
  std::string identity() const;
};

// The toolchain of a tier. `compiler` picks gcc or clang for the optimized tier.
// Throws CompileError when no usable compiler is installed.
Toolchain toolchain_for(Tier tier, const std::string& compiler = "gcc");

// NVRTC for `arch` ("sm_90"); Error when NVRTC cannot be loaded. Needs no GPU.
Toolchain cuda_toolchain(const std::string& arch);
std::string cuda_fingerprint(const std::string& arch);

// What identifies a tier's toolchain without running anything: the compiler binaries'
// paths, sizes and modification times, the tier's flags and the host CPU's model and
// feature flags. Graph cache keys use it, since a warm start must not start a compiler.
std::string toolchain_fingerprint(Tier tier, const std::string& compiler = "gcc");

// Compiles C `source` (kernels, first one `name`) into a shared object and returns its
// bytes. The compiler works in a private temporary directory, removed afterwards unless
// the compile fails (then the error names the source file kept there). A source the
// compiler rejects raises CompileError naming the kernel, the compiler and its
// diagnostics; the fast tier retries with gcc -O1 first.
std::string compile_object(const Toolchain& toolchain, const std::string& name,
                           const std::string& source);

}  // namespace kiln
