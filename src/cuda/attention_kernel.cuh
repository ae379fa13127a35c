// Fused attention for kiln's eager CUDA kernels (included by eager_kernels.cu, which builds
// them all as one nvcc translation unit). One block computes BM query rows of one problem,
// streaming the keys and values through shared memory BN rows at a time with an online
// softmax (running row max and sum, earlier partial results rescaled), so the T x S score
// matrix never reaches memory. Threads form BM/RPT row groups of 8: thread (ty, tx) holds
// scores of rows ty*RPT..+RPT x keys tx*4..+4 and output rows ty*RPT..+RPT x dims tx*8..+8; a row's
// max and sum combine across its 8 threads by shuffles. Products accumulate in f32 FMAs
// (no tensor cores: f32 stays f32, as in the unfused ops).
#pragma once

namespace kiln_attention {

constexpr int kBN = 32;                     // keys a tile
constexpr int kHead = kAttentionMaxHead;    // head dims, zero-padded

__device__ __forceinline__ float load_float(const char* base, int64_t element, int dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::f16: return __half2float(reinterpret_cast<const __half*>(base)[element]);
    case DType::bf16: return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(base)[element]);
    default: return reinterpret_cast<const float*>(base)[element];
  }
}

__device__ __forceinline__ void store_float(char* base, int64_t element, int dtype, float v) {
  switch (static_cast<DType>(dtype)) {
    case DType::f16: reinterpret_cast<__half*>(base)[element] = __float2half_rn(v); break;
    case DType::bf16: reinterpret_cast<__nv_bfloat16*>(base)[element] = __float2bfloat16_rn(v); break;
    default: reinterpret_cast<float*>(base)[element] = v; break;
  }
}

