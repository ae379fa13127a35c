#include "runtime/profiling.h"

#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "cuda/cupti.h"
#include "kiln/error.h"
#include "support/text.h"
#include "wire/frame.h"

namespace kiln {

struct Profiler::State {
  ProfilerOptions options;
  mutable std::mutex mutex;
  std::vector<ProfileEvent> events;
  std::map<int64_t, std::string> process_names;
  bool started = false;
  int step = 0;
};

namespace {

struct Hooks {
  LaunchHook enter, exit;
};

// Everything global is reached under one mutex, except the flag a launch checks.
std::mutex g_mutex;
std::shared_ptr<const Hooks> g_hooks;
std::shared_ptr<Profiler::State> g_active;  // the started profiler
bool g_profiler_records = false;            // its schedule keeps the current step
std::atomic<bool> g_observed{false};

void record_compile_span(std::string_view category, std::string_view name, double start_seconds,
                         double end_seconds) {
  record_span(category, name, start_seconds, end_seconds);
}

void update_observed() {
  const bool observed = g_hooks != nullptr || g_profiler_records;
  g_observed.store(observed, std::memory_order_relaxed);
  set_span_sink(observed ? record_compile_span : nullptr);
}

int64_t this_thread_id() { return static_cast<int64_t>(syscall(SYS_gettid)); }

// Whether step `step` records under `schedule`.
bool records(const std::optional<ProfilerSchedule>& schedule, int step) {
  if (!schedule) return true;
  const ProfilerSchedule& s = *schedule;
  if (step < s.skip_first) return false;
  const int cycle = s.wait + s.warmup + s.active;
  if (cycle <= 0) return false;
  const int at = step - s.skip_first;
  if (s.repeat > 0 && at >= cycle * s.repeat) return false;
  return at % cycle >= s.wait + s.warmup;
}

// Keeps `event` if a profiler records now, or, with `started_recording`, if the profiler
// that recorded when the event began is still the active one (a scope spanning a step).
void add_event(ProfileEvent event, bool started_recording = false) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_active || !(g_profiler_records || started_recording)) return;
  std::lock_guard<std::mutex> events_lock(g_active->mutex);
  g_active->events.push_back(std::move(event));
}

}  // namespace

void set_launch_hooks(LaunchHook enter, LaunchHook exit) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_hooks = (enter || exit)
                ? std::make_shared<const Hooks>(Hooks{std::move(enter), std::move(exit)})
                : nullptr;
  update_observed();
}

bool launches_observed() { return g_observed.load(std::memory_order_relaxed); }

bool profiler_recording() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_profiler_records;
}

void notify_launch_enter(const LaunchInfo& info) {
  std::shared_ptr<const Hooks> hooks;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    hooks = g_hooks;
  }
  if (hooks && hooks->enter) hooks->enter(info);
}

void notify_launch_exit(const LaunchInfo& info, double start_seconds) {
  const double end = monotonic_seconds();
  std::shared_ptr<const Hooks> hooks;
  bool profiling;
  bool shapes = false;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    hooks = g_hooks;
    profiling = g_profiler_records;
    if (g_active) shapes = g_active->options.record_shapes;
  }
  if (hooks && hooks->exit) hooks->exit(info);
  if (!profiling) return;
  ProfileEvent e;
  e.name = std::string(info.name);
  e.category = "kernel";
  e.pid = getpid();
  e.tid = this_thread_id();
  e.start_us = start_seconds * 1e6;
  e.duration_us = (end - start_seconds) * 1e6;
  e.args = {{"kernel_backend", std::string(info.backend)},
            {"kernel_kind", std::string(info.kind)},
            {"stream", std::to_string(info.stream)},
            {"kernel_file", std::string(info.kernel_file)},
            {"kernel_symbol", std::string(info.kernel_symbol)},
            {"kernel_hash", std::string(info.kernel_hash)},
            {"kernel_kwargs", std::string(info.kernel_kwargs)}};
  if (shapes && info.input_shapes) e.input_shapes = *info.input_shapes;
  add_event(std::move(e));
}

void record_span(std::string_view category, std::string_view name, double start_seconds,
                 double end_seconds, std::map<std::string, std::string> args,
                 bool started_recording) {
  if (!started_recording && !launches_observed()) return;
  ProfileEvent e{std::string(name),
                 std::string(category),
                 getpid(),
                 this_thread_id(),
                 start_seconds * 1e6,
                 (end_seconds - start_seconds) * 1e6,
                 std::move(args),
                 {}};
  add_event(std::move(e), started_recording);
}

void record_gpu_span(std::string_view name, int stream, double start_seconds,
                     double duration_seconds, std::map<std::string, std::string> args) {
  if (!profiler_recording()) return;
  add_event({std::string(name),
             "gpu_kernel",
             getpid(),
             kGpuTrackBase + stream,
             start_seconds * 1e6,
             duration_seconds * 1e6,
             std::move(args),
             {}});
}

