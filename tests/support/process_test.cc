// Child processes (support/process.h): a timeout ends everything the child started, not
// only the child (a compile timeout left gcc's cc1 running).
#include "support/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace kiln {
namespace {

bool alive(int pid) { return kill(pid, 0) == 0; }

TEST(Process, ATimeoutEndsWhatTheChildStarted) {
  // The child starts a grandchild, says its pid, and waits.
  ProcessResult r = run_process({"sh", "-c", "sleep 300 & echo $!; wait"}, 1.0);
  EXPECT_TRUE(r.timed_out) << r.describe();
  const int grandchild = std::stoi(r.output);
  // Killed with its group (a zombie until init reaps it, so poll for the state).
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::string state;
    if (FILE* f = std::fopen(("/proc/" + std::to_string(grandchild) + "/stat").c_str(), "r")) {
      char buffer[512] = {};
      std::fread(buffer, 1, sizeof buffer - 1, f);
      std::fclose(f);
      std::string text(buffer);
      const size_t close = text.rfind(')');
      state = close == std::string::npos ? "" : text.substr(close + 2, 1);
    }
    gone = !alive(grandchild) || state == "Z";
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(gone) << "the grandchild " << grandchild << " outlived the timeout";
  if (!gone) kill(grandchild, SIGKILL);
}

TEST(Process, OutputAndExitStatusAreReported) {
  ProcessResult r = run_process({"sh", "-c", "echo hello; exit 3"}, 30);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, "hello\n");
  EXPECT_FALSE(r.timed_out);
}

}  // namespace
}  // namespace kiln
