#include "serve/worker_main.h"

#include <fmt/format.h>
#include <omp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "autotune/benchmark.h"
#include "cache/cache.h"
#include "compile/nvrtc.h"
#include "compile/toolchain.h"
#include "driver/plan_builder.h"
#include "driver/plan_entry.h"
#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/error.h"
#include "support/build_id.h"
#include "support/fault_injection.h"
#include "support/process.h"
#include "support/spans.h"
#include "wire/frame.h"
#include "worker/jobs.h"
#include "worker/launch.h"

namespace kiln {

namespace {

constexpr int kChannel = 0;

std::optional<Cache> cache_at(const std::string& dir) {
  if (dir.empty()) return std::nullopt;
  return Cache(dir);
}

PlanReply compile_graph_job(const CompileGraphJob& job) {
  TensorMap given = parse_safetensors(reinterpret_cast<const uint8_t*>(job.constants.data()),
                                      job.constants.size(), "constants of the compile job");
  Graph graph = parse_graph(job.graph_text, "<compile job>", &given);
  verify_graph(graph);
  return plan_reply_of(build_plan(graph, toolchain_of(job.toolchain), job.toolchain.device), given);
}

// A unit's object: a shared object from the C toolchains, or a cubin from NVRTC for the
// job's GPU architecture; the kernel cache key names the compiler either way. The reply
// always carries the bytes: the host's cache handles may name another directory than the
// job's path does now (a cache removed and recreated meanwhile), and the host must not
// depend on finding the worker's write.
UnitReply compile_unit_job(CompileUnitJob job) {
  const InjectedFault::Kind fault = injected_fault().kind;  // support/fault_injection.h
  if (fault == InjectedFault::Kind::crash) std::abort();
  if (fault == InjectedFault::Kind::compile_error)
    job.source += "\n#error injected fault (KILN_INJECT_FAULT=compile_error)\n";
  const Toolchain toolchain = toolchain_of(job.toolchain);
  std::string key = kernel_key(toolchain.identity(), job.source);
  std::optional<Cache> cache = cache_at(job.cache_dir);
  if (cache)
    if (std::optional<std::string> built = cache->get(CacheKind::kernel, key))
      return {key, std::move(*built)};  // another process built it
  std::string object = compile_object(toolchain, job.name, job.source);
  if (cache) cache->put(CacheKind::kernel, key, object);
  return {key, std::move(object)};
}

Fields answer(const Frame& request) {
  Fields reply;
  begin_job_spans();
  try {
    switch (request.type) {
      case MessageType::compile_graph:
        reply = encode(compile_graph_job(decode_compile_graph_job(request.fields)));
        break;
      case MessageType::compile_unit:
        reply = encode(compile_unit_job(decode_compile_unit_job(request.fields)));
        break;
      default:
        if (injected_fault().kind == InjectedFault::Kind::benchmark_crash) std::abort();
        reply = answer_benchmark(request);
        break;
    }
    reply["status"] = "ok";
  } catch (const CompileError& e) {
    reply = {{"status", "compile_error"}, {"message", e.what()}};
  } catch (const std::exception& e) {
    reply = {{"status", "error"}, {"message", e.what()}};
  }
  reply["job"] = request.at("job");
  if (std::string spans = end_job_spans(); !spans.empty()) reply["timings"] = std::move(spans);
  return reply;
}

// SIGTERM, and the host's death (PDEATHSIG): the worker's whole process group ends at once,
// the compiler it is running (gcc and its cc1, as, ld) with it. Async-signal-safe.
void end_process_group(int) { kill(0, SIGKILL); }

// Returns false when this process must not go on as a worker (its parent is gone).
bool make_hermetic(const std::string& mode) {
  pid_t parent = static_cast<pid_t>(std::atol(mode.c_str()));
  // Its own process group, which its compilers join: the terminal's signals do not reach it
  // (it is never the foreground group) and the host ends it as a group. Not its own session:
  // with CONFIG_SCHED_AUTOGROUP a session is a scheduling group of its own, weighed as an
  // equal of the whole program, so that N compilers took half the cores from the program's
  // threads (an eager call beside a background compile took 3.6x as long); in the program's
  // group, each is one task among its threads.
  setpgid(0, 0);
  keep_children_in_this_group();
  signal(SIGTERM, end_process_group);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return false;  // the parent died before PDEATHSIG was armed
  close_range(3, ~0U, 0);
  for (int sig : {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGHUP, SIGPIPE, SIGUSR1, SIGUSR2})
    signal(sig, SIG_IGN);
  // A background stage's tuning candidates run on the one core the program's calls leave
  // (TuneSetup::one_core): on more threads, a parallel region waits at its barrier for
  // threads the calls displace, and the timings are noise.
  if (role_of_mode(mode) == WorkerRole::background_benchmark) omp_set_num_threads(1);
  return true;
}

bool serves(WorkerRole role, MessageType type) {
  if (is_benchmark(role)) return type == MessageType::benchmark;
  return type == MessageType::compile_graph || type == MessageType::compile_unit;
}

int serve_jobs(WorkerRole role) {
  try {
    write_frame(kChannel, MessageType::hello,
                {{"pid", std::to_string(getpid())}, {"build_id", std::string(build_id())}});
    while (std::optional<Frame> request = read_frame(kChannel)) {
      if (request->type == MessageType::shutdown) break;
      if (!serves(role, request->type))
        throw WireError(fmt::format("unexpected {} message for a {}worker",
                                    message_type_name(request->type),
                                    is_benchmark(role) ? "benchmark " : "compile "));
      write_frame(kChannel, MessageType::reply, answer(*request));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "kiln-worker {}: {}\n", getpid(), e.what());
    return 1;
  }
  return 0;
}

// Receives one fork request: its frame and the two descriptors sent along (the worker's
// channel and diagnostics). Returns false at the end of the stream.
bool receive_fork_request(std::string* role, int* channel, int* diagnostics) {
  char data[256];
  int fds[2] = {-1, -1};
  char control[CMSG_SPACE(sizeof fds)] = {};
  iovec iov{data, sizeof data};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = recvmsg(kChannel, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return false;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof fds) || (msg.msg_flags & MSG_CTRUNC))
    throw WireError("fork request without its two descriptors");
  std::memcpy(fds, CMSG_DATA(c), sizeof fds);
  *channel = fds[0];
  *diagnostics = fds[1];
  Frame f = decode_frame(std::string_view(data, static_cast<size_t>(n)));
  if (f.type != MessageType::fork_worker)
    throw WireError(fmt::format("unexpected {} message", message_type_name(f.type)));
  *role = f.at("role");
  if (*role != "" && *role != ":idle" && *role != ":bench" && *role != ":bench-idle")
    throw WireError(fmt::format("unknown worker role '{}'", *role));
  return true;
}

// Each exited worker: its process group killed while its pid is still unreaped (so the id
// cannot have been reused), ending a compiler it left running, then reaped and reported.
void report_exited_children() {
  for (;;) {
    siginfo_t info{};
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    const pid_t pid = info.si_pid;
    kill(-pid, SIGKILL);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return;
    write_frame(kChannel, MessageType::worker_exit,
                {{"pid", std::to_string(pid)}, {"status", std::to_string(status)}});
  }
}

// The fork server: single-threaded, so that fork() is safe; forks a worker per request
// and reports each worker's exit status (only the parent can reap it).
int serve_forks() {
  try {
    for (;;) {
      report_exited_children();
      pollfd p{kChannel, POLLIN, 0};
      int r = poll(&p, 1, 100);
      if (r < 0 && errno != EINTR) return 1;
      if (r <= 0) continue;
      std::string role;
      int channel = -1, diagnostics = -1;
      if (!receive_fork_request(&role, &channel, &diagnostics)) return 0;
      pid_t server = getpid();
      pid_t child = fork();
      if (child == 0) {
        dup2(channel, 0);
        dup2(diagnostics, 1);
        dup2(diagnostics, 2);
        std::string mode = fmt::format("{}{}", server, role);
        if (!make_hermetic(mode)) std::_Exit(0);
        std::_Exit(serve_jobs(role_of_mode(mode)));
      }
      ::close(channel);
      ::close(diagnostics);
      write_frame(kChannel, MessageType::forked, {{"pid", std::to_string(child > 0 ? child : 0)}});
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "kiln fork server {}: {}\n", getpid(), e.what());
    return 1;
  }
}

}  // namespace

int worker_main() {
  const char* mode = std::getenv(kWorkerModeVariable);
  std::string mode_text = mode ? mode : "";
  unsetenv(kWorkerModeVariable);
  if (mode_text.empty()) {
    fmt::print(stderr, "kiln-worker: started by kiln only (it is a compile worker process)\n");
    return 2;
  }
  if (!make_hermetic(mode_text)) return 0;
  if (mode_text.find(":forkserver") != std::string::npos) return serve_forks();
  return serve_jobs(role_of_mode(mode_text));
}

// Spawn start: the host's own binary, re-executed with KILN_WORKER_MODE set, becomes a
// worker here, before its main (and its own static constructors) run.
__attribute__((constructor)) static void run_as_worker_when_asked() {
  if (std::getenv(kWorkerModeVariable)) std::_Exit(worker_main());
}

}  // namespace kiln
