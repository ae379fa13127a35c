#include "worker/launch.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "kiln/error.h"
#include "support/files.h"
#include "support/log.h"
#include "support/process.h"
#include "wire/frame.h"

extern char** environ;

namespace kiln {

namespace {

std::string errno_text() { return std::strerror(errno); }

std::string library_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&worker_executable), &info) == 0 || !info.dli_fname)
    throw WorkerError("cannot locate libkiln.so (dladdr) to find kiln-worker");
  return std::filesystem::canonical(info.dli_fname).parent_path().string();
}

struct Pipes {
  int host_channel = -1, worker_channel = -1, diag_read = -1, diag_write = -1;
  void open() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      throw WorkerError(fmt::format("cannot create a worker channel: {}", errno_text()));
    host_channel = sv[0];
    worker_channel = sv[1];
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      close_all();
      throw WorkerError(fmt::format("cannot create a worker pipe: {}", errno_text()));
    }
    diag_read = p[0];
    diag_write = p[1];
  }
  void close_worker_ends() {
    if (worker_channel >= 0) ::close(worker_channel);
    if (diag_write >= 0) ::close(diag_write);
    worker_channel = diag_write = -1;
  }
  void close_all() {
    close_worker_ends();
    if (host_channel >= 0) ::close(host_channel);
    if (diag_read >= 0) ::close(diag_read);
    host_channel = diag_read = -1;
  }
};

std::string mode_value(pid_t parent, WorkerRole role, const char* extra = "") {
  return fmt::format("{}{}{}", parent, role_flag(role), extra);
}

pid_t spawn_process(const std::string& program, const std::string& argv0, const std::string& mode,
                    Pipes& pipes) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipes.worker_channel, 0);
  posix_spawn_file_actions_adddup2(&actions, pipes.diag_write, 1);
  posix_spawn_file_actions_adddup2(&actions, pipes.diag_write, 2);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "KILN_WORKER_MODE=", 17) != 0) env_strings.emplace_back(*e);
  env_strings.push_back(fmt::format("{}={}", kWorkerModeVariable, mode));
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string arg0 = argv0;
  char* argv[] = {arg0.data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  pipes.close_worker_ends();
  if (rc != 0) {
    pipes.close_all();
    throw WorkerError(
        fmt::format("cannot start compile worker {}: {}", program, std::strerror(rc)));
  }
  return pid;
}

// The fork server's client: one per process, started on first use. Requests are
// serialized; a reader thread collects the pids of forked workers and the exit statuses
// the server reports when it reaps them.
class ForkServer {
 public:
  static ForkServer& get() {
    static ForkServer* server = new ForkServer();  // lives until exit; its process dies with us
    return *server;
  }

  pid_t fork_worker(int channel, int diagnostics, WorkerRole role) {
    std::unique_lock<std::mutex> lock(mutex_);
    ensure_started(lock);
    std::string frame = encode_frame(MessageType::fork_worker, {{"role", role_flag(role)}});
    int fds[2] = {channel, diagnostics};
    char control[CMSG_SPACE(sizeof fds)] = {};
    iovec iov{frame.data(), frame.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    // The frame is small: one sendmsg carries it whole with the descriptors.
    if (sendmsg(socket_, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size()))
      throw WorkerError(
          fmt::format("fork server pid {}: cannot send a fork request: {}", pid_, errno_text()));
    // Answers come in request order: the n-th forked message answers the n-th request.
    const uint64_t ticket = ++requests_;
    if (!cv_.wait_for(lock, std::chrono::seconds(30),
                      [&] { return forked_.count(ticket) || dead_; }) ||
        !forked_.count(ticket))
      throw WorkerError(fmt::format("fork server pid {} did not fork a worker{}", pid_,
                                    dead_ ? ": it died" : ""));
    pid_t pid = forked_[ticket];
    forked_.erase(ticket);
    if (pid <= 0)
      throw WorkerError(fmt::format("fork server pid {} could not fork a worker", pid_));
    return pid;
  }

  // The worker's exit status in words, once the server reported it (up to `seconds`).
  std::string exit_status(pid_t pid, double seconds) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                      [&] { return exits_.count(pid) || dead_; }))
      return "exit status unknown";
    auto it = exits_.find(pid);
    if (it == exits_.end()) return "exit status unknown (the fork server died)";
    std::string status = describe_wait_status(it->second);
    exits_.erase(it);
    return status;
  }

 private:
  // The server is spawned by the thread that then reads its messages for as long as it
  // lives: PR_SET_PDEATHSIG fires when the spawning *thread* exits, so a pool thread that
  // ends must not take the server with it.
  void ensure_started(std::unique_lock<std::mutex>&) {
    if (pid_ > 0 && !dead_) return;
    std::promise<void> started;
    std::future<void> done = started.get_future();
    std::thread([this, &started] {
      int socket = -1;
      try {
        Pipes pipes;
        pipes.open();
        pid_t pid = spawn_process(worker_executable(), "kiln-fork-server",
                                  mode_value(getpid(), WorkerRole::compile, ":forkserver"), pipes);
        pid_ = pid;
        socket = socket_ = pipes.host_channel;
        diagnostics_ = pipes.diag_read;
        started.set_value();
      } catch (...) {
        started.set_exception(std::current_exception());
        return;
      }
      read_loop(socket);
    }).detach();
    dead_ = false;
    requests_ = answered_ = 0;
    forked_.clear();
    done.get();  // with the lock held: the thread takes it only after this
  }

  void read_loop(int socket) {
    try {
      while (std::optional<Frame> f = read_frame(socket)) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (f->type == MessageType::forked) {
          forked_[++answered_] = static_cast<pid_t>(std::stol(f->at("pid")));
        } else if (f->type == MessageType::worker_exit) {
          exits_[static_cast<pid_t>(std::stol(f->at("pid")))] = std::stoi(f->at("status"));
        }
        cv_.notify_all();
      }
    } catch (const std::exception& e) {
      if (log_enabled("workers"))
        log_line("workers", fmt::format("fork server pid {}: {}", pid_, e.what()));
    }
    if (log_enabled("workers")) log_line("workers", fmt::format("fork server pid {} ended", pid_));
    std::lock_guard<std::mutex> lock(mutex_);
    dead_ = true;
    cv_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  pid_t pid_ = 0;
  int socket_ = -1, diagnostics_ = -1;
  bool dead_ = false;
  uint64_t requests_ = 0, answered_ = 0;
  std::map<uint64_t, pid_t> forked_;  // by request number
  std::map<pid_t, int> exits_;
};

}  // namespace

