// Toolchains: C compilers that turn a kernel's source into a shared object, and NVRTC,
// which turns CUDA source into a cubin for one GPU architecture. Compiling is a
// pure function (source, toolchain) → bytes; caching wraps it (later), keyed by identity().
//   light     tcc (no optimization, milliseconds; the fast tier where tcc is missing): the
//             fast stage's units whose kernels are all small (plan_builder's choice)
//   fast      gcc -O1 with loop vectorization, glibc's vector math and OpenMP at the host's
//             preferred vector width: about 2/3 of optimized's compile time for nearly its
//             code on loops without tuning (docs/design.md §5 has the figures)
//   optimized gcc -O3 -march=native with OpenMP (or clang), at the same vector width
#pragma once

#include <string>
#include <vector>

namespace kiln {

enum class Tier { light, fast, optimized };

struct Toolchain {
  std::string name;  // tcc, gcc, clang
  std::string binary;
  std::vector<std::string> flags;
  std::string version;          // the compiler's own --version line
  std::string target;           // the ISA it generates for (e.g. x86_64 znver3)
  Tier tier = Tier::optimized;  // what toolchain_for was asked (the NVRTC toolchain: optimized)
  // Everything that changes the bytes it produces: part of every cache key.
  std::string identity() const;
};

// The toolchain of a tier. `compiler` picks gcc or clang for the optimized tier.
// Throws CompileError when no usable compiler is installed.
Toolchain toolchain_for(Tier tier, const std::string& compiler = "gcc");

// The toolchain of one unit of a stage built with `stage`: the light tier for a unit of the
// fast stage whose kernels are all small, `stage` otherwise.
Toolchain unit_toolchain(const Toolchain& stage, bool light_unit);

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
// diagnostics; the light tier (tcc) retries with the fast one first.
std::string compile_object(const Toolchain& toolchain, const std::string& name,
                           const std::string& source);

}  // namespace kiln
