// For PoolLifetime.WorkersDieWithTheirParent: starts two workers of each start method,
// prints their pids, and dies by SIGKILL without shutting anything down.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "kiln/kiln.h"

int main() {
  using namespace kiln;
  for (WorkerStart start : {WorkerStart::Subprocess, WorkerStart::Fork, WorkerStart::Spawn}) {
    CompileOptions o;
    o.worker_start = start;
    o.compile_threads = 2;
    if (!wait_pool_ready(60, o)) return 1;
  }
  for (const PoolWorker& w : pool_status()) std::printf("%s pid=%d\n", w.start.c_str(), w.pid);
  std::fflush(stdout);
  kill(getpid(), SIGKILL);
  return 0;
}
