// Schedules of the loop IR: how a kernel's loops map onto the machine. A kernel's kind,
// domain and accesses (loop/kernel.h) say what it computes; its Schedule says how: which
// loops run across threads, how many threads a GPU block has, whether a row is held in
// registers or split over blocks, how wide the vector accesses are. schedule_program
// (lower/schedule.h) decides it for the program's device; the emitter prints the loops it
// names and the launch sizes its grid from it, and neither decides anything of its own.
#pragma once

#include <cstdint>

#include "kiln/dtype.h"

namespace kiln {

// Threads per GPU block unless a schedule says otherwise (kernel_abi.h's launch geometry).
constexpr int kGpuThreads = 256;
// The most elements of a row one GPU thread holds in registers.
constexpr int64_t kMaxRegisterElements = 16;

// The layout of a register-held row: each thread holds `chunks` runs of `width` consecutive
// elements, run c of thread t starting at element (c * threads + t) * width. A warp's runs
// are contiguous (coalesced), and each run is one access of up to 16 bytes per buffer.
// `width` divides the row, so a run lies wholly inside it or wholly past its end.
struct HeldRow {
  int64_t chunks = 0;  // 0: the row is read from memory, not held
  int width = 1;
  int64_t elements() const { return chunks * width; }
};

struct Schedule {
  bool decided = false;  // set by schedule_program; the verifier requires it
  Device device = Device::cpu;
  // Pointwise kernels over several dims: nested loops, the outer one across threads and the
  // inner one a simd loop (cpu); or one flat loop whose index gives each loop variable
  // (cuda: a grid-stride loop over every element).
  bool nested_loops = false;
  // cpu row kernels: one long row's phases split across the threads (a split reduction)
  // instead of rows across them; `when_long` tests rows < 2 && R >= kLongRow at run time
  // (symbolic sizes), generating both forms.
  enum class RowSplit : uint8_t { never, always, when_long };
  RowSplit split_row = RowSplit::never;
  // cuda row kernels: one row per block, its elements across the block's threads (else,
  // columns: a block takes 32 consecutive rows, one a lane, and each of its warps a slice
  // of every row's reduced elements: block_threads / 32 slices, combined in order).
  bool row_per_block = false;
  int block_threads = kGpuThreads;
  HeldRow held;               // cuda rows of a constant length: held in registers
  bool whole_runs = false;    // held rows: every run lies inside the row (no bounds test)
  bool split_blocks = false;  // cuda: a row may be split over several blocks (the launch picks)
  // cuda flat pointwise kernels: elements per thread of the aligned wide-load form (0: none).
  int vector_width = 0;
  // cuda: __launch_bounds__(block_threads, min_blocks_per_sm) (0: no bounds).
  int min_blocks_per_sm = 0;
};

// Rows at least this long, alone in their kernel, split across CPU threads.
constexpr int64_t kLongRow = 65536;

}  // namespace kiln
