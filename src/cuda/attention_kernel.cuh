// Fused attention for kiln's eager CUDA kernels (included by eager_kernels.cu, which builds
// them all as one nvcc translation unit). One block computes 16 * ROW_WARPS query rows of
// one problem, streaming the keys and values through shared memory SPLITS * kAttentionKeys
// rows at a time; each of the SPLITS warps that share 16 rows takes its part of every key
// tile with an online softmax of its own (running row max and sum, earlier partial results
// rescaled), and the parts are merged at the end, so the T x S score matrix never reaches
// memory.
//
// Both products run on tensor cores as m16n8k8 TF32 mma in three parts each (3xTF32:
// a*b ~ big(a)*big(b) + big(a)*small(b) + small(a)*big(b), small = a - big(a)), which keeps
// f32's accuracy to within a few ulps, the scheme PyTorch's own f32 attention uses. (f16 and
// bf16 run on their own tensor-core products: attention_mma16.cuh.) Operands are split once, as
// they are put into shared memory. The scores' accumulator fragments are the probabilities' operand
// fragments as they stand: the value product sums over keys in the order the fragment holds them
// (slot t = key 2t, slot t + 4 = key 2t + 1), and the value fragments are read in that order.
#pragma once

namespace kiln_attention {

constexpr int kBN = kAttentionKeys;       // keys a tile
constexpr int kHead = kAttentionMaxHead;  // head dims, zero-padded
constexpr int kSteps = kHead / 8;         // mma k-steps (query product) and n-tiles (value product)

__device__ __forceinline__ float load_float(const char* base, int64_t element, int dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::f16:
      return __half2float(reinterpret_cast<const __half*>(base)[element]);
    case DType::bf16:
      return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(base)[element]);
    default:
      return reinterpret_cast<const float*>(base)[element];
  }
}

__device__ __forceinline__ void store_float(char* base, int64_t element, int dtype, float v) {
  switch (static_cast<DType>(dtype)) {
    case DType::f16:
      reinterpret_cast<__half*>(base)[element] = __float2half_rn(v);
      break;
    case DType::bf16:
      reinterpret_cast<__nv_bfloat16*>(base)[element] = __float2bfloat16_rn(v);
      break;
    default:
      reinterpret_cast<float*>(base)[element] = v;
      break;
  }
}

// x as (big, small): big is x rounded to TF32; small, exact in f32, is what big misses (the
// mma reads TF32's share of its bits).
__device__ __forceinline__ float2 split(float x) {
  uint32_t big;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(big) : "f"(x));
  return {__uint_as_float(big), x - __uint_as_float(big)};
}

// c += a * b, one m16n8k8 TF32 tensor-core product (row-major A, column-major B).
__device__ __forceinline__ void mma(float (&c)[4], float a0, float a1, float a2, float a3, float b0,
                                    float b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(__float_as_uint(a0)), "r"(__float_as_uint(a1)), "r"(__float_as_uint(a2)),
        "r"(__float_as_uint(a3)), "r"(__float_as_uint(b0)), "r"(__float_as_uint(b1)));
}

// c += a * b in 3xTF32 from split operands, the small terms first.
__device__ __forceinline__ void mma3(float (&c)[4], const float2 (&a)[4], float2 b0, float2 b1) {
  mma(c, a[0].y, a[1].y, a[2].y, a[3].y, b0.x, b1.x);
  mma(c, a[0].x, a[1].x, a[2].x, a[3].x, b0.y, b1.y);
  mma(c, a[0].x, a[1].x, a[2].x, a[3].x, b0.x, b1.x);
}

// Max and sum over the 4 threads that share a fragment row (consecutive lanes).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// A thread's share of rows first..first+ROWS (of `rows`) x dims 0..kHead (of `dims`) of an
// operand, zero outside it, in runs of 4 dims: fetched into registers, all loads in flight
// at once (they stay in flight until the values are put), as 16-byte loads where the
// operand is f32 with 16-byte aligned runs; then split and put into shared memory as
// [row][dim] with row pitch `pitch`.
template <int ROWS, int THREADS>
struct TileShare {
  static constexpr int kRuns = ROWS * kHead / 4 / THREADS;
  float4 values[kRuns];

