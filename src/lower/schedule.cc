// The scheduler (lower/schedule.h): each kernel's loops on the program's device.
#include "lower/schedule.h"

#include <algorithm>

namespace kiln {

namespace {

// The constant length of k's rows (the product of its reduced dims), or 0.
int64_t constant_row_length(const LoopKernel& k) {
  int64_t r = 1;
  for (int64_t d : k.reduced_dims) {
    const Dim& dim = k.shape[static_cast<size_t>(d)];
    if (!dim.is_const()) return 0;
    r *= dim.coeff;
  }
  return r;
}

// The constant number of rows, or -1.
int64_t constant_rows(const LoopKernel& k) {
  int64_t rows = 1;
  for (size_t d = 0; d < k.shape.size(); ++d) {
    if (std::find(k.reduced_dims.begin(), k.reduced_dims.end(), static_cast<int64_t>(d)) !=
        k.reduced_dims.end())
      continue;
    if (!k.shape[d].is_const()) return -1;
    rows *= k.shape[d].coeff;
  }
  return rows;
}

void schedule_cpu(LoopKernel& k) {
  Schedule& s = k.schedule;
  s.nested_loops = true;
  if (k.kind != LoopKernel::Kind::Row || k.columns) return;
  // Many rows: one thread per block of rows. One long row (a full reduction): each phase's
  // loop split across the threads instead; entering a parallel region per phase per row
  // would cost more than short rows take, so the two forms are separate code.
  const int64_t rows = constant_rows(k), r = constant_row_length(k);
  if (rows < 0 || r <= 0)
    s.split_row = Schedule::RowSplit::when_long;
  else
    s.split_row =
        rows < 2 && r >= kLongRow ? Schedule::RowSplit::always : Schedule::RowSplit::never;
}

// About 8 elements a thread for rows of a constant length the block can hold (128 to 1024
// threads): with the launch bounds asking for a full multiprocessor (2048 threads), the
// held row and the temporaries fit 32 registers without spilling, and one block's loads
// overlap another's reductions. Other rows take kGpuThreads.
int block_threads_for(int64_t row_length) {
  if (row_length <= 0 || row_length > int64_t{1024} * kMaxRegisterElements) return kGpuThreads;
  int threads = 128;
  while (threads < 1024 && int64_t{threads} * 8 < row_length) threads *= 2;
  return threads;
}

// Rows of a constant length the block covers in at most kMaxRegisterElements elements a
// thread are held in registers: read from memory once, however many phases pass over them
// (softmax: max, sum, store). Runs are up to 16 bytes of the widest parameter.
HeldRow held_row(const LoopKernel& k, int threads) {
  const int64_t r = constant_row_length(k);
  if (!k.flat || r <= 0) return {};
  const size_t widest = widest_element(k);
  int width = static_cast<int>(std::min<size_t>(8, 16 / widest));
  while (width > 1 && r % width != 0) width /= 2;
  const int64_t run = int64_t{threads} * width;
  const HeldRow layout{(r + run - 1) / run, width};
  return layout.elements() <= kMaxRegisterElements ? layout : HeldRow{};
}

void schedule_cuda(LoopKernel& k) {
  Schedule& s = k.schedule;
  if (k.kind == LoopKernel::Kind::Pointwise) {
    // Aligned 16-byte accesses of 4 elements a thread; 8-byte elements (f64, i64) would need
    // 32-byte alignment, so their kernels keep the plain loop.
    // (Parameters read only at a constant index, like the generator state, are scalars.)
    const bool narrow = widest_element(k) <= 4;
    s.vector_width = (k.flat || k.shape.empty()) && narrow ? 4 : 0;
    return;
  }
  if (k.kind != LoopKernel::Kind::Row) return;
  if (k.columns) {
    // A slice of about 16 reduced elements a warp, 4 to 32 warps (a symbolic length: 8).
    const int64_t r = constant_row_length(k);
    int warps = r > 0 ? static_cast<int>(std::clamp<int64_t>(r / 16, 4, 32)) : 8;
    int pow2 = 4;
    while (pow2 * 2 <= warps) pow2 *= 2;
    s.block_threads = 32 * pow2;
    return;
  }
  s.row_per_block = true;
  if (k.flat) s.block_threads = block_threads_for(constant_row_length(k));
  s.held = held_row(k, s.block_threads);
  const int64_t held = s.held.elements();
  if (held > 0) {
    s.whole_runs = constant_row_length(k) % (int64_t{s.block_threads} * s.held.width) == 0;
    // A full multiprocessor of threads, capping registers at 32; rows of more than 8
    // elements a thread ask for half of one (64 registers), which they need not to spill.
    s.min_blocks_per_sm = 2048 / (s.block_threads * (held > 8 ? 2 : 1));
  }
  // One reduction or several independent ones, no element stores, rows from memory (sum,
  // amax, mean... of long rows): a row may be split over blocks, their partials folded in
  // order by the row's last block (no grid-wide wait, so no phase may read another's result).
  s.split_blocks = held == 0 && k.stores.empty() &&
                   std::none_of(k.phases.begin(), k.phases.end(),
                                [](const ReducePhase& ph) { return reads_accumulator(ph.value); });
}

void schedule_kernel(LoopKernel& k, Device device) {
  k.schedule = Schedule{};
  k.schedule.decided = true;
  k.schedule.device = device;
  if (device == Device::cuda)
    schedule_cuda(k);
  else
    schedule_cpu(k);
  for (LoopKernel& part : k.parts) schedule_kernel(part, device);
}

}  // namespace

void schedule_program(Program& program, Device device) {
  program.device = device;
  for (LoopKernel& k : program.kernels) schedule_kernel(k, device);
}

}  // namespace kiln
