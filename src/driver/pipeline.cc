#include "driver/pipeline.h"

#include <fmt/format.h>

#include <chrono>

#include "graph/text.h"
#include "graph/verify.h"
#include "support/log.h"

namespace kiln {

namespace {

// Runs one stage, logging its duration under KILN_LOGS=pipeline.
template <class Stage>
auto timed(const char* stage, const Graph& graph, Stage&& run) {
  auto start = std::chrono::steady_clock::now();
  auto finish_log = [&] {
    if (!log_enabled("pipeline")) return;
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() -
                                                          start)
                    .count();
    log_line("pipeline", fmt::format("{}: {} took {:.1f} us", graph.name, stage, us));
  };
  if constexpr (std::is_void_v<decltype(run())>) {
    run();
    finish_log();
  } else {
    auto result = run();
    finish_log();
    return result;
  }
}

}  // namespace

std::unique_ptr<Executable> compile_graph(const Graph& graph, const ResolvedOptions& options) {
  (void)options;  // every mode runs the interpreter backend until the CPU compiler lands
  if (log_enabled("graph")) log_line("graph", print_graph(graph));
  timed("verify", graph, [&] { verify_graph(graph); });
  return timed("backend", graph, [&] { return make_interpreter_executable(graph); });
}

}  // namespace kiln
