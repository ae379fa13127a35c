// The allocators behind tensors' storage. On the CPU: 64-byte aligned blocks, with large freed
// blocks kept for reuse, so that an op producing a fresh 64 MiB result each call does not
// pay the kernel's page faults each time (fresh large mallocs halve a memory-bound kernel).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "kiln/dtype.h"

namespace kiln {

// A storage also carries what compile() needs to see changes to it: a serial number (in
// order of creation: the tracer tells tensors captured from before a trace from those made
// during it) and a version counter, bumped by every write that is not a fresh result (an
// in-place op, copy_, data<T>(), a compiled function's write-back), shared by all views.
class Storage {
 public:
  Storage(void* data, int64_t nbytes, int64_t capacity, Device device = Device::cpu)
      : data_(data),
        nbytes_(nbytes),
        capacity_(capacity),
        device_(device),
        serial_(next_serial()) {}
  // Memory kiln does not own (from_blob): `deleter` (may be empty) runs when the last
  // tensor viewing it goes.
  Storage(void* data, int64_t nbytes, std::function<void(void*)> deleter)
      : data_(data),
        nbytes_(nbytes),
        capacity_(nbytes),
        device_(Device::cpu),
        serial_(next_serial()),
        external_(true),
        deleter_(std::move(deleter)) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  int64_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t serial() const { return serial_; }
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }
  // The serial the next storage will get.
  static uint64_t next_serial_peek();
  // Bumped when an in-place op gives a tensor on this storage new autograd history: the
  // other tensors viewing it keep their old history, which autograd then refuses to use.
  uint64_t history_epoch = 0;

 private:
  static uint64_t next_serial();

  void* data_;
  int64_t nbytes_;
  int64_t capacity_;
  Device device_;
  uint64_t serial_;
  std::atomic<uint64_t> version_{0};
  bool external_ = false;
  std::function<void(void*)> deleter_;
};

std::shared_ptr<Storage> allocate_cpu(int64_t nbytes);
// Device memory from the CUDA caching allocator (src/cuda/device_memory.h).
std::shared_ptr<Storage> allocate_cuda(int64_t nbytes);
std::shared_ptr<Storage> allocate(int64_t nbytes, Device device);
// Bytes held in the reuse cache right now (for tests and `kiln` diagnostics).
int64_t cpu_cached_bytes();

}  // namespace kiln
