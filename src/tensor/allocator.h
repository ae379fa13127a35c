// The allocators behind tensors' storage. On the CPU: 64-byte aligned blocks, with large freed
// blocks kept for reuse, so that an op producing a fresh 64 MiB result each call does not
// pay the kernel's page faults each time (fresh large mallocs halve a memory-bound kernel).
#pragma once

#include <cstdint>
#include <memory>

#include "kiln/dtype.h"

namespace kiln {

class Storage {
 public:
  Storage(void* data, int64_t nbytes, int64_t capacity, Device device = Device::cpu)
      : data_(data), nbytes_(nbytes), capacity_(capacity), device_(device) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  int64_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  int64_t nbytes_;
  int64_t capacity_;
  Device device_;
};

std::shared_ptr<Storage> allocate_cpu(int64_t nbytes);
// Device memory from the CUDA caching allocator (src/cuda/device_memory.h).
std::shared_ptr<Storage> allocate_cuda(int64_t nbytes);
std::shared_ptr<Storage> allocate(int64_t nbytes, Device device);
// Bytes held in the reuse cache right now (for tests and `kiln` diagnostics).
int64_t cpu_cached_bytes();

}  // namespace kiln
