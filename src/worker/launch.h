// Starting compile worker processes, by start method (docs/design.md §5):
//   Subprocess  kiln-worker, found relative to libkiln.so (libexec/kiln/ beside lib/)
//   Spawn       the host's own binary (/proc/self/exe) re-executed in worker mode
//   Fork        a child of the fork server: a single-threaded kiln-worker started once,
//               which forks a worker per request on descriptors the host sends it; the
//               host process, threaded, never forks
// Every worker gets exactly its channel (fd 0, a socket) and its diagnostics pipe (fds 1
// and 2); worker_main.cc makes it hermetic.
#pragma once

#include <sys/types.h>

#include <string>

#include "kiln/compile.h"

namespace kiln {

// A worker process is any process started with this variable set: "<parent pid>", with
// ":idle", ":bench" or ":forkserver" after it for the other roles (serve/worker_main.h).
constexpr const char* kWorkerModeVariable = "KILN_WORKER_MODE";

struct WorkerProcess {
  pid_t pid = 0;
  int channel = -1;      // the host's end of the socket
  int diagnostics = -1;  // the read end of the worker's stderr
  bool forked = false;   // a child of the fork server (which reaps it), not of this process
};

// What a worker is for: compiling, or benchmarking kernels for autotuning — the only role
// that runs generated code, and later the only one that may touch a GPU — each either for a
// compile the caller waits on or in the background, beside calls being served. A worker
// answers the jobs of its role only.
// Background work gets the cores the calls leave it, not a share of theirs: while a stage
// compiles, each call runs on a thread fewer (driver/staged_executable.cc), the background
// compile pool has as many workers as that leaves cores, and the background benchmark worker
// times on one thread. (Timed on every thread, a tuning benchmark's threads and the caller's
// eager threads fought for the same two cores: one eager call took 3 s instead of 0.1, and
// the timings were noise.) They run at normal priority: at SCHED_IDLE a compile beside other
// busy processes (two test programs on two cores) got no CPU at all and never landed.
enum class WorkerRole { compile, background_compile, benchmark, background_benchmark };
bool is_benchmark(WorkerRole role);
bool is_background(WorkerRole role);
// The role's suffix of KILN_WORKER_MODE ("", ":idle", ":bench", ":bench-idle") and back.
const char* role_flag(WorkerRole role);
WorkerRole role_of_mode(const std::string& mode);

WorkerProcess launch_worker(WorkerStart start, WorkerRole role);

// Ends a worker: kills it when `kill_first`, closes the host's descriptors, reaps it (or
// learns its fate from the fork server), kills what is left of its process group (a
// compiler), removes its compile scratch directories, and returns its exit status in
// words. Waits at most a few seconds, then kills.
std::string end_worker(WorkerProcess& worker, bool kill_first);

// The kiln-worker executable this library uses (Subprocess start and the fork server).
std::string worker_executable();

}  // namespace kiln
