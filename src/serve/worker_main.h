// The compile worker's side (docs/design.md §5). A worker is any process started with
// KILN_WORKER_MODE in its environment: kiln-worker, or the host's own binary re-executed
// (Spawn), caught by libkiln's constructor before the host's main runs, or a child of the
// fork server. It makes itself hermetic (dies with its parent, closes every inherited
// descriptor but its channel and diagnostics, leads a process group of its own so the
// terminal's signals do not reach it; a background benchmark worker times on one thread), says
// hello, and answers jobs read from its channel (fd 0, a socket) until told to shut down or the
// channel closes. This folder is the worker's side of the pool (src/worker is the host's): it
// answers compile_graph jobs with the compile pipeline itself, so it sits above the driver.
#pragma once

#include "worker/launch.h"  // kWorkerModeVariable

namespace kiln {

// Runs the worker loop; returns the process exit code.
int worker_main();

}  // namespace kiln
