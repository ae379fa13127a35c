// The native CUDA backend: a CompiledPlan whose units NVRTC compiled to cubins, loaded as
// CUDA modules. Each kernel takes one KilnArgs by value (the cuda dialect's ABI: the size
// symbols and its buffers) and is launched on kiln's stream with a grid sized by its work;
// the kernels grid-stride, so the grid only decides how full the GPU is. Ext steps run the
// eager op executor on device tensors (cuBLASLt for matmuls).
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "codegen/c_emitter.h"
#include "codegen/kernel_abi.h"
#include "cuda/cupti.h"
#include "cuda/device_memory.h"
#include "cuda/driver.h"
#include "eager/dispatch.h"
#include "eager/interpreter.h"
#include "kiln/error.h"
#include "runtime/executable.h"
#include "runtime/plan_executable.h"
#include "runtime/profiling.h"
#include "support/log.h"
#include "support/stats.h"
#include "tensor/tensor_impl.h"
#include "wire/frame.h"

namespace kiln {

namespace {

// Captured tensors move to the GPU once, when the executable is made.
CompiledPlan with_constants_on_gpu(CompiledPlan plan) {
  for (GraphConstant& c : plan.graph.constants)
    if (c.value.device() != Device::cuda) c.value = c.value.cuda();
  return plan;
}

class CudaExecutable final : public PlanExecutable {
 public:
  CudaExecutable(CompiledPlan plan, const std::vector<std::shared_ptr<KernelObject>>& objects)
      : PlanExecutable(with_constants_on_gpu(std::move(plan))), objects_(objects) {
    backend_ = "cuda";
    stream_id_ = 1;
    if (this->plan().graph.num_symbols > kCudaMaxSymbols)
      throw CompileError(fmt::format("graph {}: {} size symbols; CUDA kernels take at most {}",
                                     this->plan().graph.name, this->plan().graph.num_symbols,
                                     kCudaMaxSymbols));
    for (const KernelLaunch& k : this->plan().kernels) {
      const size_t buffers = k.params.size() + (k.split ? 2 : 0);  // split rows: counters, partials
      if (buffers > kCudaMaxBuffers)
        throw CompileError(fmt::format("kernel {}: {} buffers; CUDA kernels take at most {}",
                                       k.name, buffers, kCudaMaxBuffers));
      functions_.push_back(objects_.at(static_cast<size_t>(k.unit))->symbol(k.symbol));
    }
    multiprocessors_ = cuda::device_info().multiprocessors;
    describe_launches();
  }
  std::string_view backend_name() const override { return "cuda"; }

  ~CudaExecutable() override {
    if (graph_exec_ && cuda::available()) {
      try {
        cuda::synchronize("releasing a CUDA graph");
      } catch (const std::exception&) {  // a failed context: the blocks are lost with it
        return;
      }
      cuda::driver().cuGraphExecDestroy(graph_exec_);
      for (auto [block, capacity] : reserved_) cuda::release(block, capacity);
    }
  }

  // A replay writes the graph's own buffers: outputs are then copied out, never written
  // into the inputs.
  std::vector<Tensor> run_writing_into(const std::vector<Tensor>& inputs,
                                       const std::vector<WriteInto>& into) override {
    if (!plan().cuda_graphs || graph_failed_ || io_bytes(inputs) > kGraphIoLimit)
      return PlanExecutable::run_writing_into(inputs, into);
    const std::vector<int64_t> bindings = bind(inputs);
    if (!graph_exec_) {
      // The first call runs as usual: it loads what the plan uses (cuBLASLt's algorithms,
      // the eager kernels) and fills the allocator's cache, none of which may happen while
      // a graph is captured.
      if (!warmed_up_) {
        warmed_up_ = true;
        return PlanExecutable::run_writing_into(inputs, into);
      }
      if (!capture(inputs, bindings)) return PlanExecutable::run_writing_into(inputs, into);
    } else if (bindings != captured_bindings_) {
      // other dynamic sizes: not what was captured
      return PlanExecutable::run_writing_into(inputs, into);
    }
    return replay(inputs);
  }

