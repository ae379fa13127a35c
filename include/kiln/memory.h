// How much memory kiln's tensors hold, per device, as torch.cuda's memory_allocated,
// max_memory_allocated and reset_peak_memory_stats report it: the bytes of the live
// storages kiln allocated (rounded to the allocator's block sizes; memory viewed through
// from_blob is not counted, and neither are freed blocks kept for reuse), and the most that
// was live at once since the last reset. Counted for every storage, on every thread.
#pragma once

#include <cstdint>

#include "kiln/dtype.h"

namespace kiln {

int64_t memory_allocated(Device device = Device::cpu);
int64_t max_memory_allocated(Device device = Device::cpu);
// Starts a new peak at what is allocated now.
void reset_peak_memory_stats(Device device = Device::cpu);

}  // namespace kiln
