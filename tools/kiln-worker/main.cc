// kiln-worker: a compile worker process (docs/design.md §5), started by kiln's worker pool with
// KILN_WORKER_MODE set. libkiln's constructor serves the jobs before this main runs;
// reaching main means it was started by hand, which worker_main reports.
#include "serve/worker_main.h"

int main() { return kiln::worker_main(); }
