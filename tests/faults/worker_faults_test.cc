// Worker faults, with real worker processes of each start method and bounded waits:
// jobs run in workers, bad source is a CompileError, a killed or hung worker is a
// WorkerError naming its pid and fate and is replaced (siblings finish), shutdown ends a
// worker that does not answer, busy host threads do not deadlock a start, workers are
// hermetic, start lazily, quit when idle and die with their parent.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "kiln/kiln.h"
#include "support/process.h"

namespace kiln {
namespace {

const char* kTwice =
    "#include <stdint.h>\nvoid twice(int64_t n, float* x) { for (int64_t i = 0; i < n; ++i) x[i] "
    "*= 2; }\n";

// C source that takes gcc -O3 a few seconds: time to kill or stop its worker mid-job.
std::string slow_source(const std::string& name) {
  std::string src = fmt::format("double {}(double x) {{\n  double a = x;\n", name);
  for (int i = 0; i < 6000; ++i)
    src += fmt::format("  a = a * {}.5 + (a > {} ? a / 3.0 : a * 1.25);\n", i % 7, i);
  return src + "  return a;\n}\n";
}

// Live (not zombie) processes of process group `group`: a worker and the compiler it runs.
std::vector<int> live_members(int group) {
  std::vector<int> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string text;
    if (!std::getline(stat, text)) continue;
    const auto close_paren = text.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream fields(text.substr(close_paren + 2));
    std::string state;
    int ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (pgrp == group && state != "Z") out.push_back(std::stoi(name));
  }
  return out;
}

// The compile scratch directories of process `pid` (TMPDIR/kiln-PID-XXXXXX).
std::vector<std::string> scratch_of(int pid) {
  std::vector<std::string> out;
  const char* tmp = std::getenv("TMPDIR");
  for (const auto& e : std::filesystem::directory_iterator(tmp && *tmp ? tmp : "/tmp"))
    if (e.path().filename().string().rfind(fmt::format("kiln-{}-", pid), 0) == 0)
      out.push_back(e.path().string());
  return out;
}

class Pool : public ::testing::TestWithParam<WorkerStart> {
 protected:
  CompileOptions options() const {
    CompileOptions o;
    o.worker_start = GetParam();
    o.compile_threads = 2;
    return o;
  }
  // The pid of a worker busy with a job, once there is one.
  int busy_worker() const {
    for (int tries = 0; tries < 2000; ++tries) {
      for (const PoolWorker& w : pool_status())
        if (w.busy && w.pid) return w.pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return 0;
  }
  void SetUp() override { setenv("KILN_FORCE_DISABLE_CACHES", "1", 1); }
  void TearDown() override { shutdown_compile_workers(); }
};

TEST_P(Pool, CompilesSourceInAWorker) {
  int64_t in_process = stats()["compile.in_process"], in_workers = stats()["compile.subprocess"];
  CompiledKernel k = compile_source("twice", "c", kTwice, options()).get();
  float data[3] = {1, 2, 3};
  k.function<void (*)(int64_t, float*)>()(3, data);
  EXPECT_EQ(data[2], 6.0f);
  EXPECT_EQ(stats()["compile.in_process"], in_process);
  EXPECT_EQ(stats()["compile.subprocess"], in_workers + 1);
}

TEST_P(Pool, BadSourceIsACompileErrorWithDiagnostics) {
  auto f =
      compile_source("cpp_poi_fused_broken_0", "c",
                     "void cpp_poi_fused_broken_0(void) { undeclared_thing = 1; }\n", options());
  try {
    f.get();
    ADD_FAILURE() << "no error";
  } catch (const CompileError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("kernel cpp_poi_fused_broken_0 failed to compile"), std::string::npos) << m;
    EXPECT_NE(m.find("undeclared_thing"), std::string::npos) << m;
  }
  EXPECT_THROW(compile_source("k", "fortran", "", options()), Error);
  EXPECT_THROW(compile_source("not a name", "c", "", options()), Error);
  // The worker survived its job's compile error.
  EXPECT_NO_THROW(compile_source("twice", "c", kTwice, options()).get());
}

TEST_P(Pool, AKilledWorkerIsAWorkerErrorAndIsReplaced) {
  ASSERT_TRUE(wait_pool_ready(60, options()));
  auto f = compile_source("slow", "c", slow_source("slow"), options());
  int pid = busy_worker();
  ASSERT_GT(pid, 0);
  // Once its compiler runs (gcc, cc1: members of the worker's process group), killing the
  // worker must end the compiler too.
  // (Its scratch directory appears just before the compiler starts; gcc runs before that to
  // say its version.)
  for (int i = 0; i < 400 && scratch_of(pid).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const bool scratch_seen = !scratch_of(pid).empty();
  for (int i = 0; i < 100 && live_members(pid).size() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // A spawned worker is seen mid-compile here (the fork and spawn starts' compile can be
  // over before the first look; the checks below hold for them all the same).
  if (GetParam() == WorkerStart::Subprocess) {
    EXPECT_TRUE(scratch_seen) << "the worker's compile scratch directory was never seen";
  }
  kill(pid, SIGKILL);
  try {
    f.get();
    ADD_FAILURE() << "no error";
  } catch (const WorkerError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(fmt::format("pid {}", pid)), std::string::npos) << m;
    EXPECT_NE(m.find("compile_source slow"), std::string::npos) << m;
    EXPECT_NE(m.find("SIGKILL"), std::string::npos) << m;
  }
  for (int i = 0; i < 100 && !live_members(pid).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(live_members(pid).empty()) << "the killed worker's compiler outlived it";
  // Nor does its scratch directory (TMPDIR/kiln-PID-XXXXXX) outlive it.
  EXPECT_EQ(scratch_of(pid), std::vector<std::string>{}) << "left behind";
  CompiledKernel k = compile_source("twice", "c", kTwice, options()).get();
  EXPECT_NE(k.address(), nullptr);
  int failures = 0;
  for (const PoolWorker& w : pool_status()) {
    failures += w.failures;
    EXPECT_NE(w.pid, pid);
  }
  EXPECT_EQ(failures, 1);
}

TEST_P(Pool, AHungWorkerTimesOutAndIsReplaced) {
  setenv("KILN_COMPILE_TIMEOUT", "2", 1);
  ASSERT_TRUE(wait_pool_ready(60, options()));
  auto f = compile_source("hangs", "c", slow_source("hangs"), options());
  int pid = busy_worker();
  ASSERT_GT(pid, 0);
  kill(pid, SIGSTOP);
  // A sibling job on the other worker finishes meanwhile.
  CompiledKernel sibling = compile_source("twice", "c", kTwice, options()).get();
  EXPECT_NE(sibling.address(), nullptr);
  auto start = std::chrono::steady_clock::now();
  try {
    f.get();
    ADD_FAILURE() << "no error";
  } catch (const WorkerError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(fmt::format("pid {}", pid)), std::string::npos) << m;
    EXPECT_NE(m.find("timed out after 2 s"), std::string::npos) << m;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10);
  unsetenv("KILN_COMPILE_TIMEOUT");
  EXPECT_NO_THROW(compile_source("twice", "c", kTwice, options()).get());
}

std::set<std::string> open_descriptors(int pid) {
  std::set<std::string> fds;
  for (const auto& e : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid)))
    fds.insert(e.path().filename().string());
  return fds;
}