  __device__ __forceinline__ void fetch(const char* base, int64_t offset, int64_t row_stride,
                                        int first, int rows, int dims, int dtype, bool vector) {
#pragma unroll
    for (int i = 0; i < kRuns; ++i) {
      const int e = threadIdx.x + i * THREADS, r = e / (kHead / 4), d = e % (kHead / 4) * 4;
      const bool row_in = first + r < rows;
      const int64_t at = offset + (first + r) * row_stride + d;
      if (vector) {
        values[i] = row_in && d < dims ? *reinterpret_cast<const float4*>(base + at * 4)
                                       : make_float4(0, 0, 0, 0);
      } else {
        float x[4];
#pragma unroll
        for (int j = 0; j < 4; ++j)
          x[j] = row_in && d + j < dims ? load_float(base, at + j, dtype) : 0.0f;
        values[i] = make_float4(x[0], x[1], x[2], x[3]);
      }
    }
  }
  __device__ __forceinline__ void put(float2* tile, int pitch) const {
#pragma unroll
    for (int i = 0; i < kRuns; ++i) {
      const int e = threadIdx.x + i * THREADS, r = e / (kHead / 4), d = e % (kHead / 4) * 4;
      const float2 x0 = split(values[i].x), x1 = split(values[i].y), x2 = split(values[i].z),
                   x3 = split(values[i].w);
      float4* to = reinterpret_cast<float4*>(tile + r * pitch + d);
      to[0] = make_float4(x0.x, x0.y, x1.x, x1.y);
      to[1] = make_float4(x2.x, x2.y, x3.x, x3.y);
    }
  }
};

// Whether an operand's runs of 4 dims can be read as aligned float4s in every row.
__device__ __forceinline__ bool float4_runs(const char* base, int64_t offset, int64_t row_stride,
                                            int dims, int dtype) {
  return static_cast<DType>(dtype) == DType::f32 &&
         (reinterpret_cast<uintptr_t>(base) + offset * 4) % 16 == 0 && row_stride % 4 == 0 &&
         dims % 4 == 0;
}

// Where problem `problem` (a block row of the grid) starts in q, k and v, in elements.
__device__ __forceinline__ void problem_offsets(const AttentionArgs& a, int64_t problem,
                                                int64_t& q_off, int64_t& k_off, int64_t& v_off) {
#pragma unroll
  for (int i = 0; i < kAttentionMaxBatchDims; ++i) {
    if (i >= a.batch_dims) break;
    const int64_t index = problem % a.batch_sizes[i];
    problem /= a.batch_sizes[i];
    q_off += index * a.q_batch_strides[i];
    k_off += index * a.k_batch_strides[i];
    v_off += index * a.v_batch_strides[i];
  }
}

