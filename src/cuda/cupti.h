// Device activity through CUPTI's activity API, reached at run time (dlopen of libcupti from
// the CUDA toolkit), like cuBLASLt: kiln links against no CUDA library. While a profiled run
// collects, every kernel that runs on the GPU is recorded with its device start and end,
// including the kernels inside library calls (cuBLASLt's), and each is attributed to the
// step whose launches were made between push_step and pop_step on the launching thread
// (CUPTI's external correlation). Without CUPTI, callers fall back to CUDA events.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::cuda {

struct KernelActivity {
  std::string name;                           // the kernel's symbol
  uint64_t step = 0;                          // the id given to push_step around its launch
  double start_seconds = 0, end_seconds = 0;  // on monotonic_seconds()'s clock
  int grid = 0, block = 0;                    // x sizes
};

// Whether CUPTI is loaded and collects kernel activity. The first call loads it and enables
// collection; a failure is reported once (unavailable_cupti_reason) and never retried.
bool collect_kernel_activity();
std::string unavailable_cupti_reason();
// Stops collecting (the kernels that run meanwhile are not recorded); the next
// collect_kernel_activity() starts again.
void stop_collecting_kernel_activity();

// A new step id (never 0) and the region of this thread's launches that belong to it.
uint64_t new_step_id();
void push_step(uint64_t id);
void pop_step();

// The kernels recorded for step ids first..last, once every kernel launched before the call
// has finished (the caller has synchronized): CUPTI's buffers are flushed and the records of
// those steps taken out of the store. Records of no live step are dropped.
std::vector<KernelActivity> take_kernel_activity(uint64_t first, uint64_t last);

}  // namespace kiln::cuda