// The scheduling autogroup /proc names for a process ("/autogroup-17"; "" where the
// kernel has none), without its nice value.
std::string autogroup_of(int pid) {
  std::ifstream in(fmt::format("/proc/{}/autogroup", pid));
  std::string group;
  in >> group;
  return group;
}

TEST_P(Pool, WorkersAreHermetic) {
  // A descriptor this process leaves inheritable must not reach a worker.
  int leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 3);
  ASSERT_TRUE(wait_pool_ready(60, options()));
  std::vector<PoolWorker> workers = pool_status();
  ASSERT_EQ(workers.size(), 2u);
  for (const PoolWorker& w : workers) {
    ASSERT_GT(w.pid, 0);
    EXPECT_EQ(open_descriptors(w.pid), (std::set<std::string>{"0", "1", "2"}))
        << "worker " << w.pid;
    EXPECT_EQ(getpgid(w.pid), w.pid) << "a worker leads its own process group (no terminal "
                                        "signals; the host ends it and its compilers as one)";
    EXPECT_EQ(getsid(w.pid), getsid(0))
        << "a worker stays in the host's session, so in its scheduling autogroup";
    EXPECT_EQ(autogroup_of(w.pid), autogroup_of(getpid()))
        << "a worker of its own autogroup is weighed as the whole host's equal";
    std::ifstream status(fmt::format("/proc/{}/status", w.pid));
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("SigIgn:", 0) == 0) {
        uint64_t ignored = std::stoull(line.substr(7), nullptr, 16);
        EXPECT_TRUE(ignored & (1ull << (SIGINT - 1))) << line;
      }
  }
  ::close(leaked);
}