// Fragment coordinates (PTX ISA, mma.m16n8k8 .tf32): lane = 4g + t; A holds (g, t),
// (g + 8, t), (g, t + 4), (g + 8, t + 4); B holds (k t, n g), (k t + 4, n g); C holds
// (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1).
//
// A block has ROW_WARPS x SPLITS warps: warp w computes query rows 16 (w % ROW_WARPS)..+16
// against part w / ROW_WARPS of each loaded tile of SPLITS x kBN keys, with a softmax
// state of its own; at the end the parts' states are merged through shared memory. More
// warps for the same rows hide more of the products' latency (on the H100, transformer
// heads: 54 us with one part, 46 with two).
template <int ROW_WARPS, int SPLITS>
__device__ void attention_block(const AttentionArgs& a) {
  constexpr int kRows = 16 * ROW_WARPS, kThreads = 32 * ROW_WARPS * SPLITS, kKeyTiles = kBN / 8;
  constexpr int kTileKeys = kBN * SPLITS;
  constexpr int kQP = kAttentionQueryPitch, kKP = kAttentionKeyPitch, kVP = kAttentionValuePitch;
  extern __shared__ float2 tiles[];  // attention_shared_bytes(kRows, SPLITS)
  float2* const q_tile = tiles;
  float2* const k_tile = q_tile + kRows * kQP;
  float2* const v_tile = k_tile + kTileKeys * kKP;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  const int row_warp = warp % ROW_WARPS, part = warp / ROW_WARPS;
  int64_t q_off = 0, k_off = 0, v_off = 0;
  problem_offsets(a, blockIdx.y, q_off, k_off, v_off);
  const int m0 = blockIdx.x * kRows;
  {
    TileShare<kRows, kThreads> q;
    q.fetch(a.q, q_off, a.q_row_stride, m0, a.t, a.d, a.dtype,
            float4_runs(a.q, q_off, a.q_row_stride, a.d, a.dtype));
    q.put(q_tile, kQP);
  }
  // The next tile's keys and values are fetched while the current one is worked on.
  const bool k_vector = float4_runs(a.k, k_off, a.k_row_stride, a.d, a.dtype);
  const bool v_vector = float4_runs(a.v, v_off, a.v_row_stride, a.dv, a.dtype);
  TileShare<kTileKeys, kThreads> keys, values;
  keys.fetch(a.k, k_off, a.k_row_stride, 0, a.s, a.d, a.dtype, k_vector);
  values.fetch(a.v, v_off, a.v_row_stride, 0, a.s, a.dv, a.dtype, v_vector);
  __syncthreads();
  const float2* const q_rows = q_tile + (row_warp * 16 + g) * kQP + t;  // this thread's (g, t)
  // Output rows g and g + 8 x dims 8n + 2t, +1; each row's max, and this thread's share of
  // its sum (the quad's shares are added at the end).
  float o[kSteps][4] = {};
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.0f, 0.0f};
  const float2* const part_keys = k_tile + part * kBN * kKP;
  const float2* const part_values = v_tile + part * kBN * kVP;
  for (int n0 = 0; n0 < a.s; n0 += kTileKeys) {
    __syncthreads();  // the last tile's keys and values are used up
    keys.put(k_tile, kKP);
    values.put(v_tile, kVP);
    __syncthreads();
    if (n0 + kTileKeys < a.s) {
      keys.fetch(a.k, k_off, a.k_row_stride, n0 + kTileKeys, a.s, a.d, a.dtype, k_vector);
      values.fetch(a.v, v_off, a.v_row_stride, n0 + kTileKeys, a.s, a.dv, a.dtype, v_vector);
    }
    const int first_key = n0 + part * kBN;
    if (first_key >= a.s) continue;  // this part of the last tile holds no key
    float s[kKeyTiles][4] = {};
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) {
      if (kk * 8 >= a.d) break;  // the tiles are zero past the head dim
      const float2 q[4] = {q_rows[kk * 8], q_rows[8 * kQP + kk * 8], q_rows[kk * 8 + 4],
                           q_rows[8 * kQP + kk * 8 + 4]};
#pragma unroll
      for (int n = 0; n < kKeyTiles; ++n) {
        const float2* key = part_keys + (n * 8 + g) * kKP + kk * 8 + t;
        mma3(s[n], q, key[0], key[4]);
      }
    }
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const bool key_in = first_key + n * 8 + 2 * t + (j & 1) < a.s;
        s[n][j] = key_in ? (a.divide ? s[n][j] / a.scale : s[n][j] * a.scale) : -INFINITY;
        tile_max[j / 2] = fmaxf(tile_max[j / 2], s[n][j]);
      }
    float rescale[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // The part holds a key, so the new max is finite unless the scores are infinite.
      const float new_max = fmaxf(row_max[r], quad_max(tile_max[r]));
      rescale[r] = row_max[r] == new_max ? 1.0f : expf(row_max[r] - new_max);
      row_max[r] = new_max;
      row_sum[r] *= rescale[r];
    }
#pragma unroll
    for (int n = 0; n < kSteps; ++n)
#pragma unroll
      for (int j = 0; j < 4; ++j) o[n][j] *= rescale[j / 2];
    // Probabilities as A fragments: C's (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1)
    // are A's slots 0, 2, 1, 3.
    float2 p[kKeyTiles][4];