 private:
  // A replay copies inputs at new addresses in and every result out: worth it while the
  // launches it saves cost more than the copies, so only for calls moving little data.
  static constexpr int64_t kGraphIoLimit = int64_t{16} << 20;
  int64_t io_bytes(const std::vector<Tensor>& inputs) const {
    int64_t bytes = 0;
    for (const Tensor& t : inputs) bytes += t.numel() * dtype_size(t.dtype());
    for (const Tensor& t : static_outputs_) bytes += t.numel() * dtype_size(t.dtype());
    return bytes;
  }

  // Captures one run over copies of `inputs` (the graph's own input buffers). False, with
  // the plan marked uncapturable, when a step cannot be captured.
  bool capture(const std::vector<Tensor>& inputs, const std::vector<int64_t>& bindings) {
    const cuda::Driver& d = cuda::driver();
    std::vector<Tensor> static_inputs;
    for (const Tensor& t : inputs) static_inputs.push_back(t.clone());
    cuda::synchronize("before capturing a CUDA graph");
    cuda::begin_capture_reservation();
    constexpr int kCaptureModeRelaxed = 2;  // allocation may call cuMemAlloc
    std::vector<Tensor> outputs;
    std::string failure;
    cuda::CUgraph graph = nullptr;
    if (cuda::CUresult r = d.cuStreamBeginCapture(cuda::stream(), kCaptureModeRelaxed); r != 0) {
      failure = "cuStreamBeginCapture failed";
    } else {
      try {
        outputs = PlanExecutable::run_writing_into(static_inputs, {});
      } catch (const std::exception& e) {
        failure = e.what();
      }
      cuda::CUresult end = d.cuStreamEndCapture(cuda::stream(), &graph);
      if (failure.empty() && end != 0)
        failure = "the capture was invalidated (a step synchronized with the host)";
    }
    std::vector<std::pair<void*, int64_t>> reserved = cuda::end_capture_reservation();
    if (failure.empty() && d.cuGraphInstantiate(&graph_exec_, graph, 0) != 0)
      failure = "cuGraphInstantiate failed";
    if (graph) d.cuGraphDestroy(graph);
    if (!failure.empty()) {
      graph_exec_ = nullptr;
      graph_failed_ = true;
      bump(Stat::cuda_graph_fallbacks);
      for (auto [block, capacity] : reserved) cuda::release(block, capacity);
      if (log_enabled("cuda"))
        log_line("cuda", fmt::format("graph {}: not captured as a CUDA graph: {}",
                                     plan().graph.name, failure));
      return false;
    }
    bump(Stat::cuda_graph_captures);
    reserved_ = std::move(reserved);
    static_inputs_ = std::move(static_inputs);
    static_outputs_ = std::move(outputs);
    captured_bindings_ = bindings;
    return true;
  }

  std::vector<Tensor> replay(const std::vector<Tensor>& inputs) {
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].impl()->data_ptr() != static_inputs_[i].impl()->data_ptr())
        copy_into(static_inputs_[i], inputs[i]);
    cuda::check(cuda::driver().cuGraphLaunch(graph_exec_, cuda::stream()), "cuGraphLaunch");
    bump(Stat::cuda_graph_replays);
    std::vector<Tensor> outputs;
    for (const Tensor& t : static_outputs_) outputs.push_back(t.clone());
    return outputs;
  }

