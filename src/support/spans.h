// Timing compile work. A SpanScope measures a piece of work (a pass, lowering, a compiler
// run) on CLOCK_MONOTONIC and hands it to
//  - the span sink, when one is set: the profiler sets it while it observes
//    (runtime/profiling.cc), so the span lands on this process's track;
//  - inside a worker, the running job's span list (begin_job_spans), which travels back
//    in the reply ("timings") and lands on the worker's own track of the host's profiler.
// Kept at the bottom of the layers so that every stage can time itself without reaching up
// to the profiler.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

// CLOCK_MONOTONIC in seconds: the clock of spans, profiles and deadlines.
double monotonic_seconds();

struct Span {
  std::string name;
  std::string category;
  double start_seconds = 0;
  double duration_seconds = 0;
};

using SpanSink = void (*)(std::string_view category, std::string_view name, double start_seconds,
                          double end_seconds);
// Where finished spans go (nullptr: nowhere). Read with one relaxed load per span.
void set_span_sink(SpanSink sink);

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

// In a worker: collect the spans of one job (on this thread) and encode them for the reply
// as "name|category|start|duration" items joined by ';'.
void begin_job_spans();
std::string end_job_spans();

}  // namespace kiln
