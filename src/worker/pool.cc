#include "worker/pool.h"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "kiln/error.h"
#include "observe/trace_log.h"
#include "runtime/profiling.h"
#include "support/build_id.h"
#include "support/env.h"
#include "support/log.h"
#include "support/stats.h"
#include "worker/launch.h"

namespace kiln {

namespace {

constexpr double kHelloTimeoutSeconds = 60;
constexpr size_t kStderrTail = 4096;

std::atomic<bool> exiting{false};  // set at exit: the pools take no more jobs

double idle_quit_seconds() { return env_seconds("KILN_COMPILE_IDLE_SECONDS", 300); }

}  // namespace

double default_job_timeout() { return env_seconds("KILN_COMPILE_TIMEOUT", 300); }

// One worker and the thread that drives it. `process`, `job_started` and `stderr_tail`
// belong to the slot's thread alone. The fields other threads read (status, wait_ready,
// the slot loops' wait predicates) are written only under State::mutex: `ready` and `pid`
// through State::publish, `want_start`, `busy` and `jobs_done` by the code holding it.
struct Slot {
  WorkerProcess process;
  bool ready = false;       // said hello
  int pid = 0;              // the ready worker's pid, else 0
  bool want_start = false;  // wait_ready asked for it
  bool busy = false;
  int jobs_done = 0;
  int failures = 0;
  double job_started = 0;
  std::string stderr_tail;
  std::thread thread;
};

struct Pending {
  Job job;
  JobDone done;
};

struct WorkerPool::State {
  WorkerStart start;
  int size;
  WorkerRole role;
  double idle_quit;
  mutable std::mutex mutex;
  std::condition_variable cv;
  std::deque<Pending> queue;
  std::deque<Slot> slots;  // a deque: slot threads hold references across growth
  bool threads_started = false;
  bool stopping = false;
  uint64_t next_job = 1;

  std::string describe(const Slot& slot, int pid, const std::string& what) const {
    std::string tail = slot.stderr_tail.empty() ? "(nothing)" : slot.stderr_tail;
    return fmt::format("compile worker pid {} ({} start, {}): {}; its stderr ended with: {}", pid,
                       worker_start_name(start),
                       start == WorkerStart::Spawn ? "this program" : worker_executable(), what,
                       tail);
  }

  // Appends what the worker wrote to stderr (non-blocking) to its tail.
  void drain(Slot& slot) {
    char buffer[4096];
    for (;;) {
      pollfd p{slot.process.diagnostics, POLLIN, 0};
      if (slot.process.diagnostics < 0 || ::poll(&p, 1, 0) <= 0) return;
      ssize_t n = ::read(slot.process.diagnostics, buffer, sizeof buffer);
      if (n <= 0) return;
      slot.stderr_tail.append(buffer, static_cast<size_t>(n));
      if (slot.stderr_tail.size() > kStderrTail)
        slot.stderr_tail.erase(0, slot.stderr_tail.size() - kStderrTail);
    }
  }

  // Waits for a frame on the slot's channel until `deadline`, draining stderr meanwhile.
  // Throws WorkerError when the worker died, broke the protocol, or the deadline passed
  // (the worker is then ended, with its exit status in the message).
  Frame receive(Slot& slot, double deadline, const std::string& job_name) {
    for (;;) {
      if (stopping_now()) {
        end_worker(slot.process, true);
        publish(slot, false);
        throw PoolShutDown(
            fmt::format("job '{}' was stopped: the compile workers were shut down", job_name));
      }
      double left = deadline - monotonic_seconds();
      if (left <= 0)
        fail(slot,
             fmt::format("job '{}' timed out after {:.0f} s and the worker was killed", job_name,
                         deadline - started_at(slot)),
             true);
      pollfd p[2] = {{slot.process.channel, POLLIN, 0}, {slot.process.diagnostics, POLLIN, 0}};
      int r = ::poll(p, 2, static_cast<int>(std::min(left, 0.1) * 1000) + 1);
      if (r <= 0) continue;
      if (p[1].revents) drain(slot);
      if (!p[0].revents) continue;
      std::optional<Frame> frame;
      try {
        frame = read_frame(slot.process.channel, deadline);
      } catch (const WireTimeout&) {
        continue;
      } catch (const WireError& e) {
        fail(slot, fmt::format("job '{}': broke the wire protocol ({})", job_name, e.what()), true);
      }
      if (!frame) fail(slot, fmt::format("died running job '{}'", job_name), false);
      return std::move(*frame);
    }
  }

