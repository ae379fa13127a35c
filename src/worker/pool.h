// The compile worker pool (docs/design.md §5): `size` worker processes of one start method, each
// driven by a thread of this process that sends it one job at a time and waits for the
// reply under the job's deadline. A worker that dies, hangs past the deadline, or answers
// nonsense fails its job with WorkerError (naming the job, the pid, the exit status or
// signal and the tail of its stderr) and is replaced on the next job; nothing waits
// forever. Workers start lazily on the first job, and quit after an idle period.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "kiln/compile.h"
#include "kiln/error.h"
#include "wire/frame.h"
#include "worker/launch.h"

namespace kiln {

struct Job {
  MessageType type;  // compile_graph, compile_unit or benchmark
  Fields fields;     // the request (the pool adds "job")
  std::string name;  // e.g. "compile_unit cpp_poi_fused_add_0", in errors
  double timeout_seconds = 300;
};

// A job that did not run, or was stopped, because the pool shut down (at exit, or
// shutdown_compile_workers): not a failure of the job itself.
struct PoolShutDown : WorkerError {
  using WorkerError::WorkerError;
};

// Called once per job, on a pool thread: with the reply, or with the job's error.
using JobDone = std::function<void(std::exception_ptr error, Fields reply)>;

struct WorkerStatus {
  int slot = 0;
  int pid = 0;  // 0 when not running
  bool busy = false;
  int jobs_done = 0;
  int failures = 0;
};

class WorkerPool {
 public:
  WorkerPool(WorkerStart start, int size, WorkerRole role);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // The reply's fields ("status" ok); a reply with status compile_error makes the future
  // throw CompileError, one with status error Error, a failed worker WorkerError.
  std::future<Fields> submit(Job job);
  void submit(Job job, JobDone done);

  // Starts every worker and waits until each has said hello; false at the timeout.
  bool wait_ready(double timeout_seconds);
  std::vector<WorkerStatus> status() const;
  // Raises the number of workers to `size` (a pool never shrinks while it runs).
  void grow(int size);
  WorkerStart start_method() const;
  // Stops every worker (their jobs fail with WorkerError); the pool restarts lazily.
  void shutdown();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// The process's pool for `start` (created on first use; grown to `size` workers when a
// caller asks for more), and every pool's shutdown (shutdown_compile_workers).
WorkerPool& compile_pool(WorkerStart start, int size, bool background = false);
// The process's benchmark worker (one per device; the CPU's for now), for autotuning; the
// background stages' own times on one thread (launch.h's WorkerRole says why).
WorkerPool& benchmark_pool(WorkerStart start, bool background = false);
// Runs `task` (which must not throw) on a thread of its own: work that waits on jobs and so
// must not run on a pool thread. At exit the pools refuse new jobs, stop, and then wait a
// few seconds for such tasks to end.
void run_in_background(std::function<void()> task);
void shutdown_all_pools();
// The workers of the pool of (start, background), if this process created it.
std::vector<std::pair<WorkerStart, WorkerStatus>> pool_statuses(WorkerStart start, bool background);
bool any_pool_started();

// Default job deadline: KILN_COMPILE_TIMEOUT seconds, else 300.
double default_job_timeout();

}  // namespace kiln
