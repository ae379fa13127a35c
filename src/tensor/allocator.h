// The CPU allocator behind every tensor's storage: 64-byte aligned blocks, with large freed
// blocks kept for reuse, so that an op producing a fresh 64 MiB result each call does not
// pay the kernel's page faults each time (fresh large mallocs halve a memory-bound kernel).
#pragma once

#include <cstdint>
#include <memory>

namespace kiln {

class Storage {
 public:
  Storage(void* data, int64_t nbytes, int64_t capacity)
      : data_(data), nbytes_(nbytes), capacity_(capacity) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  int64_t nbytes() const { return nbytes_; }

 private:
  void* data_;
  int64_t nbytes_;
  int64_t capacity_;
};

std::shared_ptr<Storage> allocate_cpu(int64_t nbytes);
// Bytes held in the reuse cache right now (for tests and `kiln` diagnostics).
int64_t cpu_cached_bytes();

}  // namespace kiln
