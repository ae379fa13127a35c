// Which configs autotuning may give each kernel (docs/design.md §6): the tuning spaces of
// the loop kernels and of the GEMM template, for the machine the tuning runs on.
#pragma once

#include <cstdint>
#include <vector>

#include "codegen/kernel_config.h"
#include "loop/kernel.h"

namespace kiln {

// What the tuning spaces are built for: this machine's threads and vector widths.
struct TuneTarget {
  int threads = 1;                     // hardware threads this process may use
  std::vector<int64_t> vector_widths;  // in bits, e.g. 128, 256, 512
};
TuneTarget host_tune_target();
// The THREADS values worth timing: powers of two below the target's threads, and all of them.
std::vector<int64_t> thread_choices(const TuneTarget& target);

// What autotuning may change in `kernel`'s config on `target`: threads and vector width for
// every kernel; the rows per block of a column reduction; the prefetch chunk of a row
// reduction that streams its inputs.
TuneSpace tuning_space(const LoopKernel& kernel, const TuneTarget& target);
// The work of one element of `kernel`'s domain (what its parallel loop counts against
// GRAIN), in units of one load or one arithmetic op, a transcendental counting
// kTranscendentalWork; a foreach kernel's, its heaviest part's.
constexpr int64_t kTranscendentalWork = 16;
int64_t work_per_element(const LoopKernel& kernel);
// The GRAIN a kernel gets untuned: the listed value nearest (in ratio) to kParallelWork /
// its work per element, so that a parallel region needs about as much work whatever the
// kernel does. kParallelWork is what an add of two tensors (two loads and an add) needed
// before, 32768 elements: with 500 fused adds a kernel of 10,000 elements is worth
// threads (Inductor's CPU code runs it on all 16 cores in 54 us; one thread took 274 us).
// Where threads do not pay on the live calls after all, the kernel's thread choice moves it
// to one thread (runtime/thread_choice.h).
constexpr int64_t kParallelWork = 3 * 32768;
int64_t default_grain(const LoopKernel& kernel);
const std::vector<int64_t>& grain_choices();

// The GEMM template's (codegen/gemm_template.h): the BLAS call or tiled loops, their tiles.
TuneSpace gemm_tuning_space(const TuneTarget& target);

// `space` without what only timing on every core can decide (THREADS, GRAIN): those keep
// their defaults, and candidates that set them are dropped.
TuneSpace without_thread_fields(const TuneSpace& space);

}  // namespace kiln
