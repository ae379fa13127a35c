// The inside of the profiler and the launch hooks (include/kiln/profiler.h): what the
// executor, the compile pipeline and the workers call.
//  - launches_observed() is the executor's one check per launch: true while hooks are set
//    or a profiler records.
//  - SpanScope times a piece of compile work: into the recording profiler (this process's
//    track), and inside a worker into the running job's span list, which travels back in
//    the reply ("timings") and lands on the worker's own track of the host's profiler.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/profiler.h"

namespace kiln {

bool launches_observed();
void notify_launch_enter(const LaunchInfo& info);
void notify_launch_exit(const LaunchInfo& info, double start_seconds);
bool profiler_recording();

// Records a slice on this process's current thread, if a profiler records (or, with
// `started_recording`, still runs: the slice began in a recorded step).
void record_span(std::string_view category, std::string_view name, double start_seconds, double end_seconds,
                 std::map<std::string, std::string> args = {}, bool started_recording = false);

struct Span {
  std::string name;
  std::string category;
  double start_seconds = 0;  // CLOCK_MONOTONIC
  double duration_seconds = 0;
};

class SpanScope {
 public:
  SpanScope(std::string_view category, std::string name);
  ~SpanScope();
  SpanScope(const SpanScope&) = delete;
  SpanScope& operator=(const SpanScope&) = delete;

 private:
  std::string category_, name_;
  double start_;
};

// On the host: a kernel's duration as the GPU measured it (CUPTI, or CUDA events), on the GPU track of
// `stream` (its Chrome-trace thread id is kGpuTrackBase + stream, named "GPU stream N").
constexpr int64_t kGpuTrackBase = 1000000000;
void record_gpu_span(std::string_view name, int stream, double start_seconds, double duration_seconds,
                     std::map<std::string, std::string> args);

// In a worker: collect the spans of one job (on this thread) and encode them for the reply.
void begin_job_spans();
std::string end_job_spans();
// On the host: a reply's spans, put on the track of worker `pid` (named by `role`).
void record_worker_spans(int64_t pid, std::string_view role, std::string_view encoded);

}  // namespace kiln
