// The CUPTI activity records kiln reads, declared by kiln (building needs no CUDA header):
// the prefix that CUpti_ActivityKernel4..10 share, which is all kiln reads of a kernel
// record, and CUpti_ActivityExternalCorrelation. CUPTI's records are packed and 8-byte
// aligned; tests/cuda/cupti_layout_test.cc compares these offsets with the toolkit's header
// wherever it is installed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::cuda {

struct CuptiKernelRecord {
  int32_t kind;
  uint8_t cache_config, shared_memory_config;
  uint16_t registers_per_thread;
  int32_t partitioned_cache_requested, partitioned_cache_executed;
  uint64_t start, end, completed;  // ns, on cuptiGetTimestamp's clock
  uint32_t device_id, context_id, stream_id;
  int32_t grid_x, grid_y, grid_z, block_x, block_y, block_z;
  int32_t static_shared_memory, dynamic_shared_memory;
  uint32_t local_memory_per_thread, local_memory_total;
  uint32_t correlation_id;
  int64_t grid_id;
  const char* name;
};
static_assert(offsetof(CuptiKernelRecord, start) == 16 &&
              offsetof(CuptiKernelRecord, stream_id) == 48 &&
              offsetof(CuptiKernelRecord, correlation_id) == 92 &&
              offsetof(CuptiKernelRecord, name) == 104);

struct CuptiExternalCorrelationRecord {
  int32_t kind, external_kind;
  uint64_t external_id;
  uint32_t correlation_id, reserved;
};
static_assert(sizeof(CuptiExternalCorrelationRecord) == 24);

}  // namespace kiln::cuda