std::string worker_executable() {
  static const std::string& path = *new std::string([] {
    std::string dir = library_directory();
    for (const char* relative : {KILN_WORKER_RELATIVE_PATH, "../libexec/kiln/kiln-worker"}) {
      std::string candidate = dir + "/" + relative;
      if (access(candidate.c_str(), X_OK) == 0)
        return std::filesystem::weakly_canonical(candidate).string();
    }
    throw WorkerError(fmt::format("kiln-worker not found beside {} (looked for {}/{})", dir, dir,
                                  KILN_WORKER_RELATIVE_PATH));
  }());
  return path;
}

const char* role_flag(WorkerRole role) {
  switch (role) {
    case WorkerRole::compile:
      return "";
    case WorkerRole::background_compile:
      return ":idle";
    case WorkerRole::benchmark:
      return ":bench";
    case WorkerRole::background_benchmark:
      return ":bench-idle";
  }
  return "";
}

bool is_benchmark(WorkerRole role) {
  return role == WorkerRole::benchmark || role == WorkerRole::background_benchmark;
}

bool is_background(WorkerRole role) {
  return role == WorkerRole::background_compile || role == WorkerRole::background_benchmark;
}

WorkerRole role_of_mode(const std::string& mode) {
  if (mode.find(":bench-idle") != std::string::npos) return WorkerRole::background_benchmark;
  if (mode.find(":bench") != std::string::npos) return WorkerRole::benchmark;
  if (mode.find(":idle") != std::string::npos) return WorkerRole::background_compile;
  return WorkerRole::compile;
}

WorkerProcess launch_worker(WorkerStart start, WorkerRole role) {
  Pipes pipes;
  pipes.open();
  WorkerProcess w;
  if (start == WorkerStart::Fork) {
    try {
      w.pid = ForkServer::get().fork_worker(pipes.worker_channel, pipes.diag_write, role);
    } catch (...) {
      pipes.close_all();
      throw;
    }
    pipes.close_worker_ends();
    w.forked = true;
  } else if (start == WorkerStart::Spawn) {
    w.pid =
        spawn_process("/proc/self/exe", "kiln-worker (spawn)", mode_value(getpid(), role), pipes);
  } else {
    w.pid = spawn_process(worker_executable(), "kiln-worker", mode_value(getpid(), role), pipes);
  }
  w.channel = pipes.host_channel;
  w.diagnostics = pipes.diag_read;
  return w;
}

std::string end_worker(WorkerProcess& w, bool kill_first) {
  if (w.pid <= 0) return "not running";
  // The worker leads its own process group: killing the group also ends a
  // compiler it was running.
  if (kill_first) {
    kill(-w.pid, SIGKILL);
    kill(w.pid, SIGKILL);
  }
  if (w.channel >= 0) ::close(w.channel);
  if (w.diagnostics >= 0) ::close(w.diagnostics);
  w.channel = w.diagnostics = -1;
  std::string status;
  if (w.forked) {
    status = ForkServer::get().exit_status(w.pid, 3);
    if (status.rfind("exit status unknown", 0) == 0) kill(w.pid, SIGKILL);
  } else {
    // Waited for without reaping, so that its process group can be killed while its pid is
    // still ours: a compiler it left running (it was killed by a signal) ends too.
    double deadline = monotonic_seconds() + 3;
    siginfo_t info{};
    while (waitid(P_PID, static_cast<id_t>(w.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == 0 && monotonic_seconds() < deadline)
      usleep(2000);
    kill(-w.pid, SIGKILL);
    kill(w.pid, SIGKILL);
    int st = 0;
    pid_t r;
    while ((r = waitpid(w.pid, &st, 0)) < 0 && errno == EINTR) {
    }
    status = r > 0 ? describe_wait_status(st) : "exit status unknown";
  }
  remove_scratch_of(w.pid);  // what it was compiling when it was killed
  w.pid = 0;
  return status;
}

}  // namespace kiln