  void launch(size_t kernel, const std::vector<int64_t>& bindings,
              const std::vector<char*>& buffers) override {
    const KernelLaunch& k = plan().kernels[kernel];
    KilnArgs args{};
    std::copy(bindings.begin(), bindings.end(), args.sizes);
    std::copy(buffers.begin(), buffers.end(), args.buffers);
    int64_t work = 1;
    for (const Dim& d : k.work) work *= d.eval(bindings);
    if (work <= 0) return;
    // Grid-stride kernels, given enough blocks that the hardware starts new loads as soon as
    // any block finishes: elementwise ones up to 32 waves of the blocks a multiprocessor
    // holds at once, row-per-block ones a block a row (up to the grid's limit). On an H100
    // both ran 4-5% faster than with four waves (pointwise 2^26: 280 -> 269 us; softmax
    // 8192x8192: 190 -> 182 us).
    const int64_t per_block = k.row_per_block           ? 1
                              : k.columns_per_block > 0 ? k.columns_per_block
                                                        : k.threads;
    const int64_t blocks = (work + per_block - 1) / per_block;
    unsigned grid = static_cast<unsigned>(
        std::min(blocks, k.row_per_block ? int64_t{0x7fffffff}
                                         : multiprocessors_ * (2048 / k.threads) * 32));
    if (k.split) {
      // Too few rows to fill the GPU: each row over several blocks, about 16 elements a thread.
      int64_t r = 1;
      for (const Dim& d : k.reduced_work) r *= d.eval(bindings);
      int64_t split = 1;
      if (work < multiprocessors_ * 2)
        split = std::clamp<int64_t>((r + k.threads * 16 - 1) / (k.threads * 16), 1,
                                    std::max<int64_t>(1, multiprocessors_ * 8 / work));
      grid = static_cast<unsigned>(work * split);
      const std::pair<char*, char*> scratch =
          split_scratch(kernel, work, split * std::max<int64_t>(1, k.phases));
      args.buffers[k.params.size()] = scratch.first;
      args.buffers[k.params.size() + 1] = scratch.second;
    }
    void* params[] = {&args};
    const bool timed = launches_observed() && profiler_recording();
    if (timed) begin_timing();
    const cuda::CUresult launched = cuda::driver().cuLaunchKernel(
        static_cast<cuda::CUfunction>(functions_[kernel]), grid, 1, 1,
        static_cast<unsigned>(k.threads), 1, 1, 0, cuda::stream(), params, nullptr);
    if (launched != 0) {  // named only on failure
      if (timed) abandon_timing();
      cuda::check(launched, fmt::format("launching {}", k.name).c_str());
    }
    if (timed) end_timing(k.name, grid, k.threads, k.symbol);
  }

  // A split reduction's scratch: zeroed counters (one a row; the kernel's last block of each
  // row resets its own) and 8-byte partials (`slots` a row: one per block and phase), grown
  // when a launch needs more.
  std::pair<char*, char*> split_scratch(size_t kernel, int64_t rows, int64_t slots) {
    const int64_t counters = (rows * 4 + 255) / 256 * 256, bytes = counters + rows * slots * 8;
    Tensor& scratch = scratch_[kernel];
    if (!scratch.defined() || scratch.numel() < bytes) {
      scratch = make_tensor({bytes}, DType::bool_, Device::cuda);
      cuda::check(cuda::driver().cuMemsetD8Async(
                      reinterpret_cast<cuda::CUdeviceptr>(scratch.impl()->data_ptr()), 0,
                      static_cast<size_t>(bytes), cuda::stream()),
                  "zeroing a split reduction's counters");
    }
    char* base = scratch.impl()->data_ptr();
    return {base, base + counters};
  }

  // Library steps (cuBLASLt) get device durations too, on the same GPU track.
  Tensor run_ext(size_t step, const Node& node, const std::vector<Tensor>& args,
                 const std::vector<int64_t>& bindings) override {
    const bool timed = launches_observed() && profiler_recording();
    if (!timed) return PlanExecutable::run_ext(step, node, args, bindings);
    begin_timing();
    Tensor result;
    try {
      result = PlanExecutable::run_ext(step, node, args, bindings);
    } catch (...) {
      abandon_timing();
      throw;
    }
    end_timing(launch_name(step), 0, 0);
    return result;
  }

  // Device durations for the profiler, read once the run's work has finished (after_steps).
  // With CUPTI, every kernel each launch or library step ran, timed on the device and
  // attributed to its step by an external correlation id pushed around it; without, a pair
  // of CUDA events around each, on a GPU track whose clock is anchored at the host time the
  // run's first event was queued.
  struct Timing {
    std::string name;
    std::string symbol;  // a kiln kernel's function (KernelLaunch::symbol); "" for other steps
    unsigned grid;
    int threads;
    size_t events;  // CUDA events: index of its start event; its end event follows
    uint64_t step;  // CUPTI: its correlation id
  };

  cuda::CUevent next_event() {
    if (used_events_ == events_.size()) {
      cuda::CUevent e = nullptr;
      cuda::check(cuda::driver().cuEventCreate(&e, 0), "cuEventCreate");
      events_.push_back(e);
    }
    return events_[used_events_++];
  }

  void begin_timing() {
    if (timings_.empty()) {
      anchor_seconds_ = monotonic_seconds();
      with_cupti_ = cuda::collect_kernel_activity();
    }
    if (with_cupti_) {
      step_id_ = cuda::new_step_id();
      cuda::push_step(step_id_);
      return;
    }
    cuda::check(cuda::driver().cuEventRecord(next_event(), cuda::stream()), "cuEventRecord");
  }

