#include "cuda/cupti.h"

#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>

#include "cuda/cupti_records.h"
#include "support/dynamic_library.h"
#include "wire/frame.h"

namespace kiln::cuda {
namespace {

// CUPTI's C ABI, declared here as the driver's is (src/cuda/driver.h), so that building
// needs no CUDA header; the records' layouts are in cupti_records.h.
using CuptiResult = int;
constexpr CuptiResult kSuccess =
    0;  // anything else ends a record walk (the last is MAX_LIMIT_REACHED)
constexpr int kKindDriver = 4, kKindRuntime = 5, kKindConcurrentKernel = 10,
              kKindExternalCorrelation = 39;
constexpr int kExternalCustom0 = 3;

struct ActivityRecord {
  int32_t kind;
};

using RequestBuffer = void (*)(uint8_t**, size_t*, size_t*);
using CompleteBuffer = void (*)(void*, uint32_t, uint8_t*, size_t, size_t);

struct Cupti {
  CuptiResult (*register_callbacks)(RequestBuffer, CompleteBuffer);
  CuptiResult (*enable)(int);
  CuptiResult (*disable)(int);
  CuptiResult (*flush_all)(uint32_t);
  CuptiResult (*next_record)(uint8_t*, size_t, ActivityRecord**);
  CuptiResult (*push_external)(int, uint64_t);
  CuptiResult (*pop_external)(int, uint64_t*);
  CuptiResult (*timestamp)(uint64_t*);
  CuptiResult (*result_string)(CuptiResult, const char**);
  std::string problem;
  double clock_offset = 0;  // monotonic_seconds() - CUPTI's seconds
};

constexpr size_t kBufferBytes = size_t{4} << 20;

// What the buffer callbacks found, until taken.
struct Store {
  std::mutex mutex;
  std::map<uint32_t, uint64_t> step_of_correlation;
  std::vector<std::pair<uint32_t, KernelActivity>> kernels;  // (correlation id, kernel)
  bool collecting = false;
  std::string enable_problem;  // why collecting could not start (then it is never retried)
};

Store& store() {
  static Store& s = *new Store();  // immortal: CUPTI may call back during exit
  return s;
}

void request_buffer(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

const Cupti& cupti();

void complete_buffer(void*, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  const Cupti& c = cupti();
  Store& s = store();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    ActivityRecord* record = nullptr;
    while (c.next_record(buffer, valid, &record) == kSuccess) {
      if (record->kind == kKindExternalCorrelation) {
        const auto* r = reinterpret_cast<const CuptiExternalCorrelationRecord*>(record);
        if (r->external_kind == kExternalCustom0)
          s.step_of_correlation[r->correlation_id] = r->external_id;
      } else if (record->kind == kKindConcurrentKernel) {
        const auto* r = reinterpret_cast<const CuptiKernelRecord*>(record);
        if (r->end < r->start) continue;  // incomplete: nothing to show
        KernelActivity k;
        k.name = r->name ? r->name : "(unnamed kernel)";
        k.start_seconds = r->start * 1e-9 + c.clock_offset;
        k.end_seconds = r->end * 1e-9 + c.clock_offset;
        k.grid = r->grid_x;
        k.block = r->block_x;
        s.kernels.emplace_back(r->correlation_id, std::move(k));
      }
    }
  }
  std::free(buffer);
}

template <class Fn>
void resolve(void* h, const char* symbol, Fn* fn, std::string* problem) {
  resolve_symbol(h, "libcupti", symbol, fn, problem);
}

const Cupti& cupti() {
  static const Cupti& loaded = *[] {
    auto* c = new Cupti();  // immortal
    void* h = open_toolkit_library("libcupti", {13, 12});
    if (!h) {
      c->problem = "libcupti (the CUDA toolkit's profiling library) was not found; set CUDA_HOME";
      return c;
    }
    std::string* p = &c->problem;
    resolve(h, "cuptiActivityRegisterCallbacks", &c->register_callbacks, p);
    resolve(h, "cuptiActivityEnable", &c->enable, p);
    resolve(h, "cuptiActivityDisable", &c->disable, p);
    resolve(h, "cuptiActivityFlushAll", &c->flush_all, p);
    resolve(h, "cuptiActivityGetNextRecord", &c->next_record, p);
    resolve(h, "cuptiActivityPushExternalCorrelationId", &c->push_external, p);
    resolve(h, "cuptiActivityPopExternalCorrelationId", &c->pop_external, p);
    resolve(h, "cuptiGetTimestamp", &c->timestamp, p);
    resolve(h, "cuptiGetResultString", &c->result_string, p);
    if (!c->problem.empty()) return c;
    uint64_t now = 0;
    const double host = monotonic_seconds();
    if (CuptiResult r = c->timestamp(&now); r != kSuccess) {
      c->problem = fmt::format("cuptiGetTimestamp failed ({})", r);
      return c;
    }
    c->clock_offset = host - now * 1e-9;
    if (CuptiResult r = c->register_callbacks(request_buffer, complete_buffer); r != kSuccess) {
      const char* text = nullptr;
      c->result_string(r, &text);
      c->problem = fmt::format("cuptiActivityRegisterCallbacks: {}", text ? text : "failed");
    }
    return c;
  }();
  return loaded;
}

const int kKinds[] = {kKindConcurrentKernel, kKindDriver, kKindRuntime, kKindExternalCorrelation};

}  // namespace

bool collect_kernel_activity() {
  const Cupti& c = cupti();
  if (!c.problem.empty()) return false;
  Store& s = store();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.collecting) return true;
  if (!s.enable_problem.empty()) return false;
  for (int kind : kKinds) {
    if (CuptiResult r = c.enable(kind); r != kSuccess) {
      const char* text = nullptr;
      c.result_string(r, &text);
      s.enable_problem = fmt::format("cuptiActivityEnable({}): {}", kind, text ? text : "failed");
      for (int k : kKinds) c.disable(k);
      return false;
    }
  }
  s.collecting = true;
  return true;
}