void record_worker_spans(int64_t pid, std::string_view role, std::string_view encoded) {
  if (encoded.empty() || !profiler_recording()) return;
  std::vector<ProfileEvent> events;
  for (std::string_view item : split_text(encoded, ';')) {
    std::vector<std::string_view> parts = split_text(item, '|');
    double begin = 0, duration = -1;
    // A malformed span is dropped: a worker's timings are only ever shown, never acted on.
    if (parts.size() == 4 &&
        std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), begin).ec ==
            std::errc() &&
        std::from_chars(parts[3].data(), parts[3].data() + parts[3].size(), duration).ec ==
            std::errc() &&
        duration >= 0 && duration < 1e6)
      events.push_back({std::string(parts[0]),
                        std::string(parts[1]),
                        pid,
                        pid,
                        begin * 1e6,
                        duration * 1e6,
                        {},
                        {}});
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_active || !g_profiler_records) return;
  std::lock_guard<std::mutex> events_lock(g_active->mutex);
  g_active->process_names[pid] = fmt::format("kiln {} worker {}", role, pid);
  for (ProfileEvent& e : events) g_active->events.push_back(std::move(e));
}

Profiler::Profiler(ProfilerOptions options) : state_(std::make_shared<State>()) {
  state_->options = options;
}

Profiler::~Profiler() { stop(); }

void Profiler::start() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_active == state_) return;
  if (g_active) throw Error("Profiler::start: another profiler is recording (one at a time)");
  g_active = state_;
  state_->started = true;
  state_->step = 0;
  g_profiler_records = records(state_->options.schedule, 0);
  update_observed();
}

void Profiler::stop() {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_active != state_) return;
    g_active = nullptr;
    g_profiler_records = false;
    update_observed();
  }
  cuda::stop_collecting_kernel_activity();  // started by the first profiled CUDA run, if any
}

void Profiler::step() {
  std::lock_guard<std::mutex> lock(g_mutex);
  ++state_->step;
  if (g_active == state_) {
    g_profiler_records = records(state_->options.schedule, state_->step);
    update_observed();
  }
}

std::vector<ProfileEvent> Profiler::events() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->events;
}

void Profiler::export_chrome_trace(const std::string& path) const {
  std::vector<ProfileEvent> events = this->events();
  std::map<int64_t, std::string> names;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    names = state_->process_names;
  }
  // Per thread in time order, an enclosing slice before what it encloses.
  std::sort(events.begin(), events.end(), [](const ProfileEvent& a, const ProfileEvent& b) {
    if (a.pid != b.pid) return a.pid < b.pid;
    if (a.tid != b.tid) return a.tid < b.tid;
    if (a.start_us != b.start_us) return a.start_us < b.start_us;
    return a.duration_us > b.duration_us;
  });
  nlohmann::json trace = nlohmann::json::array();
  std::map<int64_t, std::set<int64_t>> threads;
  for (const ProfileEvent& e : events) {
    nlohmann::json args = nlohmann::json::object();
    for (const auto& [k, v] : e.args) args[k] = v;
    if (!e.input_shapes.empty()) args["Input Dims"] = e.input_shapes;
    trace.push_back({{"name", e.name},
                     {"cat", e.category},
                     {"ph", "X"},
                     {"ts", e.start_us},
                     {"dur", e.duration_us},
                     {"pid", e.pid},
                     {"tid", e.tid},
                     {"args", args}});
    threads[e.pid].insert(e.tid);
  }
  const int64_t self = getpid();
  for (const auto& [pid, tids] : threads) {
    std::string process = pid == self        ? fmt::format("kiln host {}", pid)
                          : names.count(pid) ? names[pid]
                                             : fmt::format("kiln worker {}", pid);
    trace.push_back({{"name", "process_name"},
                     {"ph", "M"},
                     {"pid", pid},
                     {"tid", 0},
                     {"args", {{"name", process}}}});
    for (int64_t tid : tids)
      trace.push_back(
          {{"name", "thread_name"},
           {"ph", "M"},
           {"pid", pid},
           {"tid", tid},
           {"args",
            {{"name", tid == pid             ? std::string("main")
                      : tid >= kGpuTrackBase ? fmt::format("GPU stream {}", tid - kGpuTrackBase)
                                             : fmt::format("thread {}", tid)}}}});
  }
  nlohmann::json doc = {{"traceEvents", trace}, {"displayTimeUnit", "ms"}};
  const std::string tmp = fmt::format("{}.tmp.{}", path, getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    out << doc.dump();
    if (!out) throw Error(fmt::format("{}: cannot write the trace", tmp));
  }
  std::filesystem::rename(tmp, path);
}

RecordFunction::RecordFunction(std::string name) : name_(std::move(name)) {
  recording_ = profiler_recording();
  if (recording_) start_ = monotonic_seconds();
}

RecordFunction::~RecordFunction() {
  if (recording_) record_span("user", name_, start_, monotonic_seconds(), {}, true);
}

}  // namespace kiln
