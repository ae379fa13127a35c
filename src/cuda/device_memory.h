// Device memory for tensors on Device::cuda: a caching allocator over cuMemAlloc. Freed
// blocks are kept by size and handed to the next allocation of that size at once, which is
// safe because all of kiln's device work is ordered on its one stream (driver.h): a kernel
// queued later cannot run before the kernels that used the block earlier. When the driver
// runs out of memory the cache is released and the allocation retried once.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace kiln::cuda {

// A block of at least `nbytes` (256-byte aligned); its capacity (the rounded size) is
// written to `capacity`. Error naming the size and the device's free memory on failure.
void* allocate(int64_t nbytes, int64_t* capacity);
// Returns a block from allocate() to the cache.
void release(void* block, int64_t capacity);
// Bytes held in the cache now, and cuMemFree of all of them.
int64_t cached_bytes();
void empty_cache();

// While a CUDA graph is captured the blocks its run frees must stay its own (replays write
// them): between begin and end, released blocks are set aside instead of cached, and end
// hands them to the caller, which gives them back with release() once the graph is gone.
// One capture at a time (begin waits for the previous end).
void begin_capture_reservation();
std::vector<std::pair<void*, int64_t>> end_capture_reservation();

// Copies between host and device memory on kiln's stream; a copy to the host waits for it.
// `host_src` may be freed when copy_to_device returns (small copies are staged in pinned
// memory and return at once; larger ones wait for the copy).
void copy_to_device(void* device_dst, const void* host_src, int64_t nbytes);
void copy_to_host(void* host_dst, const void* device_src, int64_t nbytes);
void copy_on_device(void* device_dst, const void* device_src, int64_t nbytes);

}  // namespace kiln::cuda