TEST_P(Pool, ShutdownStopsWorkersAndThePoolRestartsLazily) {
  ASSERT_TRUE(wait_pool_ready(60, options()));
  std::vector<int> pids;
  for (const PoolWorker& w : pool_status()) pids.push_back(w.pid);
  shutdown_compile_workers();
  for (int pid : pids) EXPECT_TRUE(kill(pid, 0) != 0 || errno == ESRCH) << pid;
  for (const PoolWorker& w : pool_status()) EXPECT_EQ(w.pid, 0);
  EXPECT_NO_THROW(compile_source("twice", "c", kTwice, options()).get());
}

TEST_P(Pool, ShutdownEndsAWorkerThatDoesNotAnswerWithinItsGrace) {
  ASSERT_TRUE(wait_pool_ready(60, options()));
  int pid = pool_status().at(0).pid;
  kill(pid, SIGSTOP);  // cannot read its shutdown message (nor act on SIGTERM)
  auto start = std::chrono::steady_clock::now();
  shutdown_compile_workers();
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(took, 5.0) << "shutdown waited " << took << " s";
  for (int i = 0; i < 100 && kill(pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

TEST_P(Pool, StartsWhileTheHostHasBusyThreads) {
  // Eight threads allocate and compute while workers start (Fork: the host never forks, so
  // no lock a busy thread holds can be copied into a child).
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int i = 0; i < 8; ++i)
    busy.emplace_back([&] {
      while (!stop) {
        Tensor t = randn({64, 64});
        (void)(t * 2.0f).sum({0});
      }
    });
  // Generous deadlines: what this guards against is a start that never ends (a lock copied
  // into a child), and eight busy threads on a 2-core CI machine running other tests too
  // slow an honest start to tens of seconds.
  bool ready = wait_pool_ready(120, options());
  std::future<CompiledKernel> k = compile_source("twice", "c", kTwice, options());
  bool compiled = k.wait_for(std::chrono::seconds(120)) == std::future_status::ready;
  stop = true;
  for (std::thread& t : busy) t.join();
  EXPECT_TRUE(ready);
  ASSERT_TRUE(compiled);
  EXPECT_NE(k.get().address(), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Starts, Pool,
                         ::testing::Values(WorkerStart::Subprocess, WorkerStart::Fork,
                                           WorkerStart::Spawn),
                         [](const ::testing::TestParamInfo<WorkerStart>& info) {
                           return std::string(info.param == WorkerStart::Subprocess ? "subprocess"
                                              : info.param == WorkerStart::Fork     ? "fork"
                                                                                    : "spawn");
                         });

bool gone(int pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!std::getline(stat, text)) return true;
  auto close_paren = text.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < text.size() &&
         text[close_paren + 2] == 'Z';
}

TEST(PoolLifetime, IdleWorkersQuit) {
  setenv("KILN_COMPILE_IDLE_SECONDS", "0.5", 1);
  CompileOptions o;
  o.compile_threads = 1;
  ASSERT_TRUE(wait_pool_ready(60, o));
  int pid = pool_status().at(0).pid;
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 100 && (!gone(pid) || pool_status().at(0).pid != 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(gone(pid));
  EXPECT_EQ(pool_status().at(0).pid, 0);
  shutdown_compile_workers();
  unsetenv("KILN_COMPILE_IDLE_SECONDS");
}

TEST(PoolLifetime, WorkersDieWithTheirParent) {
  // The helper starts a pool of each start method, prints the worker pids, then is killed
  // by SIGKILL: no shutdown runs, yet its workers (and fork server) must end.
  ProcessResult r = run_process({KILN_POOL_HELPER_PATH}, 60);
  ASSERT_EQ(r.signal, SIGKILL) << r.output;
  std::vector<int> pids;
  std::istringstream in(r.output);
  std::string word;
  while (in >> word)
    if (word.rfind("pid=", 0) == 0) pids.push_back(std::stoi(word.substr(4)));
  ASSERT_EQ(pids.size(), 6u) << r.output;
  for (int pid : pids) {
    for (int i = 0; i < 100 && !gone(pid); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(gone(pid)) << "worker " << pid << " outlived its parent";
  }
}

}  // namespace
}  // namespace kiln
