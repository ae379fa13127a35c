#include "tensor/allocator.h"

#include <fmt/format.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

#include "cuda/device_memory.h"
#include "kiln/error.h"
#include "kiln/memory.h"

namespace kiln {

namespace {

constexpr int64_t kAlignment = 64;
// Blocks at least this large are cached on free; smaller ones go back to malloc, which
// already serves them from its own free lists without page faults.
constexpr int64_t kCacheMinBytes = int64_t{1} << 20;
constexpr int64_t kCacheMaxTotalBytes = int64_t{1} << 30;

struct BlockCache {
  std::mutex mutex;
  std::multimap<int64_t, void*> free_blocks;  // capacity → block
  int64_t cached_bytes = 0;
};

BlockCache& block_cache() {
  static auto* cache = new BlockCache;  // never destroyed: storages may outlive statics
  return *cache;
}

int64_t round_capacity(int64_t nbytes) {
  if (nbytes < kCacheMinBytes) return (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  constexpr int64_t kGranule = int64_t{1} << 20;
  return (nbytes + kGranule - 1) / kGranule * kGranule;
}

std::atomic<uint64_t> g_next_storage_serial{1};

// memory.h's counts, per device: live bytes and their peak since the last reset.
struct LiveBytes {
  std::atomic<int64_t> live{0};
  std::atomic<int64_t> peak{0};
};

LiveBytes& live_bytes(Device device) {
  static LiveBytes counts[2];
  return counts[device == Device::cuda ? 1 : 0];
}

void count_allocated(Device device, int64_t capacity) {
  LiveBytes& c = live_bytes(device);
  int64_t now = c.live.fetch_add(capacity, std::memory_order_relaxed) + capacity;
  int64_t peak = c.peak.load(std::memory_order_relaxed);
  while (now > peak && !c.peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void count_freed(Device device, int64_t capacity) {
  live_bytes(device).live.fetch_sub(capacity, std::memory_order_relaxed);
}

}  // namespace

uint64_t Storage::next_serial() { return g_next_storage_serial.fetch_add(1); }
uint64_t Storage::next_serial_peek() { return g_next_storage_serial.load(); }

Storage::~Storage() {
  if (external_) {
    if (deleter_) deleter_(data_);
    return;
  }
  count_freed(device_, capacity_);
  if (device_ == Device::cuda) {
    cuda::release(data_, capacity_);
    return;
  }
  if (capacity_ >= kCacheMinBytes) {
    BlockCache& cache = block_cache();
    std::lock_guard<std::mutex> lock(cache.mutex);
    if (cache.cached_bytes + capacity_ <= kCacheMaxTotalBytes) {
      cache.free_blocks.emplace(capacity_, data_);
      cache.cached_bytes += capacity_;
      return;
    }
  }
  std::free(data_);
}

std::shared_ptr<Storage> allocate_cpu(int64_t nbytes) {
  if (nbytes < 0) throw Error(fmt::format("cannot allocate {} bytes", nbytes));
  int64_t capacity = round_capacity(std::max<int64_t>(nbytes, 1));
  if (capacity >= kCacheMinBytes) {
    BlockCache& cache = block_cache();
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.free_blocks.find(capacity);
    if (it != cache.free_blocks.end()) {
      void* data = it->second;
      cache.free_blocks.erase(it);
      cache.cached_bytes -= capacity;
      count_allocated(Device::cpu, capacity);
      return std::make_shared<Storage>(data, nbytes, capacity);
    }
  }
  void* data = std::aligned_alloc(kAlignment, static_cast<size_t>(capacity));
  if (!data) throw Error(fmt::format("out of memory allocating {} bytes for a tensor", nbytes));
  count_allocated(Device::cpu, capacity);
  return std::make_shared<Storage>(data, nbytes, capacity);
}

std::shared_ptr<Storage> allocate_cuda(int64_t nbytes) {
  int64_t capacity = 0;
  void* data = cuda::allocate(nbytes, &capacity);
  count_allocated(Device::cuda, capacity);
  return std::make_shared<Storage>(data, nbytes, capacity, Device::cuda);
}

std::shared_ptr<Storage> allocate(int64_t nbytes, Device device) {
  return device == Device::cuda ? allocate_cuda(nbytes) : allocate_cpu(nbytes);
}

int64_t memory_allocated(Device device) {
  return live_bytes(device).live.load(std::memory_order_relaxed);
}

int64_t max_memory_allocated(Device device) {
  return live_bytes(device).peak.load(std::memory_order_relaxed);
}

void reset_peak_memory_stats(Device device) {
  LiveBytes& c = live_bytes(device);
  c.peak.store(c.live.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

int64_t cpu_cached_bytes() {
  BlockCache& cache = block_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return cache.cached_bytes;
}

}  // namespace kiln
