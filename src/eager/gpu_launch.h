// Where the eager op families meet the GPU: an op whose operands live on Device::cuda runs
// the same host-side preparation as on the CPU (type promotion, broadcasting, the strided
// loop, rows) and then launches kiln's eager CUDA kernel instead of the CPU loop.
#pragma once

#include <optional>
#include <vector>

#include "cuda/eager_abi.h"
#include "cuda/eager_cuda.h"
#include "eager/strided_loop.h"
#include "graph/infer.h"
#include "graph/op.h"
#include "kiln/tensor.h"

namespace kiln {

inline bool on_gpu(const Tensor& t) { return t.device() == Device::cuda; }

// The map kernel's argument block for `loop` (operand dtypes in loop order) running `op`.
// Launched with cuda::launch_map (cuda/eager_cuda.h).
cuda::MapArgs map_args(Op op, const StridedLoop& loop, const std::vector<DType>& dtypes);

// matmul, bmm and linear of floating tensors on the GPU, in their own dtype (f16/bf16
// accumulate in f32), through cuBLASLt reading strided operands in place where it can;
// bias and the `epilogue` activation ("relu", "gelu_tanh") go into cuBLASLt's epilogue;
// `tune_algorithm` (max_autotune) times cuBLASLt's candidates once per shape (gpu_matmul.cc).
Tensor gpu_matmul(Op op, const std::vector<Tensor>& in, const std::string& epilogue,
                  bool tune_algorithm, const TensorType& out_type);

// Whether float32 products may use TF32 (set_float32_matmul_precision).
bool tf32_allowed();

}  // namespace kiln
