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
// The GEMM template's (codegen/gemm_template.h): the BLAS call or tiled loops, their tiles.
TuneSpace gemm_tuning_space(const TuneTarget& target);

}  // namespace kiln