  // Makes the slot's worker state visible to the other threads; called on the slot's
  // thread without the mutex held.
  void publish(Slot& slot, bool ready, bool failed = false) {
    std::lock_guard<std::mutex> lock(mutex);
    slot.ready = ready;
    slot.pid = ready ? slot.process.pid : 0;
    if (failed) ++slot.failures;
    cv.notify_all();
  }

  [[noreturn]] void fail(Slot& slot, const std::string& what, bool kill_first) {
    double until = monotonic_seconds() + 0.5;  // the rest of its dying words
    while (monotonic_seconds() < until) {
      pollfd p{slot.process.diagnostics, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) break;
      char buffer[4096];
      ssize_t n = ::read(slot.process.diagnostics, buffer, sizeof buffer);
      if (n <= 0) break;
      slot.stderr_tail.append(buffer, static_cast<size_t>(n));
    }
    if (slot.stderr_tail.size() > kStderrTail)
      slot.stderr_tail.erase(0, slot.stderr_tail.size() - kStderrTail);
    int pid = slot.process.pid;
    std::string status = end_worker(slot.process, kill_first);
    std::string message = describe(slot, pid, fmt::format("{} ({})", what, status));
    trace_artifact("worker_exit", {{"worker_pid", pid}, {"status", status}, {"why", message}});
    publish(slot, false, true);
    if (log_enabled("workers")) log_line("workers", message);
    throw WorkerError(message);
  }

  bool stopping_now() {
    std::lock_guard<std::mutex> lock(mutex);
    return stopping;
  }
  double started_at(const Slot& slot) { return slot.job_started; }

  // Starts the slot threads (lazily), up to `size` of them. Called with the mutex held.
  void ensure_threads() {
    threads_started = true;
    while (slots.size() < static_cast<size_t>(size)) {
      size_t i = slots.size();
      slots.emplace_back();
      slots.back().thread = std::thread([this, i] { slot_loop(i); });
    }
  }

  void start_worker(Slot& slot) {
    slot.stderr_tail.clear();
    slot.process = launch_worker(start, role);
    Frame hello = receive(slot, monotonic_seconds() + kHelloTimeoutSeconds, "hello");
    if (hello.type != MessageType::hello) fail(slot, "sent no hello", true);
    if (hello.at("build_id") != build_id())
      fail(slot,
           fmt::format("is from another kiln build ({}; this library is {})", hello.at("build_id"),
                       build_id()),
           true);
    publish(slot, true);
    trace_artifact("worker_start", {{"worker_pid", slot.process.pid},
                                    {"start", worker_start_name(start)},
                                    {"role", is_benchmark(role) ? "benchmark" : "compile"}});
    if (log_enabled("workers"))
      log_line("workers", fmt::format("worker {} ready ({} start)", slot.process.pid,
                                      worker_start_name(start)));
  }

  Fields run(Slot& slot, Pending& pending, uint64_t job_id) {
    Fields request = pending.job.fields;
    request["job"] = std::to_string(job_id);
    double deadline = monotonic_seconds() + pending.job.timeout_seconds;
    slot.job_started = monotonic_seconds();
    try {
      write_frame(slot.process.channel, pending.job.type, request, deadline);
    } catch (const WireTimeout&) {
      fail(slot,
           fmt::format("job '{}' timed out after {:.0f} s and the worker was killed",
                       pending.job.name, pending.job.timeout_seconds),
           true);
    } catch (const WireError& e) {
      fail(slot, fmt::format("could not take job '{}' ({})", pending.job.name, e.what()), true);
    }
    Frame reply = receive(slot, deadline, pending.job.name);
    if (reply.type != MessageType::reply || reply.fields["job"] != request["job"])
      fail(slot,
           fmt::format("answered job '{}' with a {} message for job '{}'", pending.job.name,
                       message_type_name(reply.type), reply.fields["job"]),
           true);
    bump(Stat::compile_subprocess);
    if (auto t = reply.fields.find("timings"); t != reply.fields.end())
      record_worker_spans(slot.process.pid, is_benchmark(role) ? "benchmark" : "compile",
                          t->second);
    const std::string& status = reply.at("status");
    if (status == "compile_error") throw CompileError(reply.at("message"));
    if (status == "error")
      throw Error(
          fmt::format("{} (in compile worker pid {})", reply.at("message"), slot.process.pid));
    if (status != "ok")
      fail(slot, fmt::format("answered job '{}' with status '{}'", pending.job.name, status), true);
    return std::move(reply.fields);
  }

