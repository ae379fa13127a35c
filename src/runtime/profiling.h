// The inside of the profiler and the launch hooks (include/kiln/profiler.h): what the
// executor, the compile pipeline and the workers call.
//  - launches_observed() is the executor's one check per launch: true while hooks are set
//    or a profiler records.
//  - compile work timed by SpanScope (support/spans.h) reaches the profiler through the
//    span sink it sets while it observes; a worker's spans arrive in its replies
//    (record_worker_spans).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/profiler.h"
#include "support/spans.h"

namespace kiln {

bool launches_observed();
void notify_launch_enter(const LaunchInfo& info);
void notify_launch_exit(const LaunchInfo& info, double start_seconds);
bool profiler_recording();

// Records a slice on this process's current thread, if a profiler records (or, with
// `started_recording`, still runs: the slice began in a recorded step).
void record_span(std::string_view category, std::string_view name, double start_seconds,
                 double end_seconds, std::map<std::string, std::string> args = {},
                 bool started_recording = false);

// On the host: a kernel's duration as the GPU measured it (CUPTI, or CUDA events), on the GPU track
// of `stream` (its Chrome-trace thread id is kGpuTrackBase + stream, named "GPU stream N").
constexpr int64_t kGpuTrackBase = 1000000000;
void record_gpu_span(std::string_view name, int stream, double start_seconds,
                     double duration_seconds, std::map<std::string, std::string> args);

// On the host: a reply's spans, put on the track of worker `pid` (named by `role`).
void record_worker_spans(int64_t pid, std::string_view role, std::string_view encoded);

}  // namespace kiln
