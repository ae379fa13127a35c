// Timing kernels for autotuning (docs/design.md §5, §6), in a benchmark worker: a process apart
// from the hermetic compile workers (it may use a GPU later), running at normal priority.
// A request carries one shared object holding the variants of a kernel, the symbols to
// time, the size symbols' values and each buffer's dtype and length; the worker fills the
// inputs with random data of those sizes, runs every variant once, then times them in
// interleaved rounds (so a drift in machine speed hits every variant alike) and answers
// each one's median.
#pragma once

#include <string>
#include <vector>

#include "kiln/dtype.h"
#include "worker/pool.h"

namespace kiln {

struct BenchmarkBuffer {
  DType dtype = DType::f32;
  int64_t elements = 0;
};

struct BenchmarkRequest {
  std::string object;                    // shared object bytes
  std::vector<std::string> kernels;      // symbols to time, each with the kernel ABI
  std::vector<int64_t> sizes;            // the graph's size symbols
  std::vector<BenchmarkBuffer> buffers;  // the kernels' params, outputs first
  double seconds_per_kernel = 0.05;      // measuring budget per variant (at least 3 runs)
};

Job benchmark_job(const BenchmarkRequest& request, std::string what);
// The reply's median seconds per kernel, in request order (validated).
std::vector<double> benchmark_times(const Fields& reply, size_t kernels);

// Runs the request in `start`'s benchmark worker: the median seconds per kernel, in order.
std::vector<double> benchmark_in_worker(WorkerStart start, bool background,
                                        const BenchmarkRequest& request, std::string what);

// Worker side: validates the request, runs it, answers {"times": ...}.
Fields answer_benchmark(const Frame& request);

}  // namespace kiln