std::string unavailable_cupti_reason() {
  if (!cupti().problem.empty()) return cupti().problem;
  Store& s = store();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.enable_problem;
}

void stop_collecting_kernel_activity() {
  Store& s = store();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.collecting) return;  // never started (CUPTI then need not even be loaded)
    for (int kind : kKinds) cupti().disable(kind);
    s.collecting = false;
  }
  const Cupti& c = cupti();
  c.flush_all(0);
  std::lock_guard<std::mutex> lock(s.mutex);
  s.kernels.clear();
  s.step_of_correlation.clear();
}

uint64_t new_step_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void push_step(uint64_t id) { cupti().push_external(kExternalCustom0, id); }

void pop_step() {
  uint64_t last = 0;
  cupti().pop_external(kExternalCustom0, &last);
}

std::vector<KernelActivity> take_kernel_activity(uint64_t first, uint64_t last) {
  const Cupti& c = cupti();
  std::vector<KernelActivity> out;
  if (!c.problem.empty()) return out;
  c.flush_all(0);
  Store& s = store();
  std::lock_guard<std::mutex> lock(s.mutex);
  std::vector<std::pair<uint32_t, KernelActivity>> kept;
  for (auto& [correlation, kernel] : s.kernels) {
    auto it = s.step_of_correlation.find(correlation);
    if (it == s.step_of_correlation.end()) continue;  // launched outside any step
    if (it->second < first || it->second > last) {
      kept.emplace_back(correlation, std::move(kernel));  // another run's
      continue;
    }
    kernel.step = it->second;
    out.push_back(std::move(kernel));
  }
  // A run that never takes its records (it failed midway) must not grow the store forever.
  constexpr size_t kMaxKept = 1 << 16;
  s.kernels = kept.size() > kMaxKept ? decltype(kept){} : std::move(kept);
  for (auto it = s.step_of_correlation.begin(); it != s.step_of_correlation.end();)
    it =
        it->second >= first && it->second <= last ? s.step_of_correlation.erase(it) : std::next(it);
  if (s.step_of_correlation.size() > kMaxKept) s.step_of_correlation.clear();
  return out;
}

}  // namespace kiln::cuda
