#include "driver/staged_executable.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>

#include "cache/cache_dir.h"
#include "cuda/driver.h"
#include "driver/graph_compiler.h"
#include "driver/stage_trial.h"
#include "graph/text.h"
#include "kiln/error.h"
#include "observe/trace_log.h"
#include "support/env.h"
#include "support/fault_injection.h"
#include "support/log.h"
#include "support/stats.h"
#include "worker/pool.h"

namespace kiln {

namespace {

struct Stage {
  std::string name;  // fast, optimized
  NativeCompile how;
};

// While a stage compiles in the background, a CPU call runs on one OpenMP thread fewer than
// its caller allows (set_num_threads), leaving a core to the compile (worker/launch.h). A
// compiler on a core the calls' threads use made a parallel region wait at its barrier for
// the thread it displaced (an eager transformer call 3.6x as slow on 2 cores); a compile at
// SCHED_IDLE instead got no CPU from calls that keep every core busy and never landed. One
// thread fewer costs a call at most 1/n.
class ACoreLeftToTheCompile {
 public:
  explicit ACoreLeftToTheCompile(bool compiling) : threads_(compiling ? omp_get_max_threads() : 1) {
    if (threads_ < 2) return;
    omp_set_num_threads(threads_ - 1);
    bump(Stat::async_runs_leaving_a_core);
  }
  ~ACoreLeftToTheCompile() {
    if (threads_ >= 2) omp_set_num_threads(threads_);
  }
  ACoreLeftToTheCompile(const ACoreLeftToTheCompile&) = delete;
  ACoreLeftToTheCompile& operator=(const ACoreLeftToTheCompile&) = delete;

 private:
  int threads_;
};

// A landed stage made slower on purpose (KILN_INJECT_FAULT=slow_stage:NAME, or
// slow_after_trial once promoted). Each slow call runs the eager interpreter twice and sleeps
// kSlowStageSeconds before running the stage: slower than eager however loaded the machine is
// (a fixed sleep alone is not, when a preempted eager call takes a second), and slower than
// any stage by the sleep at least.
class SlowedExecutable final : public Executable {
 public:
  SlowedExecutable(std::unique_ptr<Executable> inner, std::shared_ptr<const Graph> graph,
                   bool slow_now)
      : inner_(std::move(inner)),
        eager_(make_interpreter_executable(std::move(graph))),
        slow_(slow_now) {}
  void promoted() { slow_ = true; }
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    return run_writing_into(inputs, {});
  }
  std::vector<Tensor> run_writing_into(const std::vector<Tensor>& inputs,
                                       const std::vector<WriteInto>& into) override {
    if (slow_) {
      for (int i = 0; i < 2; ++i) eager_->run(inputs);
      std::this_thread::sleep_for(std::chrono::duration<double>(kSlowStageSeconds));
    }
    return inner_->run_writing_into(inputs, into);
  }
  std::string_view backend_name() const override { return inner_->backend_name(); }
  std::vector<std::string> kernel_names() const override { return inner_->kernel_names(); }
  std::vector<KernelInfo> kernels() const override { return inner_->kernels(); }
  std::string build_options() const override { return inner_->build_options(); }

