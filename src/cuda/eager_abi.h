// The argument blocks of kiln's eager CUDA kernels (eager_kernels.cu, built with nvcc), shared
// by the kernels and the host code that launches them (eager_cuda.cc). Plain structs passed
// by value as the kernels' only parameter; dtypes and ops travel as kiln's DType and Op
// enum values.
#pragma once

#include <stdint.h>

namespace kiln::cuda {

constexpr int kMapMaxDims = 16;
constexpr int kMapMaxOperands = 4;

// An elementwise op over operands sharing one iteration shape (operand 0 is written; the
// others broadcast with zero strides), as StridedLoop describes it: sizes[0] innermost,
// strides in bytes. A scalar operand (binary ops with a scalar) is given by value instead
// of memory: `scalar_operand` is its index (1 or 2), or 0 for none.
struct MapArgs {
  int32_t ndim;
  int32_t noperands;
  int64_t numel;
  int64_t sizes[kMapMaxDims];
  int64_t strides[kMapMaxOperands][kMapMaxDims];
  char* base[kMapMaxOperands];
  int32_t dtypes[kMapMaxOperands];
  int32_t op;         // the Op; Op::to is a converting copy
  int32_t gelu_tanh;  // gelu: the tanh approximation
  int32_t scalar_operand;
  int32_t has_min, has_max;  // clamp
  double scalar_value;       // floating scalars and clamp bounds
  int64_t scalar_int;        // integer scalars
  double min_value, max_value;
  // Below 2^31 elements, division by sizes[d] is a multiply and a shift (set by
  // launch_map): n / sizes[d] == (umulhi(n, div_magic[d]) + n) >> div_shift[d].
  uint32_t div_magic[kMapMaxDims];
  uint32_t div_shift[kMapMaxDims];
};

// A reduction of each row of a contiguous [count, length] input (op: sum, prod, amax, amin,
// mean, var, std, logsumexp, argmax, argmin) into out[row].
struct ReduceArgs {
  const char* in;
  char* out;
  int64_t count, length;
  int32_t in_dtype, out_dtype;
  int32_t op;
  int32_t correction;  // var, std
};

// softmax / log_softmax of each row, or layer_norm of each row with optional f64 weight
// and bias of the row's length. In and out contiguous [count, length] of one dtype.
struct RowsArgs {
  const char* in;
  char* out;
  const double* weight;
  const double* bias;
  int64_t count, length;
  int32_t dtype;
  int32_t kind;  // 0 softmax, 1 log_softmax, 2 layer_norm
  double eps;
};

// out[i] = the `element_size` bytes at src + offsets[i] (byte offsets), for gather.
struct GatherArgs {
  char* out;
  const char* src;
  const int64_t* offsets;
  int64_t count;
  int32_t element_size;
};

// A draw of the random number generator (support/philox.inc) into a contiguous `out` of
// `numel` elements of `dtype`: rand (normal = 0) or randn (1) of the device state tensor
// `state` (i64 seed, offset), stream offset + draw.
struct RandomArgs {
  const int64_t* state;
  char* out;
  int64_t numel;
  int64_t draw;
  int32_t dtype;
  int32_t normal;
};

// Adaptive average pooling of contiguous f64 planes [planes, h, w] into [planes, oh, ow].
struct PoolArgs {
  const double* in;
  double* out;
  int64_t planes, h, w, oh, ow;
};

// Fused attention, out = softmax(q @ k^T * scale, -1) @ v (or / scale where `divide`), over
// `batch` problems: q [T, D], k [S, D], v [S, Dv] with contiguous rows (strides in elements),
// problem b at the offsets its batch index gives through batch_sizes (innermost first) and
// each operand's batch strides; out is contiguous [batch, T, Dv]. f32, f16 or bf16 (all
// four alike), accumulated in f32; D and Dv at most kAttentionMaxHead (f32) or
// kAttention16MaxHead (f16, bf16).
constexpr int kAttentionMaxBatchDims = 4;
constexpr int kAttentionMaxHead = 64;
// The kernel's tiles in shared memory, of (TF32 big, small) pairs: the block's query rows,
// and key_splits x kAttentionKeys keys and as many values, each row padded to its pitch
// (which keeps the fragment reads free of bank conflicts).
constexpr int kAttentionKeys = 32;
constexpr int kAttentionKeySplits =
    2;  // warps that share a block's rows, each a part of every key tile
constexpr int kAttentionQueryPitch = kAttentionMaxHead + 4,
              kAttentionKeyPitch = kAttentionMaxHead + 4,
              kAttentionValuePitch = kAttentionMaxHead + 2;
constexpr int attention_shared_bytes(int rows, int key_splits) {
  return (rows * kAttentionQueryPitch +
          key_splits * kAttentionKeys * (kAttentionKeyPitch + kAttentionValuePitch)) *
         8;
}
// The f16/bf16 kernel (attention_mma16.cuh): blocks of kAttention16Warps warps, 16 query
// rows each (kAttention16Rows a block), against tiles of kAttention16Keys keys; head dims up to
// kAttention16MaxHead, padded to 64 or 128 in shared memory, which holds the query rows and two
// stages of keys and values, each row of `head` 16-bit elements padded by 8.
constexpr int kAttention16Warps = 4;
constexpr int kAttention16Keys = 64;
constexpr int kAttention16MaxHead = 128;
// Measured on the H200, 32 rows a warp for head dims up to 64 was slower (two blocks a
// multiprocessor rather than three), and 8 warps a block (keys and values read once for 128
// rows) no faster: the loop is bound by its issue, not by memory.
constexpr int kAttention16Rows = 16 * kAttention16Warps;
constexpr int attention16_shared_bytes(int head) {
  return (kAttention16Rows + 4 * kAttention16Keys) * (head + 8) * 2;
}
struct AttentionArgs {
  const char* q;
  const char* k;
  const char* v;
  char* out;
  int32_t dtype;
  int32_t batch_dims;
  int64_t batch;
  int64_t batch_sizes[kAttentionMaxBatchDims];
  int64_t q_batch_strides[kAttentionMaxBatchDims], k_batch_strides[kAttentionMaxBatchDims],
      v_batch_strides[kAttentionMaxBatchDims];
  int64_t q_row_stride, k_row_stride, v_row_stride;
  int32_t t, s, d, dv;
  float scale;
  int32_t divide;
};

}  // namespace kiln::cuda
