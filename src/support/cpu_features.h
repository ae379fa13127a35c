// What the host CPU's vector units offer kiln's generated C: the widths a loop may use, and
// the one it should prefer. Read once from the CPU's feature bits (cpuid), never from the
// compiler's tuning defaults: gcc's -march=native tunes some CPUs that have 256-bit (AVX2)
// or 512-bit (AVX-512) units for 128-bit vectors (znver1..3), which halves or quarters the
// lanes of every loop and of the vector math it calls (libmvec's _ZGVb/_ZGVd/_ZGVe variants).
#pragma once

#include <vector>

namespace kiln {

// The vector widths in bits this CPU executes: 128 always (x86-64), 256 with AVX2 and FMA,
// 512 with AVX-512F. Ascending.
std::vector<int> cpu_vector_widths();

// The width loops should prefer: 512 where AVX-512 does not slow the clock (AMD's, from
// Zen 4; Intel's from Ice Lake, recognised by AVX512-IFMA, which Skylake-SP and Cascade Lake
// lack: on those 512-bit instructions lower the frequency of the whole core), else the
// widest there is. As Inductor's VecAVX512 / VecAVX2 choice.
int preferred_vector_width();

}  // namespace kiln
