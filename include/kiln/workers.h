// The compile worker pool (docs/design.md §5): processes that compile outside the host, so that a
// compiler crash or hang never takes the host down. Pools start lazily, one per start
// method, with compile_threads workers; they quit after KILN_COMPILE_IDLE_SECONDS idle.
#pragma once

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "kiln/compile.h"

namespace kiln {

// Starts the pool of `options`' start method and compile_threads (unless running) and
// waits until every worker has started; false when `timeout_seconds` passed first.
bool wait_pool_ready(double timeout_seconds, const CompileOptions& options = {});

// Stops every compile worker now (jobs in flight fail with WorkerError); pools start again
// when next needed.
void shutdown_compile_workers();

struct PoolWorker {
  std::string start;  // subprocess, fork, spawn
  int slot = 0;
  int pid = 0;  // 0: not running
  bool busy = false;
  int jobs_done = 0;
  int failures = 0;  // workers of this slot that died, hung or misbehaved
};
// Every worker of every pool this process started.
std::vector<PoolWorker> pool_status();

// A kernel compiled by compile_source: the address of its function, valid while this
// object (or a copy) lives.
class CompiledKernel {
 public:
  CompiledKernel(std::string name, std::shared_ptr<void> owner, void* address)
      : name_(std::move(name)), owner_(std::move(owner)), address_(address) {}
  const std::string& name() const { return name_; }
  void* address() const { return address_; }
  template <class Fn>
  Fn function() const {
    return reinterpret_cast<Fn>(address_);
  }

 private:
  std::string name_;
  std::shared_ptr<void> owner_;  // the loaded object
  void* address_;
};

// Compiles `source`, which defines the function `name`, in a compile worker (the analog
// of Inductor's async_compile). `language`: "c" (C99, compiled at the optimized tier; the
// kernel cache applies). The future throws CompileError naming the kernel with the
// compiler's diagnostics when the source does not compile, WorkerError when the worker
// dies or hangs (KILN_COMPILE_TIMEOUT), Error for an unknown language or name.
std::future<CompiledKernel> compile_source(const std::string& name, const std::string& language,
                                           const std::string& source,
                                           const CompileOptions& options = {});

}  // namespace kiln
