// The compile worker's side (docs/design.md §5). A worker is any process started with
// KILN_WORKER_MODE in its environment: kiln-worker, or the host's own binary re-executed
// (Spawn), caught by libkiln's constructor before the host's main runs, or a child of the
// fork server. It makes itself hermetic (dies with its parent, closes every inherited
// descriptor but its channel and diagnostics, leaves the terminal's session so the host's
// signals do not reach it, SCHED_IDLE when asked), says hello, and answers jobs read from
// its channel (fd 0, a socket) until told to shut down or the channel closes.
#pragma once

namespace kiln {

// The environment variable and its value: "<parent pid>" or "<parent pid>:idle".
constexpr const char* kWorkerModeVariable = "KILN_WORKER_MODE";

// Runs the worker loop; returns the process exit code.
int worker_main();

}  // namespace kiln