// Max and sum over the 8 threads of a row group (consecutive lanes).
__device__ __forceinline__ float group_max(float x) {
  for (int o = 1; o < 8; o <<= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float group_sum(float x) {
  for (int o = 1; o < 8; o <<= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// A thread's share of rows first..first+ROWS (of `rows`) x dims 0..kHead (of `dims`) of an
// operand, zero outside it: fetched into registers (the loads stay in flight until the
// values are put), then put into shared memory, transposed ([dim][row], row pitch `pitch`)
// or not ([row][dim]).
template <int ROWS, int THREADS>
struct TileShare {
  static constexpr int kEach = ROWS * kHead / THREADS;
  float values[kEach];

  __device__ __forceinline__ void fetch(const char* base, int64_t offset, int64_t row_stride, int first, int rows,
                                        int dims, int dtype) {
#pragma unroll
    for (int i = 0; i < kEach; ++i) {
      const int e = threadIdx.x + i * THREADS, r = e / kHead, d = e % kHead;
      values[i] = first + r < rows && d < dims ? load_float(base, offset + (first + r) * row_stride + d, dtype) : 0.0f;
    }
  }
  __device__ __forceinline__ void put(float* tile, int pitch, bool transposed) const {
#pragma unroll
    for (int i = 0; i < kEach; ++i) {
      const int e = threadIdx.x + i * THREADS, r = e / kHead, d = e % kHead;
      tile[transposed ? d * pitch + r : r * pitch + d] = values[i];
    }
  }
};

template <int BM, int RPT>
__device__ void attention_block(const AttentionArgs& a) {
  constexpr int kThreads = BM / RPT * 8;
  __shared__ __align__(16) float qt[kHead][BM + 4];   // the query tile, transposed
  __shared__ __align__(16) float kt[kHead][kBN + 4];  // the key tile, transposed
  __shared__ __align__(16) float vs[kBN][kHead];      // the value tile
  __shared__ __align__(16) float pt[kBN][BM + 4];     // the tile's probabilities, transposed
  const int tid = threadIdx.x, ty = tid / 8, tx = tid % 8;
  int64_t problem = blockIdx.y, q_off = 0, k_off = 0, v_off = 0;
#pragma unroll
  for (int i = 0; i < kAttentionMaxBatchDims; ++i) {
    if (i >= a.batch_dims) break;
    const int64_t index = problem % a.batch_sizes[i];
    problem /= a.batch_sizes[i];
    q_off += index * a.q_batch_strides[i];
    k_off += index * a.k_batch_strides[i];
    v_off += index * a.v_batch_strides[i];
  }
  const int m0 = blockIdx.x * BM;
  {
    TileShare<BM, kThreads> q;
    q.fetch(a.q, q_off, a.q_row_stride, m0, a.t, a.d, a.dtype);
    q.put(&qt[0][0], BM + 4, true);
  }
  // The next tile's keys and values are fetched while the current one is worked on.
  TileShare<kBN, kThreads> keys, values;
  keys.fetch(a.k, k_off, a.k_row_stride, 0, a.s, a.d, a.dtype);
  values.fetch(a.v, v_off, a.v_row_stride, 0, a.s, a.dv, a.dtype);
  float o[RPT][8], row_max[RPT], row_sum[RPT];
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    row_max[i] = -INFINITY;
    row_sum[i] = 0.0f;
#pragma unroll
    for (int j = 0; j < 8; ++j) o[i][j] = 0.0f;
  }
  for (int n0 = 0; n0 < a.s; n0 += kBN) {
    __syncthreads();  // the last tile's keys, values and probabilities are used up
    keys.put(&kt[0][0], kBN + 4, true);
    values.put(&vs[0][0], kHead, false);
    __syncthreads();
    if (n0 + kBN < a.s) {
      keys.fetch(a.k, k_off, a.k_row_stride, n0 + kBN, a.s, a.d, a.dtype);
      values.fetch(a.v, v_off, a.v_row_stride, n0 + kBN, a.s, a.dv, a.dtype);
    }
    float s[RPT][4] = {};
#pragma unroll 8
    for (int d = 0; d < kHead; ++d) {  // the tiles are zero past the head dim
      float qv[RPT];
#pragma unroll
      for (int i = 0; i < RPT; ++i) qv[i] = qt[d][ty * RPT + i];
      const float4 k4 = *reinterpret_cast<const float4*>(&kt[d][tx * 4]);
      const float kv[4] = {k4.x, k4.y, k4.z, k4.w};
#pragma unroll
      for (int i = 0; i < RPT; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) s[i][j] = fmaf(qv[i], kv[j], s[i][j]);
    }
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s[i][j] = n0 + tx * 4 + j < a.s ? (a.divide ? s[i][j] / a.scale : s[i][j] * a.scale) : -INFINITY;
        tile_max = fmaxf(tile_max, s[i][j]);
      }
      // Every tile holds a key, so the new max is finite unless the scores are infinite.
      const float new_max = fmaxf(row_max[i], group_max(tile_max));
      const float rescale = row_max[i] == new_max ? 1.0f : expf(row_max[i] - new_max);
      float tile_sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float p = s[i][j] == -INFINITY ? 0.0f : expf(s[i][j] - new_max);
        pt[tx * 4 + j][ty * RPT + i] = p;
        tile_sum += p;
      }
      row_sum[i] = row_sum[i] * rescale + group_sum(tile_sum);
      row_max[i] = new_max;
#pragma unroll
      for (int j = 0; j < 8; ++j) o[i][j] *= rescale;
    }
    __syncthreads();
#pragma unroll 4
    for (int c = 0; c < kBN; ++c) {
      float pv[RPT];
#pragma unroll
      for (int i = 0; i < RPT; ++i) pv[i] = pt[c][ty * RPT + i];
      const float4 v0 = *reinterpret_cast<const float4*>(&vs[c][tx * 8]);
      const float4 v1 = *reinterpret_cast<const float4*>(&vs[c][tx * 8 + 4]);
      const float vv[8] = {v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w};
#pragma unroll
      for (int i = 0; i < RPT; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) o[i][j] = fmaf(pv[i], vv[j], o[i][j]);
    }
  }
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int row = m0 + ty * RPT + i;
    if (row >= a.t) continue;
    const float inverse = 1.0f / row_sum[i];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int d = tx * 8 + j;
      if (d < a.dv) store_float(a.out, (int64_t(blockIdx.y) * a.t + row) * a.dv + d, a.dtype, o[i][j] * inverse);
    }
  }
}

}  // namespace kiln_attention

// Grid: (ceil(T / BM), batch); block: BM / RPT * 8 threads. Two rows a thread: four held
// too few warps a multiprocessor to hide shared-memory latency (transformer heads, H100).
extern "C" __global__ void __launch_bounds__(256, 2) kiln_eager_attention64(const AttentionArgs a) {
  kiln_attention::attention_block<64, 2>(a);
}
extern "C" __global__ void __launch_bounds__(128, 2) kiln_eager_attention32(const AttentionArgs a) {
  kiln_attention::attention_block<32, 2>(a);
}