  void slot_loop(size_t index) {
    Slot& slot = slots[index];
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      bool idle_timeout = !cv.wait_for(lock, std::chrono::duration<double>(idle_quit), [&] {
        return stopping || !queue.empty() || (slot.want_start && !slot.ready);
      });
      if (stopping) break;
      if (idle_timeout) {
        if (slot.ready) {
          lock.unlock();
          quit(slot);
          lock.lock();
        }
        continue;
      }
      if (queue.empty()) {  // asked to start only
        slot.want_start = false;
        lock.unlock();
        try {
          start_worker(slot);
        } catch (const Error& e) {  // the next job retries; wait_ready reports not ready
          if (log_enabled("workers"))
            log_line("workers", fmt::format("a worker did not start: {}", e.what()));
        }
        lock.lock();
        cv.notify_all();
        continue;
      }
      Pending pending = std::move(queue.front());
      queue.pop_front();
      uint64_t job_id = next_job++;
      slot.busy = true;
      lock.unlock();
      Fields reply;
      std::exception_ptr error;
      try {
        if (!slot.ready) start_worker(slot);
        reply = run(slot, pending, job_id);
      } catch (...) {
        error = std::current_exception();
      }
      // A callback that throws is a warning, never a std::terminate of the user's process.
      try {
        pending.done(error, std::move(reply));
      } catch (const std::exception& e) {
        warn_once(e.what(), fmt::format("a compile job's callback failed: {}", e.what()));
      } catch (...) {
        warn_once("unknown callback", "a compile job's callback failed");
      }
      lock.lock();
      slot.busy = false;
      ++slot.jobs_done;
    }
    lock.unlock();
    if (slot.process.pid > 0) quit(slot);
  }

  // Asks the worker to exit, then reaps it (killing it if it lingers).
  void quit(Slot& slot) {
    try {
      write_frame(slot.process.channel, MessageType::shutdown, {}, monotonic_seconds() + 1);
    } catch (const WireError&) {
    }
    int pid = slot.process.pid;
    std::string status = end_worker(slot.process, false);
    trace_artifact("worker_exit",
                   {{"worker_pid", pid}, {"status", status}, {"why", "asked to quit"}});
    publish(slot, false);
  }
};

WorkerPool::WorkerPool(WorkerStart start, int size, WorkerRole role)
    : state_(std::make_shared<State>()) {
  state_->start = start;
  state_->size = std::max(1, size);
  state_->role = role;
  state_->idle_quit = idle_quit_seconds();
}

WorkerPool::~WorkerPool() { shutdown(); }

WorkerStart WorkerPool::start_method() const { return state_->start; }

void WorkerPool::submit(Job job, JobDone done) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (state_->stopping ||
      exiting) {  // submitted by another job's callback, or a background task, at shutdown
    lock.unlock();
    done(std::make_exception_ptr(PoolShutDown(
             fmt::format("job '{}' was not run: the compile workers are shutting down", job.name))),
         {});
    return;
  }
  state_->ensure_threads();
  state_->queue.push_back(Pending{std::move(job), std::move(done)});
  state_->cv.notify_all();
}

std::future<Fields> WorkerPool::submit(Job job) {
  auto promise = std::make_shared<std::promise<Fields>>();
  std::future<Fields> result = promise->get_future();
  submit(std::move(job), [promise](std::exception_ptr error, Fields reply) {
    if (error)
      promise->set_exception(error);
    else
      promise->set_value(std::move(reply));
  });
  return result;
}

bool WorkerPool::wait_ready(double timeout_seconds) {
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (state_->stopping) return false;
  state_->ensure_threads();
  for (Slot& slot : state_->slots)
    if (!slot.ready) slot.want_start = true;
  state_->cv.notify_all();
  return state_->cv.wait_for(lock, std::chrono::duration<double>(timeout_seconds), [&] {
    for (const Slot& slot : state_->slots)
      if (!slot.ready) return false;
    return true;
  });
}

std::vector<WorkerStatus> WorkerPool::status() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  std::vector<WorkerStatus> out;
  for (size_t i = 0; i < state_->slots.size(); ++i) {
    const Slot& s = state_->slots[i];
    out.push_back({static_cast<int>(i), s.pid, s.busy, s.jobs_done, s.failures});
  }
  return out;
}

void WorkerPool::shutdown() {
  std::vector<std::thread> threads;
  std::deque<Pending> dropped;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (!state_->threads_started) return;
    state_->stopping = true;
    dropped = std::move(state_->queue);
    state_->queue.clear();
    for (Slot& s : state_->slots) threads.push_back(std::move(s.thread));
    state_->cv.notify_all();
  }
  // Outside the lock: a callback may submit (and be refused) or look up a pool.
  for (Pending& p : dropped)
    p.done(std::make_exception_ptr(PoolShutDown(fmt::format(
               "job '{}' was not run: the compile workers were shut down", p.job.name))),
           {});
  for (std::thread& t : threads) t.join();
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->threads_started = false;
  state_->stopping = false;
  state_->slots.clear();
}

