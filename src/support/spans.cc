#include "support/spans.h"

#include <fmt/format.h>
#include <time.h>

#include <atomic>
#include <vector>

namespace kiln {

namespace {

std::atomic<SpanSink> g_sink{nullptr};
thread_local std::vector<Span>* t_job_spans = nullptr;

// A span's name and category travel in a ';'- and '|'-separated list.
std::string clean(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '|' || c == ';' || static_cast<unsigned char>(c) < 32) c = '_';
  return out;
}

}  // namespace

double monotonic_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void set_span_sink(SpanSink sink) { g_sink.store(sink, std::memory_order_relaxed); }

SpanScope::SpanScope(std::string_view category, std::string name)
    : category_(category), name_(std::move(name)), start_(monotonic_seconds()) {}

SpanScope::~SpanScope() {
  const double end = monotonic_seconds();
  if (t_job_spans) t_job_spans->push_back({name_, category_, start_, end - start_});
  if (SpanSink sink = g_sink.load(std::memory_order_relaxed)) sink(category_, name_, start_, end);
}

void begin_job_spans() {
  delete t_job_spans;
  t_job_spans = new std::vector<Span>();
}

std::string end_job_spans() {
  std::string out;
  if (!t_job_spans) return out;
  for (const Span& s : *t_job_spans)
    out += fmt::format("{}{}|{}|{:.6f}|{:.6f}", out.empty() ? "" : ";", clean(s.name),
                       clean(s.category), s.start_seconds, s.duration_seconds);
  delete t_job_spans;
  t_job_spans = nullptr;
  return out;
}

}  // namespace kiln
