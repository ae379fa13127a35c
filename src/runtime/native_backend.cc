// The native CPU backend: a CompiledPlan whose units were compiled to shared objects; each
// kernel launch is a call of its function (PlanExecutable runs the steps). A kernel built
// to run on several threads is timed on each call, and runs on its tuned threads or on one,
// whichever measures faster now (runtime/thread_choice.h).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "compile/shared_object.h"
#include "graph/dim.h"
#include "runtime/executable.h"
#include "runtime/plan_executable.h"
#include "runtime/thread_choice.h"
#include "support/fault_injection.h"
#include "support/stats.h"

namespace kiln {

namespace {

using KernelFn = void (*)(const int64_t*, char* const*);

// A kernel's thread choice, shared by the threads that call the executable.
struct ThreadArms {
  std::mutex mutex;
  ThreadChoice choice;
};

// Whether the kernel may run a parallel region: built by gcc with OpenMP (not the light
// tier's tcc), not tuned to one thread, and not of a constant size below its GRAIN (its
// loop's `if` keeps it on one thread: both arms would be the same, and timing them is
// overhead on a kernel of a few microseconds).
bool may_run_threads(const KernelLaunch& k) {
  if (k.light) return false;
  auto threads = k.config.find("THREADS");
  if (threads == k.config.end() || threads->second == 1) return false;
  auto grain = k.config.find("GRAIN");
  std::vector<int64_t> work, reduced;
  if (k.kind == "for" || grain == k.config.end() || !try_const_shape(k.work, &work) ||
      !try_const_shape(k.reduced_work, &reduced))
    return true;
  int64_t n = 1;  // the elements its parallel loop counts (rows * R), capped at GRAIN
  for (int64_t d : work) n = std::min(n * d, grain->second);
  for (int64_t d : reduced) n = std::min(n * d, grain->second);
  return n >= grain->second;
}

class NativeExecutable final : public PlanExecutable {
 public:
  NativeExecutable(CompiledPlan plan, const std::vector<std::shared_ptr<KernelObject>>& objects)
      : PlanExecutable(std::move(plan)),
        objects_(objects),
        slow_threads_(injected_fault().kind == InjectedFault::Kind::slow_threads) {
    backend_ = "cpp";
    for (const KernelLaunch& k : this->plan().kernels) {
      fns_.push_back(
          reinterpret_cast<KernelFn>(objects_.at(static_cast<size_t>(k.unit))->symbol(k.symbol)));
      arms_.push_back(may_run_threads(k) ? std::make_unique<ThreadArms>() : nullptr);
    }
    describe_launches();
  }
  std::string_view backend_name() const override { return "cpp"; }

 private:
  void launch(size_t kernel, const std::vector<int64_t>& bindings,
              const std::vector<char*>& buffers) override {
    ThreadArms* arms = arms_[kernel].get();
    const int threads = arms ? omp_get_max_threads() : 1;
    if (threads == 1) {
      fns_[kernel](bindings.data(), buffers.data());
      return;
    }
    ThreadChoice::Ticket ticket;
    {
      std::lock_guard<std::mutex> lock(arms->mutex);
      ticket = arms->choice.next();
    }
    const bool serial = ticket.arm == ThreadChoice::Arm::serial;
    if (serial) omp_set_num_threads(1);  // this thread's regions: KILN_THREADS_AT_MOST
    auto start = std::chrono::steady_clock::now();
    if (slow_threads_ && !serial)
      std::this_thread::sleep_for(std::chrono::duration<double>(kSlowThreadsSeconds));
    fns_[kernel](bindings.data(), buffers.data());
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (serial) omp_set_num_threads(threads);
    {
      std::lock_guard<std::mutex> lock(arms->mutex);
      arms->choice.record(ticket, seconds);
    }
    if (serial) bump(Stat::threads_serial_runs);
    if (ticket.probe) bump(Stat::threads_probes);
  }

  std::vector<std::shared_ptr<KernelObject>> objects_;  // per unit
  std::vector<KernelFn> fns_;                           // per kernel
  std::vector<std::unique_ptr<ThreadArms>> arms_;       // per kernel; null: one thread always
  bool slow_threads_;                                   // KILN_INJECT_FAULT=slow_threads
};

}  // namespace

std::unique_ptr<Executable> make_native_executable(
    CompiledPlan plan, const std::vector<std::shared_ptr<KernelObject>>& objects) {
  if (plan.device == Device::cuda) return make_cuda_executable(std::move(plan), objects);
  return std::make_unique<NativeExecutable>(std::move(plan), objects);
}

}  // namespace kiln
