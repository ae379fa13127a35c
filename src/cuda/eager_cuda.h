// Host side of kiln's eager CUDA kernels (eager_kernels.cu): loads the embedded fatbin into
// the context on first use and launches its kernels on kiln's stream. The eager op families
// (src/eager/) build the argument blocks exactly as for their CPU loops and call these when
// their operands live on the GPU.
#pragma once

#include "cuda/eager_abi.h"

namespace kiln::cuda {

void launch_map(const MapArgs& args);
void launch_reduce(const ReduceArgs& args);
void launch_rows(const RowsArgs& args);
void launch_gather(const GatherArgs& args);
void launch_pool2d(const PoolArgs& args);
void launch_random(const RandomArgs& args);
// Whether the fused attention kernel takes these shapes (head dims, batch count).
bool attention_supported(const AttentionArgs& args);
void launch_attention(const AttentionArgs& args);

}  // namespace kiln::cuda