#pragma unroll
    for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float x = s[n][j] == -INFINITY ? 0.0f : expf(s[n][j] - row_max[j / 2]);
        row_sum[j / 2] += x;
        p[n][(j & 1) * 2 + j / 2] = split(x);
      }
#pragma unroll
    for (int dn = 0; dn < kSteps; ++dn) {
      if (dn * 8 >= a.dv) break;
#pragma unroll
      for (int n = 0; n < kKeyTiles; ++n) {
        const float2* value = part_values + (n * 8 + 2 * t) * kVP + dn * 8 + g;
        mma3(o[dn], p[n], value[0], value[kVP]);
      }
    }
  }
  if constexpr (SPLITS > 1) {
    // Parts 1.. hand their state to part 0's thread of the same rows and columns (the key
    // tiles are done with, so their memory holds it): max, sum and output of each row.
    constexpr int kState = 4 + 4 * kSteps;
    static_assert(
        (SPLITS - 1) * ROW_WARPS * 32 * kState * sizeof(float) <= kTileKeys * kKP * sizeof(float2),
        "the parts' states fit in the key tile");
    float* const state = reinterpret_cast<float*>(k_tile);
    __syncthreads();
    if (part > 0) {
      float* mine = state + ((part - 1) * ROW_WARPS * 32 + row_warp * 32 + lane) * kState;
      mine[0] = row_max[0];
      mine[1] = row_max[1];
      mine[2] = row_sum[0];
      mine[3] = row_sum[1];
#pragma unroll
      for (int dn = 0; dn < kSteps; ++dn)
#pragma unroll
        for (int j = 0; j < 4; ++j) mine[4 + dn * 4 + j] = o[dn][j];
    }
    __syncthreads();
    if (part > 0) return;
#pragma unroll
    for (int other = 1; other < SPLITS; ++other) {
      const float* theirs = state + ((other - 1) * ROW_WARPS * 32 + row_warp * 32 + lane) * kState;
      float mine_scale[2], their_scale[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        // A part that saw no key has max -inf and sum 0: it weighs nothing.
        const float merged = fmaxf(row_max[r], theirs[r]);
        mine_scale[r] = row_max[r] == merged ? 1.0f : expf(row_max[r] - merged);
        their_scale[r] = theirs[r] == merged ? 1.0f : expf(theirs[r] - merged);
        row_sum[r] = row_sum[r] * mine_scale[r] + theirs[2 + r] * their_scale[r];
        row_max[r] = merged;
      }
#pragma unroll
      for (int dn = 0; dn < kSteps; ++dn)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          o[dn][j] = o[dn][j] * mine_scale[j / 2] + theirs[4 + dn * 4 + j] * their_scale[j / 2];
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int out_row = m0 + row_warp * 16 + g + 8 * r;
    const float inverse = 1.0f / quad_sum(row_sum[r]);
    if (out_row >= a.t) continue;
#pragma unroll
    for (int dn = 0; dn < kSteps; ++dn)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int d = dn * 8 + 2 * t + j;
        if (d < a.dv)
          store_float(a.out, (int64_t(blockIdx.y) * a.t + out_row) * a.dv + d, a.dtype,
                      o[dn][2 * r + j] * inverse);
      }
  }
}

}  // namespace kiln_attention

// Grid: (ceil(T / rows), batch); block: 2 x rows x SPLITS threads (a warp per 16 rows and
// key part); dynamic shared memory attention_shared_bytes(rows, SPLITS).
extern "C" __global__ void __launch_bounds__(64 * kAttentionKeySplits, 2)
    kiln_eager_attention32(const AttentionArgs a) {
  kiln_attention::attention_block<2, kAttentionKeySplits>(a);
}
// Held to 128 registers (two blocks a multiprocessor): the query fragments are read from
// shared memory at each use rather than held.
extern "C" __global__ void __launch_bounds__(128 * kAttentionKeySplits, 2)
    kiln_eager_attention64(const AttentionArgs a) {
  kiln_attention::attention_block<4, kAttentionKeySplits>(a);
}
