// Seeing into compiled code (docs/design.md §7): launch hooks around every kernel launch, and a
// profiler that records a slice per launch (named after the kernel, with its metadata),
// record_function scopes, and the compile work of this process and of its workers on
// their own process tracks, exported as Chrome trace JSON that Perfetto loads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

// One kernel launch, as hooks and the profiler see it. Views are valid during the call.
struct LaunchInfo {
  std::string_view name;         // cpp_poi_fused_add_cos_sin_0; library steps: cpp_ext_matmul_3
  std::string_view kind;         // poi, red, per, for, tem, ext
  std::string_view backend;      // cpp
  int stream = 0;                // CPU launches run in order on stream 0
  std::string_view kernel_file;  // the source file holding it ("" for ext steps)
  // Its function in that file, named after its body (launches of equal kernels share one):
  // cpp_poi_fused_add_cos_sin_3f9a0c2e7b41
  std::string_view kernel_symbol;
  std::string_view kernel_hash;    // XXH3-128 (hex) of that file's content
  std::string_view kernel_kwargs;  // its config, e.g. "GRAIN=32768,THREADS=0,VEC=0"
  const std::vector<Shape>* input_shapes = nullptr;  // the shapes of what it reads
};

using LaunchHook = std::function<void(const LaunchInfo&)>;
// Called around every kernel launch of every compiled function, on the launching thread;
// empty functions remove them. With no hooks (and no profiler) a launch pays one load.
void set_launch_hooks(LaunchHook enter, LaunchHook exit);

// A recorded slice: a kernel launch (category "kernel"), a record_function scope ("user"),
// compile work here or in a worker ("compile", "autotune").
struct ProfileEvent {
  std::string name;
  std::string category;
  int64_t pid = 0;
  int64_t tid = 0;
  double start_us = 0;  // CLOCK_MONOTONIC microseconds, shared by this process and its workers
  double duration_us = 0;
  std::map<std::string, std::string> args;
  std::vector<Shape> input_shapes;  // kernels, with record_shapes
};

// Which steps record (like torch.profiler.schedule): skip_first steps, then cycles of
// `wait` idle steps, `warmup` steps (run, not kept) and `active` kept steps, `repeat`
// cycles (0: for ever). Steps are counted by Profiler::step().
struct ProfilerSchedule {
  int skip_first = 0;
  int wait = 0;
  int warmup = 0;
  int active = 1;
  int repeat = 0;
};

struct ProfilerOptions {
  bool record_shapes = true;
  std::optional<ProfilerSchedule> schedule;  // none: every step records
};

// One profiler records at a time; starting a second while one records is an Error.
class Profiler {
 public:
  explicit Profiler(ProfilerOptions options = {});
  ~Profiler();  // stops
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  void start();
  void stop();
  void step();  // ends the current step (the schedule's unit)
  std::vector<ProfileEvent> events() const;
  // Writes {"traceEvents": [...]} (complete events with microsecond ts, process and thread
  // name metadata) atomically to `path`.
  void export_chrome_trace(const std::string& path) const;

  struct State;  // the implementation's (src/runtime/profiling.cc)

 private:
  std::shared_ptr<State> state_;
};

// A named scope on the profiler's timeline: RecordFunction scope = record_function("load").
class RecordFunction {
 public:
  explicit RecordFunction(std::string name);
  ~RecordFunction();
  RecordFunction(const RecordFunction&) = delete;
  RecordFunction& operator=(const RecordFunction&) = delete;

 private:
  std::string name_;
  double start_ = 0;
  bool recording_ = false;
};
[[nodiscard]] inline RecordFunction record_function(std::string name) {
  return RecordFunction(std::move(name));
}

}  // namespace kiln
