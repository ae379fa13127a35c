#include "driver/staged_executable.h"

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>

#include "cache/cache_dir.h"
#include "driver/graph_compiler.h"
#include "graph/text.h"
#include "kiln/error.h"
#include "support/log.h"
#include "support/stats.h"
#include "worker/pool.h"

namespace kiln {

namespace {

struct Stage {
  std::string name;  // fast, optimized
  NativeCompile how;
};

// What the background compiles and the calls share.
struct StageBoard {
  std::mutex mutex;
  std::condition_variable landed;
  std::shared_ptr<Executable> newest;
  int newest_stage = -1;
  int settled = 0;  // stages that finished or failed
  std::vector<std::string> errors;
};

class StagedExecutable final : public Executable {
 public:
  StagedExecutable(const Graph& graph, const ResolvedOptions& options, std::vector<Stage> stages)
      : mode_(options.mode),
        graph_(std::make_shared<Graph>(graph)),
        stages_(std::make_shared<std::vector<Stage>>(std::move(stages))),
        board_(std::make_shared<StageBoard>()),
        eager_(make_interpreter_executable(std::shared_ptr<const Graph>(graph_))) {
    // The first stage starts here, so that a warm cache serves even the first call compiled.
    // With captured tensors on the GPU, starting it means copying them to the host (the
    // cache key hashes them, the job carries them), and with the caches off there is no
    // cache to look in: then it starts off the caller's thread, so that an Async first call
    // costs about one eager run.
    bool gpu_constants = false;
    for (const GraphConstant& c : graph.constants)
      gpu_constants |= c.value.device() == Device::cuda;
    if (gpu_constants || !cache_root()) {
      run_in_background(
          [graph = graph_, stages = stages_, board = board_] { launch(graph, stages, board, 0); });
    } else {
      launch(graph_, stages_, board_, 0);
    }
  }

  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    return run_writing_into(inputs, {});
  }

  std::vector<Tensor> run_writing_into(const std::vector<Tensor>& inputs,
                                       const std::vector<WriteInto>& into) override {
    std::shared_ptr<Executable> exe;
    int stage = -1;
    {
      std::unique_lock<std::mutex> lock(board_->mutex);
      if (mode_ == CompileMode::Progressive && board_->settled == 0)
        board_->landed.wait(lock, [&] { return board_->settled > 0; });
      exe = board_->newest;
      stage = board_->newest_stage;
    }
    if (!exe) {
      bump(Stat::async_eager_runs);
      return eager_->run(inputs);
    }
    if (mode_ != CompileMode::Progressive) bump(Stat::async_compiled_runs);
    if (mode_ != CompileMode::Async) {
      const std::string& name = (*stages_)[static_cast<size_t>(stage)].name;
      if (name == "fast") bump(Stat::progressive_fast_runs);
      if (name == "optimized") bump(Stat::progressive_optimized_runs);
    }
    return exe->run_writing_into(inputs, into);
  }

  std::string_view backend_name() const override { return "staged"; }

  std::string stage() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->newest_stage < 0 ? "eager"
                                    : (*stages_)[static_cast<size_t>(board_->newest_stage)].name;
  }

  std::vector<std::string> kernel_names() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->newest ? board_->newest->kernel_names() : std::vector<std::string>{};
  }

  std::vector<KernelInfo> kernels() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->newest ? board_->newest->kernels() : std::vector<KernelInfo>{};
  }

  std::string build_options() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->newest ? board_->newest->build_options() : std::string();
  }

  std::vector<std::string> compile_errors() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->errors;
  }

  bool wait_for_stages(double timeout_seconds) override {
    std::unique_lock<std::mutex> lock(board_->mutex);
    auto all_settled = [&] { return board_->settled == static_cast<int>(stages_->size()); };
    return board_->landed.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                                   all_settled);
  }

 private:
  // Compiles stage `index` in the background; when it lands (or fails), the next one
  // starts. Everything it touches is shared, so the executable may go away first.
  static void launch(std::shared_ptr<Graph> graph, std::shared_ptr<std::vector<Stage>> stages,
                     std::shared_ptr<StageBoard> board, size_t index) {
    if (index >= stages->size()) return;
    bump(Stat::async_bg_started);
    const Stage& stage = (*stages)[index];
    compile_native_async(
        *graph, stage.how,
        [graph, stages, board, index](std::exception_ptr error, std::unique_ptr<Executable> exe) {
          bump(Stat::async_bg_finished);
          {
            std::lock_guard<std::mutex> lock(board->mutex);
            if (exe) {
              board->newest = std::move(exe);
              board->newest_stage = static_cast<int>(index);
            } else {
              report(*graph, (*stages)[index].name, error, *board);
            }
            ++board->settled;
          }
          board->landed.notify_all();
          launch(graph, stages, board, index + 1);
        });
  }

  static void report(const Graph& graph, const std::string& stage, std::exception_ptr error,
                     StageBoard& board) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const PoolShutDown&) {
      return;  // the process is shutting its workers down: nothing failed
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    std::string message = fmt::format(
        "background compile of graph {} (stage {}) failed; calls go on with {}: {}", graph.name,
        stage, board.newest ? "the previous stage" : "the eager interpreter", what);
    board.errors.push_back(message);
    bump(Stat::async_bg_failed);
    std::fprintf(stderr, "kiln: %s\n", message.c_str());
  }

  CompileMode mode_;
  std::shared_ptr<Graph> graph_;
  std::shared_ptr<std::vector<Stage>> stages_;
  std::shared_ptr<StageBoard> board_;
  std::unique_ptr<Executable> eager_;
};

}  // namespace

std::vector<std::string> stage_names(const ResolvedOptions& options) {
  if (options.mode == CompileMode::Async) return {"optimized"};
  return options.stages.empty() ? std::vector<std::string>{"fast", "optimized"} : options.stages;
}

std::unique_ptr<Executable> make_staged_executable(const Graph& graph,
                                                   const ResolvedOptions& options) {
  std::vector<Stage> stages;
  for (const std::string& name : stage_names(options)) {
    Stage stage{name, {}};
    if (name == "fast") {
      stage.how.tier = Tier::fast;
    } else if (name != "optimized") {
      throw Error(fmt::format(
          "CompileOptions::stages: unknown stage '{}' (accepted: fast, optimized)", name));
    }
    stage.how.in_workers = true;
    stage.how.start = options.worker_start;
    stage.how.threads = options.compile_threads;
    // Compiles beside eager answers run at the lowest CPU priority (docs/design.md §5).
    stage.how.idle_priority = options.mode != CompileMode::Progressive;
    // Progressive's optimized stage is autotuned (docs/design.md §5); Async's single stage is not
    // by default, so that compiled code answers as soon as possible.
    stage.how.autotune = stage.how.tier == Tier::optimized &&
                         options.autotune.value_or(options.mode != CompileMode::Async);
    stage.how.coordinate_descent = options.coordinate_descent;
    stage.how.max_autotune = options.max_autotune;
    stage.how.cuda_graphs = options.cuda_graphs;
    stage.how.warm_up_libraries = false;  // not at exit (graph_compiler.h)
    stage.how.size_hints = graph.size_hints;
    set_device(stage.how, options.device);
    stages.push_back(std::move(stage));
  }
  return std::make_unique<StagedExecutable>(graph, options, std::move(stages));
}

}  // namespace kiln
