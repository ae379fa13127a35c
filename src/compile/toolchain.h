// Toolchains: C compilers that turn a kernel's source into a shared object. Compiling is a
// pure function (source, toolchain) → bytes; caching wraps it (later), keyed by identity().
//   fast      tcc (no optimization, milliseconds), gcc -O1 for what tcc cannot build
//   optimized gcc -O3 -march=native with OpenMP (or clang)
#pragma once

#include <string>
#include <vector>

namespace kiln {

enum class Tier { fast, optimized };

struct Toolchain {
  std::string name;    // tcc, gcc, clang
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

// Compiles C `source` of kernel `name` into `dir`/`name`.so and returns its path. A source
// the compiler rejects raises CompileError naming the kernel, the compiler and its
// diagnostics; the fast tier retries with gcc -O1 first.
std::string compile_shared_object(const Toolchain& toolchain, const std::string& name,
                                  const std::string& source, const std::string& dir);

}  // namespace kiln