void WorkerPool::grow(int size) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (size <= state_->size) return;
  state_->size = size;
  if (state_->threads_started && !state_->stopping) state_->ensure_threads();
}

namespace {

std::mutex pools_mutex;

// Background tasks (run_in_background): how many run, so that exit can wait for them.
struct BackgroundTasks {
  std::mutex mutex;
  std::condition_variable cv;
  int running = 0;
};
BackgroundTasks& background_tasks() {
  static auto* tasks = new BackgroundTasks();  // immortal: used during exit
  return *tasks;
}

// At exit: no new jobs, every pool stopped (running jobs fail with PoolShutDown), then
// the background tasks, failing fast, are given a few seconds to end.
void shut_down_at_exit() {
  exiting = true;
  shutdown_all_pools();
  BackgroundTasks& tasks = background_tasks();
  std::unique_lock<std::mutex> lock(tasks.mutex);
  tasks.cv.wait_for(lock, std::chrono::seconds(10), [&] { return tasks.running == 0; });
}
std::map<std::pair<WorkerStart, WorkerRole>, std::unique_ptr<WorkerPool>>& pools() {
  static auto* map =
      new std::map<std::pair<WorkerStart, WorkerRole>, std::unique_ptr<WorkerPool>>();
  return *map;
}

WorkerPool& pool_for(WorkerStart start, int size, WorkerRole role) {
  std::lock_guard<std::mutex> lock(pools_mutex);
  auto found = pools().find({start, role});
  if (found == pools().end()) {
    // Built before it is entered: a constructor that throws (a bad environment value)
    // leaves no entry behind for the exit handler to find.
    auto pool = std::make_unique<WorkerPool>(start, size, role);
    static bool registered = [] { return std::atexit(shut_down_at_exit) == 0; }();
    (void)registered;
    found = pools().emplace(std::make_pair(start, role), std::move(pool)).first;
  }
  found->second->grow(size);
  return *found->second;
}

}  // namespace

WorkerPool& compile_pool(WorkerStart start, int size, bool background) {
  return pool_for(start, size, background ? WorkerRole::background_compile : WorkerRole::compile);
}

WorkerPool& benchmark_pool(WorkerStart start, bool background) {
  return pool_for(start, 1, background ? WorkerRole::background_benchmark : WorkerRole::benchmark);
}

void run_in_background(std::function<void()> task) {
  // Registered (again) now, so that at exit it runs before the destructors of statics
  // constructed after the pools were: the task may still be using them.
  static bool registered = [] { return std::atexit(shut_down_at_exit) == 0; }();
  (void)registered;
  BackgroundTasks& tasks = background_tasks();
  {
    std::lock_guard<std::mutex> lock(tasks.mutex);
    ++tasks.running;
  }
  std::thread([task = std::move(task), &tasks] {
    // Tasks report their own failures; one that escapes is a warning here, never a
    // std::terminate of the user's process (a cache directory removed under a background
    // compile did that).
    try {
      task();
    } catch (const std::exception& e) {
      warn_once(e.what(), fmt::format("a background task failed: {}", e.what()));
    } catch (...) {
      warn_once("unknown", "a background task failed");
    }
    std::lock_guard<std::mutex> lock(tasks.mutex);
    --tasks.running;
    tasks.cv.notify_all();
  }).detach();
}

void shutdown_all_pools() {
  // Not under pools_mutex: a job's callback, finishing on a pool thread being joined, may
  // look up a pool.
  std::vector<WorkerPool*> all;
  {
    std::lock_guard<std::mutex> lock(pools_mutex);
    for (auto& [key, pool] : pools()) all.push_back(pool.get());
  }
  for (WorkerPool* pool : all) pool->shutdown();
}

std::vector<std::pair<WorkerStart, WorkerStatus>> pool_statuses(WorkerStart start,
                                                                bool background) {
  std::lock_guard<std::mutex> lock(pools_mutex);
  std::vector<std::pair<WorkerStart, WorkerStatus>> out;
  auto it =
      pools().find({start, background ? WorkerRole::background_compile : WorkerRole::compile});
  if (it != pools().end())
    for (const WorkerStatus& s : it->second->status()) out.emplace_back(start, s);
  return out;
}

bool any_pool_started() {
  std::lock_guard<std::mutex> lock(pools_mutex);
  for (auto& [key, pool] : pools())
    for (const WorkerStatus& s : pool->status())
      if (s.pid) return true;
  return false;
}

}  // namespace kiln
