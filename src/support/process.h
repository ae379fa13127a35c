// Running a child process (a compiler) with its output captured and a time limit. The child
// gets only its own pipes (no inherited descriptors) and is killed at the deadline.
#pragma once

#include <string>
#include <vector>

namespace kiln {

struct ProcessResult {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it
  bool timed_out = false;
  int pid = 0;
  std::string output;  // stdout and stderr, interleaved
  bool ok() const { return exit_code == 0 && signal == 0 && !timed_out; }
  std::string describe() const;  // "exit status 1", "killed by signal 11 (SIGSEGV)", ...
};

// A waitpid status in words: "exit status 1", "killed by signal 9 (SIGKILL)".
std::string describe_wait_status(int status);

// Runs argv[0] (searched in PATH) with `argv`; throws Error only if it cannot start. The
// child runs in a process group of its own, so that a timeout ends everything it started
// (gcc's cc1, as, ld), unless keep_children_in_this_group() was called, as a compile worker
// does: there the child stays in the worker's group, which the host kills with the worker.
ProcessResult run_process(const std::vector<std::string>& argv, double timeout_seconds);

// From now on run_process leaves its children in this process's group. For a process that
// leads its own group and is ended as one.
void keep_children_in_this_group();

// The first line `argv` prints (e.g. a compiler's --version), or "" if it does not run.
std::string first_output_line(const std::vector<std::string>& argv);

}  // namespace kiln