  void end_timing(std::string name, unsigned grid, int threads, std::string symbol = "") {
    if (with_cupti_) {
      cuda::pop_step();
      timings_.push_back({std::move(name), std::move(symbol), grid, threads, 0, step_id_});
      return;
    }
    cuda::check(cuda::driver().cuEventRecord(next_event(), cuda::stream()), "cuEventRecord");
    timings_.push_back({std::move(name), std::move(symbol), grid, threads, used_events_ - 2, 0});
  }

  // A launch or step failed midway: the run's timings are dropped and CUPTI's region for
  // the step is closed (the next run starts afresh).
  void abandon_timing() {
    if (with_cupti_) cuda::pop_step();
    timings_.clear();
    used_events_ = 0;
  }

  void after_steps() override {
    if (timings_.empty()) return;
    if (with_cupti_) return record_cupti_spans();
    const cuda::Driver& d = cuda::driver();
    cuda::check(d.cuEventSynchronize(events_[used_events_ - 1]), "cuEventSynchronize");
    const cuda::CUevent origin = events_[timings_.front().events];
    for (const Timing& t : timings_) {
      float offset_ms = 0, duration_ms = 0;
      cuda::check(d.cuEventElapsedTime(&offset_ms, origin, events_[t.events]),
                  "cuEventElapsedTime");
      cuda::check(d.cuEventElapsedTime(&duration_ms, events_[t.events], events_[t.events + 1]),
                  "cuEventElapsedTime");
      record_gpu_span(t.name, stream_id_, anchor_seconds_ + offset_ms * 1e-3, duration_ms * 1e-3,
                      {{"kernel_backend", "cuda"},
                       {"stream", std::to_string(stream_id_)},
                       {"grid", std::to_string(t.grid)},
                       {"block", std::to_string(t.threads)}});
    }
    timings_.clear();
    used_events_ = 0;
  }

  // Each kernel CUPTI saw in this run's steps, named by its step; a library's or an eager
  // op's own kernel name goes in the "kernel" argument. A step that ran no kernel (a view)
  // shows nothing: it did no device work.
  void record_cupti_spans() {
    cuda::synchronize("profiled run");
    std::map<uint64_t, const Timing*> by_step;
    for (const Timing& t : timings_) by_step[t.step] = &t;
    for (const cuda::KernelActivity& k :
         cuda::take_kernel_activity(timings_.front().step, timings_.back().step)) {
      const Timing& t = *by_step.at(k.step);
      std::map<std::string, std::string> args{{"kernel_backend", "cuda"},
                                              {"stream", std::to_string(stream_id_)},
                                              {"grid", std::to_string(k.grid)},
                                              {"block", std::to_string(k.block)},
                                              {"duration_source", "cupti"}};
      if (k.name != t.name && k.name != t.symbol) args["kernel"] = k.name;
      record_gpu_span(t.name, stream_id_, k.start_seconds, k.end_seconds - k.start_seconds,
                      std::move(args));
    }
    timings_.clear();
  }

  std::vector<std::shared_ptr<KernelObject>> objects_;  // per unit
  std::vector<void*> functions_;                        // per kernel: its CUfunction
  std::map<size_t, Tensor> scratch_;                    // per split kernel
  int64_t multiprocessors_ = 1;
  std::vector<cuda::CUevent> events_;  // reused across runs; never destroyed before the context
  size_t used_events_ = 0;
  std::vector<Timing> timings_;
  double anchor_seconds_ = 0;
  bool with_cupti_ = false;  // this run's timings come from CUPTI
  uint64_t step_id_ = 0;
  // CUDA graphs (CompileOptions::cuda_graphs).
  bool warmed_up_ = false, graph_failed_ = false;
  cuda::CUgraphExec graph_exec_ = nullptr;
  std::vector<int64_t> captured_bindings_;
  std::vector<Tensor> static_inputs_, static_outputs_;
  std::vector<std::pair<void*, int64_t>> reserved_;  // blocks the captured run freed
};

}  // namespace

std::unique_ptr<Executable> make_cuda_executable(
    CompiledPlan plan, const std::vector<std::shared_ptr<KernelObject>>& objects) {
  return std::make_unique<CudaExecutable>(std::move(plan), objects);
}

}  // namespace kiln
