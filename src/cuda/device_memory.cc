#include "cuda/device_memory.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <mutex>

#include "cuda/driver.h"
#include "kiln/error.h"

namespace kiln::cuda {

namespace {

constexpr int64_t kSmallGranule = 512;
constexpr int64_t kLargeThreshold = int64_t{1} << 20;
constexpr int64_t kLargeGranule = int64_t{2} << 20;

struct BlockCache {
  std::mutex mutex;
  std::multimap<int64_t, void*> free_blocks;  // capacity → block
  int64_t cached = 0;
  bool reserving = false;  // a capture runs: released blocks go to `reserved`
  std::vector<std::pair<void*, int64_t>> reserved;
};

std::mutex& capture_mutex() {
  static auto* m = new std::mutex;
  return *m;
}

BlockCache& cache() {
  static auto* c = new BlockCache;  // immortal: storages may be freed during exit
  return *c;
}

int64_t round_capacity(int64_t nbytes) {
  const int64_t granule = nbytes < kLargeThreshold ? kSmallGranule : kLargeGranule;
  return (std::max<int64_t>(nbytes, 1) + granule - 1) / granule * granule;
}

void free_cached_locked(BlockCache& c) {
  const Driver& d = driver();
  for (auto& [capacity, block] : c.free_blocks) d.cuMemFree(reinterpret_cast<CUdeviceptr>(block));
  c.free_blocks.clear();
  c.cached = 0;
}

CUdeviceptr address(const void* p) { return reinterpret_cast<CUdeviceptr>(p); }

// Small host-to-device copies (a graph scalar, a generator state, a backward's seed) go
// through pinned staging slots, so that the host need not wait for the GPU to catch up
// before the copy, as it must when the copy reads memory the caller may free at once:
// the bytes are copied into the next slot, the slot's copy is queued on kiln's stream and
// an event recorded after it, and a slot is reused only once its event has passed (64
// copies later: long done in practice). Not while a CUDA graph is captured (a replay would
// copy the slot again, by then overwritten): those copies wait, as before.
constexpr int64_t kStagingSlotBytes = int64_t{64} << 10;
constexpr int kStagingSlots = 64;
constexpr unsigned kEventDisableTiming = 0x2;

struct Staging {
  std::mutex mutex;
  bool tried = false;
  char* base = nullptr;  // kStagingSlots * kStagingSlotBytes of pinned memory, or none
  CUevent events[kStagingSlots] = {};
  bool queued[kStagingSlots] = {};
  int next = 0;
};

Staging& staging() {
  static auto* s = new Staging;  // immortal, as the cache
  return *s;
}

// Sets up the slots on first use; false (and copies wait) when pinned memory is refused.
bool staging_ready(Staging& s, const Driver& d) {
  if (s.tried) return s.base != nullptr;
  s.tried = true;
  void* base = nullptr;
  if (d.cuMemHostAlloc(&base, static_cast<size_t>(kStagingSlots * kStagingSlotBytes), 0) != 0)
    return false;
  for (CUevent& e : s.events)
    if (d.cuEventCreate(&e, kEventDisableTiming) != 0) return false;
  s.base = static_cast<char*>(base);
  return true;
}

bool capturing() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.reserving;
}

// Queues the copy from a staging slot; false when it must be made the waiting way.
bool copy_staged(void* device_dst, const void* host_src, int64_t nbytes) {
  if (nbytes > kStagingSlotBytes || capturing()) return false;
  const Driver& d = driver();
  Staging& s = staging();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!staging_ready(s, d)) return false;
  const int slot = s.next;
  s.next = (s.next + 1) % kStagingSlots;
  if (s.queued[slot]) check(d.cuEventSynchronize(s.events[slot]), "reusing a staging slot");
  char* staged = s.base + int64_t{slot} * kStagingSlotBytes;
  std::memcpy(staged, host_src, static_cast<size_t>(nbytes));
  check(d.cuMemcpyHtoDAsync(address(device_dst), staged, static_cast<size_t>(nbytes), stream()),
        "copy to the GPU");
  check(d.cuEventRecord(s.events[slot], stream()), "recording a staged copy");
  s.queued[slot] = true;
  return true;
}

}  // namespace

void* allocate(int64_t nbytes, int64_t* capacity) {
  if (nbytes < 0) throw Error(fmt::format("cannot allocate {} bytes of device memory", nbytes));
  const Driver& d = driver();
  *capacity = round_capacity(nbytes);
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.free_blocks.find(*capacity);
  if (it != c.free_blocks.end()) {
    void* block = it->second;
    c.free_blocks.erase(it);
    c.cached -= *capacity;
    return block;
  }
  CUdeviceptr p = 0;
  CUresult r = d.cuMemAlloc(&p, static_cast<size_t>(*capacity));
  if (r != 0 && !c.free_blocks.empty()) {
    synchronize("device allocation");  // cached blocks may still be read by queued kernels
    free_cached_locked(c);
    r = d.cuMemAlloc(&p, static_cast<size_t>(*capacity));
  }
  if (r != 0) {
    size_t free_bytes = 0, total = 0;
    d.cuMemGetInfo(&free_bytes, &total);
    check(r, fmt::format("allocating {} bytes on the GPU ({} of {} bytes free)", nbytes, free_bytes,
                         total)
                 .c_str());
  }
  return reinterpret_cast<void*>(p);
}

void release(void* block, int64_t capacity) {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (c.reserving) {
    c.reserved.emplace_back(block, capacity);
    return;
  }
  c.free_blocks.emplace(capacity, block);
  c.cached += capacity;
}

void begin_capture_reservation() {
  capture_mutex().lock();
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.reserving = true;
}

std::vector<std::pair<void*, int64_t>> end_capture_reservation() {
  BlockCache& c = cache();
  std::vector<std::pair<void*, int64_t>> out;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.reserving = false;
    out.swap(c.reserved);
  }
  capture_mutex().unlock();
  return out;
}

int64_t cached_bytes() {
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.cached;
}

void empty_cache() {
  synchronize("empty_cache");
  BlockCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  free_cached_locked(c);
}

void copy_to_device(void* device_dst, const void* host_src, int64_t nbytes) {
  if (nbytes == 0) return;
  if (copy_staged(device_dst, host_src, nbytes)) return;
  check(driver().cuMemcpyHtoDAsync(address(device_dst), host_src, static_cast<size_t>(nbytes),
                                   stream()),
        "copy to the GPU");
  // The host buffer may be freed as soon as this returns: wait for the copy.
  synchronize("copy to the GPU");
}

void copy_to_host(void* host_dst, const void* device_src, int64_t nbytes) {
  if (nbytes == 0) return;
  check(driver().cuMemcpyDtoHAsync(host_dst, address(device_src), static_cast<size_t>(nbytes),
                                   stream()),
        "copy from the GPU");
  synchronize("copy from the GPU");
}

void copy_on_device(void* device_dst, const void* device_src, int64_t nbytes) {
  if (nbytes == 0) return;
  check(driver().cuMemcpyDtoDAsync(address(device_dst), address(device_src),
                                   static_cast<size_t>(nbytes), stream()),
        "copy on the GPU");
}

}  // namespace kiln::cuda