 private:
  std::unique_ptr<Executable> inner_;
  std::unique_ptr<Executable> eager_;
  std::atomic<bool> slow_;
};

std::unique_ptr<Executable> maybe_slowed(std::unique_ptr<Executable> exe,
                                         const std::shared_ptr<const Graph>& graph,
                                         const std::string& stage) {
  InjectedFault fault = injected_fault();
  if (fault.kind == InjectedFault::Kind::slow_after_trial)
    return std::make_unique<SlowedExecutable>(std::move(exe), graph, false);
  if (fault.kind != InjectedFault::Kind::slow_stage || fault.op != stage) return exe;
  return std::make_unique<SlowedExecutable>(std::move(exe), graph, true);
}

// A landed stage measured against the one serving the calls (driver/stage_trial.h).
// The candidate is a landed stage, or (exe null, stage -1) the eager interpreter in the final
// recheck (StagedExecutable::maybe_recheck_eager).
struct Trial {
  std::shared_ptr<Executable> exe;
  int stage = -1;
  size_t history_index = 0;      // its entry in StageBoard::history
  bool while_compiling = false;  // some of its calls ran beside a compile, a thread fewer
  StageTrial measure;
};

// What the background compiles and the calls share.
struct StageBoard {
  std::mutex mutex;
  std::condition_variable landed;
  std::shared_ptr<Executable> serving;  // null: the eager interpreter
  int serving_stage = -1;
  std::shared_ptr<Trial> trial;  // the landed stage on trial, if any
  // A stage that landed while another was on trial: it goes on trial when that one decides,
  // against whichever then serves the calls.
  std::shared_ptr<Trial> queued;
  int settled = 0;  // stages that landed or failed
  // The serving stage won a trial against the eager interpreter with every thread on both arms;
  // otherwise, once the last stage decided, eager is timed against it once more (rechecked).
  bool serving_beat_eager = false;
  bool rechecked = false;
  std::vector<std::string> errors;
  std::vector<StageDecision> history;
};

class StagedExecutable final : public Executable {
 public:
  StagedExecutable(const Graph& graph, const ResolvedOptions& options, std::vector<Stage> stages)
      : mode_(options.mode),
        on_cuda_(options.device == Device::cuda),
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
      run_in_background([graph = graph_, stages = stages_, board = board_, mode = mode_] {
        launch(graph, stages, board, mode, 0);
      });
    } else {
      launch(graph_, stages_, board_, mode_, 0);
    }
  }

  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    return run_writing_into(inputs, {});
  }

  std::vector<Tensor> run_writing_into(const std::vector<Tensor>& inputs,
                                       const std::vector<WriteInto>& into) override {
    std::shared_ptr<Executable> exe;
    int stage = -1;
    std::shared_ptr<Trial> trial;
    StageTrial::Ticket ticket;
    bool compiling = false;
    {
      std::unique_lock<std::mutex> lock(board_->mutex);
      if (mode_ == CompileMode::Progressive && board_->settled == 0)
        board_->landed.wait(lock, [&] { return board_->settled > 0; });
      exe = board_->serving;
      stage = board_->serving_stage;
      trial = board_->trial;
      compiling = board_->settled < static_cast<int>(stages_->size());
      if (trial) {
        trial->while_compiling |= compiling;
        ticket = trial->measure.next();
        if (ticket.arm == StageTrial::Arm::candidate) {
          exe = trial->exe;
          stage = trial->stage;
        }
      }
    }
    count_run(stage);
    ACoreLeftToTheCompile threads(compiling && !on_cuda_);
    Executable& runner = exe ? *exe : *eager_;
    if (!trial) return runner.run_writing_into(inputs, into);
    // A trial call: timed whole, the device's queue drained first and last on the GPU.
    if (on_cuda_) cuda::synchronize("a stage trial's call");
    auto start = std::chrono::steady_clock::now();
    std::vector<Tensor> out = runner.run_writing_into(inputs, into);
    if (on_cuda_) cuda::synchronize("a stage trial's call");
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
      std::lock_guard<std::mutex> lock(board_->mutex);
      if (board_->trial == trial) {
        trial->measure.record(ticket, seconds);
        if (std::optional<bool> promote = trial->measure.decision())
          finish_trial(*stages_, *graph_, *board_, mode_, *promote);
      }
    }
    return out;
  }

  std::string_view backend_name() const override { return "staged"; }

  std::string stage() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return stage_name(*stages_, board_->serving_stage);
  }

  std::vector<std::string> kernel_names() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->serving ? board_->serving->kernel_names() : std::vector<std::string>{};
  }

  std::vector<KernelInfo> kernels() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->serving ? board_->serving->kernels() : std::vector<KernelInfo>{};
  }

  std::string build_options() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->serving ? board_->serving->build_options() : std::string();
  }

  std::vector<std::string> compile_errors() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->errors;
  }

  std::vector<StageDecision> stage_history() const override {
    std::lock_guard<std::mutex> lock(board_->mutex);
    return board_->history;
  }

  bool wait_for_stages(double timeout_seconds) override {
    std::unique_lock<std::mutex> lock(board_->mutex);
    auto all_settled = [&] { return board_->settled == static_cast<int>(stages_->size()); };
    return board_->landed.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                                   all_settled);
  }

 private:
  static std::string stage_name(const std::vector<Stage>& stages, int index) {
    return index < 0 ? "eager" : stages[static_cast<size_t>(index)].name;
  }

  void count_run(int stage) const {
    if (stage < 0) {
      bump(Stat::async_eager_runs);
      return;
    }
    if (mode_ != CompileMode::Progressive) bump(Stat::async_compiled_runs);
    if (mode_ != CompileMode::Async) {
      const std::string& name = (*stages_)[static_cast<size_t>(stage)].name;
      if (name == "fast") bump(Stat::progressive_fast_runs);
      if (name == "optimized") bump(Stat::progressive_optimized_runs);
    }
  }

  // Compiles stage `index` in the background; when it lands (or fails), the next one
  // starts. Everything it touches is shared, so the executable may go away first.
  static void launch(std::shared_ptr<Graph> graph, std::shared_ptr<std::vector<Stage>> stages,
                     std::shared_ptr<StageBoard> board, CompileMode mode, size_t index) {
    if (index >= stages->size()) return;
    bump(Stat::async_bg_started);
    const Stage& stage = (*stages)[index];
    compile_native_async(*graph, stage.how,
                         [graph, stages, board, mode, index](std::exception_ptr error,
                                                             std::unique_ptr<Executable> exe) {
                           bump(Stat::async_bg_finished);
                           {
                             std::lock_guard<std::mutex> lock(board->mutex);
                             if (exe) {
                               land(graph, *stages, *board, mode, static_cast<int>(index),
                                    std::move(exe));
                             } else {
                               report(*graph, (*stages)[index].name, error, *board);
                             }
                             ++board->settled;
                             maybe_recheck_eager(*stages, *graph, *board, mode);
                           }
                           board->landed.notify_all();
                           launch(graph, stages, board, mode, index + 1);
                         });
  }

  // A stage landed: Progressive's first serves at once (that mode promises compiled code
  // from the first call); any other goes on trial against the stage serving the calls. One
  // that lands while another is on trial waits for that trial to decide rather than cut it
  // short: every stage gets a verdict, the later one is measured against the better of the
  // two before it, and how soon it lands no longer decides what the history says (a trial
  // lasts at most StageTrial::kMaxCalls calls of each arm).
  static void land(const std::shared_ptr<Graph>& shared_graph, const std::vector<Stage>& stages,
                   StageBoard& board, CompileMode mode, int index,
                   std::unique_ptr<Executable> landed) {
    const Graph& graph = *shared_graph;
    const std::string& name = stages[static_cast<size_t>(index)].name;
    std::shared_ptr<Executable> exe = maybe_slowed(std::move(landed), shared_graph, name);
    if (mode == CompileMode::Progressive && board.serving_stage < 0 && !board.trial) {
      board.serving = std::move(exe);
      board.serving_stage = index;
      board.history.push_back({name, "promoted", "", 0, 0, 0});
      log_decision(graph, board.history.back(), "serves from the first call (Progressive)");
      return;
    }
    auto trial = std::make_shared<Trial>();
    trial->exe = std::move(exe);
    trial->stage = index;
    if (!board.trial) {
      start_trial(stages, graph, board, std::move(trial));
      return;
    }
    if (board.queued) {
      const std::string& dropped = stages[static_cast<size_t>(board.queued->stage)].name;
      board.history.push_back({dropped, "superseded", "", 0, 0, 0});
      log_decision(graph, board.history.back(), "a newer stage landed while it waited");
    }
    board.queued = std::move(trial);
    if (log_enabled("stages"))
      log_line("stages", fmt::format("graph {}: stage {} landed; waits for the trial of {}",
                                     graph.name, name, stage_name(stages, board.trial->stage)));
  }

  static void start_trial(const std::vector<Stage>& stages, const Graph& graph, StageBoard& board,
                          std::shared_ptr<Trial> trial) {
    trial->history_index = board.history.size();
    board.history.push_back({stage_name(stages, trial->stage), "on_trial",
                             stage_name(stages, board.serving_stage), 0, 0, 0});
    log_decision(graph, board.history.back(), "landed; timed against the calls' stage");
    board.trial = std::move(trial);
  }

  // The trial decided (the caller holds the board's mutex).
  static void finish_trial(const std::vector<Stage>& stages, const Graph& graph, StageBoard& board,
                           CompileMode mode, bool promote) {
    Trial& trial = *board.trial;
    StageDecision& d = board.history[trial.history_index];
    d.outcome = promote ? "promoted" : "not_promoted";
    d.seconds = trial.measure.candidate_median();
    d.against_seconds = trial.measure.incumbent_median();
    d.calls = trial.measure.calls();
    bump(promote ? Stat::progressive_promoted : Stat::progressive_not_promoted);
    if (promote) {
      if (auto* slowed = dynamic_cast<SlowedExecutable*>(trial.exe.get())) slowed->promoted();
      board.serving = trial.exe;
      board.serving_stage = trial.stage;
      board.serving_beat_eager = trial.stage >= 0 && d.against == "eager" && !trial.while_compiling;
    }
    log_decision(graph, d,
                 fmt::format("{:.3f} ms per call against {:.3f} ms, {} calls each", d.seconds * 1e3,
                             d.against_seconds * 1e3, d.calls));
    board.trial.reset();
    if (board.queued) start_trial(stages, graph, board, std::move(board.queued));
    maybe_recheck_eager(stages, graph, board, mode);
  }

  // AsyncProgressive's last word (the caller holds the board's mutex): once every stage has
  // settled and decided, a compiled stage that serves without having beaten the eager
  // interpreter itself, on every thread, is timed against eager once more. Its promotion may
  // have been over the fast stage only, or over eager while a compile held a core (both arms a
  // thread fewer: a threaded eager BLAS call loses more of its speed than a fused kernel), and
  // "eager stays in use when every compiled stage is slower" must hold for what serves at the
  // end. The recheck is a trial like the others, eager the candidate; its verdict is one more
  // entry in the history (stage "eager"). Progressive never serves eager, so it has none.
  static void maybe_recheck_eager(const std::vector<Stage>& stages, const Graph& graph,
                                  StageBoard& board, CompileMode mode) {
    if (mode != CompileMode::AsyncProgressive || board.rechecked || board.trial || board.queued ||
        board.serving_stage < 0 || board.serving_beat_eager ||
        board.settled < static_cast<int>(stages.size()))
      return;
    board.rechecked = true;
    bump(Stat::progressive_eager_rechecks);
    start_trial(stages, graph, board, std::make_shared<Trial>());
  }

  // The log line (KILN_LOGS=stages) and the structured trace's stage_decision artifact.
  static void log_decision(const Graph& graph, const StageDecision& d, const std::string& why) {
    if (log_enabled("stages"))
      log_line("stages", fmt::format("graph {}: stage {} {}{}: {}", graph.name, d.stage, d.outcome,
                                     d.against.empty() ? "" : " vs " + d.against, why));
    if (trace_enabled())
      trace_artifact("stage_decision", {{"graph", graph.name},
                                        {"stage", d.stage},
                                        {"outcome", d.outcome},
                                        {"against", d.against},
                                        {"seconds", d.seconds},
                                        {"against_seconds", d.against_seconds},
                                        {"calls", d.calls}});
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
        stage, board.serving ? "the previous stage" : "the eager interpreter", what);
    board.errors.push_back(message);
    board.history.push_back({stage, "failed", "", 0, 0, 0});
    bump(Stat::async_bg_failed);
    std::fprintf(stderr, "kiln: %s\n", message.c_str());
  }

  CompileMode mode_;
  bool on_cuda_;
  std::shared_ptr<Graph> graph_;
  std::shared_ptr<std::vector<Stage>> stages_;
  std::shared_ptr<StageBoard> board_;
  std::unique_ptr<Executable> eager_;
};

}  // namespace

// The background compile workers: the cores this process may use beyond the threads its
// calls keep while a stage compiles (one fewer than the caller's OpenMP count), at least one,
// at most what CompileOptions::compile_threads allows.
int cores_left_to_compiles(int compile_threads) {
  const int calls = std::max(1, omp_get_max_threads() - 1);
  return std::clamp(usable_cpus() - calls, 1, std::max(1, compile_threads));
}

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
    // Compiles beside calls being served use the cores those calls leave (docs/design.md §5):
    // the caller's threads run one fewer while a stage compiles (ACoreLeftToTheCompile).
    stage.how.background = options.mode != CompileMode::Progressive;
    stage.how.threads = stage.how.background ? cores_left_to_compiles(options.compile_threads)
                                             : options.compile_threads;
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
