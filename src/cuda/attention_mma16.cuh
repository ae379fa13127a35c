// Fused attention in f16 and bf16 on the tensor cores' half-precision products (included by
// eager_kernels.cu after attention_kernel.cuh, whose AttentionArgs layout and batch offsets
// it shares), in the FlashAttention-2 manner: a block of kWarps warps owns 16 M query rows
// each (M = 1 in every instantiation: 2 measured slower, eager_abi.h), all of them against
// every tile of kKeys keys; the scores stay in registers, an
// online softmax (running max and sum per row, the output rescaled when the max grows)
// turns them into probabilities, and those registers are the value product's A operand as
// they stand. Products are m16n8k16 mma with f32 accumulation; operands reach their
// fragments from shared memory through ldmatrix (the values' transposed). The next tile's
// keys and values are copied in (cp.async, 16 bytes at a time) while the current one is
// worked on.
//
// Head dims up to HEAD (64 or 128) are zero-padded in shared memory: padded query and key
// dims add nothing to a score, padded value dims are not stored. Probabilities are rounded
// to the operand type for the value product (as FlashAttention does); the row sums are
// taken before rounding, in f32.
#pragma once

namespace kiln_attention16 {

constexpr int kWarps = kAttention16Warps;
constexpr int kKeys = kAttention16Keys;
constexpr int kThreads = 32 * kWarps;

template <bool BF16>
struct Half;
template <>
struct Half<true> {
  using T = __nv_bfloat16;
  __device__ static T from_float(float x) { return __float2bfloat16_rn(x); }
  __device__ static uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  // c += a * b, m16n8k16, row-major A, column-major B.
  __device__ static void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};
template <>
struct Half<false> {
  using T = __half;
  __device__ static T from_float(float x) { return __float2half_rn(x); }
  __device__ static uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  __device__ static void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Four 8x8 matrices of 16-bit elements; lane 8i + r gives the address of row r of matrix i.
// Without .trans a lane receives (row lane / 4, columns 2 (lane % 4), +1) of each; with it,
// (rows 2 (lane % 4), +1, column lane / 4).
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}

// 16 bytes from global to shared memory without passing through registers; `bytes` 0 fills
// them with zeros (the source is then not read).
__device__ __forceinline__ void copy16_async(void* to, const void* from, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(shared_address(to)), "l"(from),
               "r"(bytes));
}
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;"); }
template <int PENDING>
__device__ __forceinline__ void wait_copies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(PENDING));
}

// 2^x on the special function unit (ex2.approx: 2 ulp, subnormal results flushed to zero,
// 2^-inf = 0), where exp2f adds a slow path for subnormals.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

using kiln_attention::quad_max;  // max and sum over the 4 lanes of a fragment row
using kiln_attention::quad_sum;

// Rows first..first+ROWS (of `rows`) x dims 0..HEAD (of `dims`) of an operand into shared
// memory as [row][dim] with pitch HEAD + 8, zero outside it. `vector`: every row's dims are
// 16-byte runs at 16-byte alignment, copied asynchronously (the caller commits and waits);
// otherwise element by element, at once.
template <class T, int ROWS, int HEAD>
__device__ __forceinline__ void load_tile(T* tile, const T* base, int64_t offset,
                                          int64_t row_stride, int first, int rows, int dims,
                                          bool vector) {
  constexpr int kPitch = HEAD + 8, kRuns = HEAD / 8;
  if (vector) {
#pragma unroll
    for (int i = 0; i < ROWS * kRuns / kThreads; ++i) {
      const int e = threadIdx.x + i * kThreads, r = e / kRuns, d = e % kRuns * 8;
      const bool in = first + r < rows && d < dims;
      const T* from = in ? base + offset + int64_t(first + r) * row_stride + d : base;
      copy16_async(tile + r * kPitch + d, from, in ? 16 : 0);
    }
    return;
  }
  for (int e = threadIdx.x; e < ROWS * HEAD; e += kThreads) {
    const int r = e / HEAD, d = e % HEAD;
    const bool in = first + r < rows && d < dims;
    tile[r * kPitch + d] = in ? base[offset + int64_t(first + r) * row_stride + d] : T(0.0f);
  }
}

template <class T>
__device__ __forceinline__ bool runs_of_16_bytes(const T* base, int64_t offset, int64_t row_stride,
                                                 int dims) {
  return reinterpret_cast<uintptr_t>(base + offset) % 16 == 0 && row_stride % 8 == 0 &&
         dims % 8 == 0;
}

// Fragment coordinates (PTX ISA, mma.m16n8k16 with 16-bit operands): lane = 4g + t; A's four
// registers hold (g, 2t..2t+1), (g + 8, 2t..), (g, 2t + 8..), (g + 8, 2t + 8..); B's two
// hold (k 2t..2t+1, n g) and (k 2t + 8.., n g); C holds (g, 2t), (g, 2t + 1), (g + 8, 2t),
// (g + 8, 2t + 1).
//
// Warp w owns query rows 16 M w .. 16 M (w + 1) of the block's, as M tiles of 16: each key
// and value fragment read from shared memory feeds M products.
template <bool BF16, int HEAD, int M>
__device__ void attention_block(const AttentionArgs& a) {
  using H = Half<BF16>;
  using T = typename H::T;
  constexpr int kPitch = HEAD + 8;  // ldmatrix's eight rows fall in distinct banks
  constexpr int kRows = 16 * M * kWarps;
  constexpr int kKSteps = HEAD / 16, kKeyTiles = kKeys / 8, kDimTiles = HEAD / 8;
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(16) unsigned char shared_bytes[];  // attention16_shared_bytes
  T* const q_tile = reinterpret_cast<T*>(shared_bytes);
  T* const k_tiles = q_tile + kRows * kPitch;       // two stages
  T* const v_tiles = k_tiles + 2 * kKeys * kPitch;  // two stages
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  int64_t q_off = 0, k_off = 0, v_off = 0;
  kiln_attention::problem_offsets(a, blockIdx.y, q_off, k_off, v_off);
  const T* const q = reinterpret_cast<const T*>(a.q);
  const T* const k = reinterpret_cast<const T*>(a.k);
  const T* const v = reinterpret_cast<const T*>(a.v);
  const bool q_vector = runs_of_16_bytes(q, q_off, a.q_row_stride, a.d);
  const bool k_vector = runs_of_16_bytes(k, k_off, a.k_row_stride, a.d);
  const bool v_vector = runs_of_16_bytes(v, v_off, a.v_row_stride, a.dv);
  const int m0 = blockIdx.x * kRows;
  auto load_keys = [&](int tile, int stage) {
    load_tile<T, kKeys, HEAD>(k_tiles + stage * kKeys * kPitch, k, k_off, a.k_row_stride,
                              tile * kKeys, a.s, a.d, k_vector);
    load_tile<T, kKeys, HEAD>(v_tiles + stage * kKeys * kPitch, v, v_off, a.v_row_stride,
                              tile * kKeys, a.s, a.dv, v_vector);
  };
  load_tile<T, kRows, HEAD>(q_tile, q, q_off, a.q_row_stride, m0, a.t, a.d, q_vector);
  load_keys(0, 0);
  commit_copies();
  const int tiles = (a.s + kKeys - 1) / kKeys;
  const int k_steps = min(kKSteps, (a.d + 15) / 16);
  const int dim_pairs = min(kDimTiles / 2, (a.dv + 15) / 16);
  // The query's A fragments, held for the whole key loop (loaded once the first copy lands).
  uint32_t qa[M][kKSteps][4];
  float o[M][kDimTiles][4] = {};
  // Rows g and g + 8 of each m tile: running max (log2 units) and this thread's share of
  // the sum (the quad's shares are added at the end).
  float row_max[M][2], row_sum[M][2] = {};
#pragma unroll
  for (int m = 0; m < M; ++m) row_max[m][0] = row_max[m][1] = -INFINITY;
  const float score_scale = (a.divide ? 1.0f / a.scale : a.scale) * kLog2e;
  for (int tile = 0; tile < tiles; ++tile) {
    const int stage = tile & 1;
    if (tile + 1 < tiles) {
      load_keys(tile + 1, stage ^ 1);  // its stage was freed by the last iteration's barrier
      commit_copies();
      wait_copies<1>();
    } else {
      wait_copies<0>();
    }
    __syncthreads();
    if (tile == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m)
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) {
          const int r = (warp * M + m) * 16 + lane % 8 + 8 * ((lane / 8) & 1);
          ldmatrix_x4(qa[m][kk], q_tile + r * kPitch + kk * 16 + 8 * (lane / 16));
        }
    }
    const T* const keys = k_tiles + stage * kKeys * kPitch;
    const T* const values = v_tiles + stage * kKeys * kPitch;
    float s[M][kKeyTiles][4] = {};
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      if (kk >= k_steps) break;
#pragma unroll
      for (int np = 0; np < kKeyTiles / 2; ++np) {
        uint32_t b[4];
        const int r = np * 16 + lane % 8 + 8 * (lane / 16), c = kk * 16 + 8 * ((lane / 8) & 1);
        ldmatrix_x4(b, keys + r * kPitch + c);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          H::mma(s[m][2 * np], qa[m][kk], b[0], b[1]);
          H::mma(s[m][2 * np + 1], qa[m][kk], b[2], b[3]);
        }
      }
    }
    // Scores in log2 units; keys past the end weigh nothing (only the last tile has them: a
    // uniform branch).
    const int first_key = tile * kKeys;
    const bool last = first_key + kKeys > a.s;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          s[m][n][j] *= score_scale;
          if (last && first_key + n * 8 + 2 * t + (j & 1) >= a.s) s[m][n][j] = -INFINITY;
          tile_max[j / 2] = fmaxf(tile_max[j / 2], s[m][n][j]);
        }
      float rescale[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        // A tile holds at least one key, so the new max is finite unless a score is infinite.
        const float new_max = fmaxf(row_max[m][r], quad_max(tile_max[r]));
        rescale[r] = exp2_approx(row_max[m][r] - new_max);  // ex2(-inf) = 0 at the first tile
        row_max[m][r] = new_max;
        row_sum[m][r] *= rescale[r];
      }
#pragma unroll
      for (int n = 0; n < kDimTiles; ++n)
#pragma unroll
        for (int j = 0; j < 4; ++j) o[m][n][j] *= rescale[j / 2];
#pragma unroll
      for (int n = 0; n < kKeyTiles; ++n)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          s[m][n][j] = exp2_approx(s[m][n][j] - row_max[m][j / 2]);
          row_sum[m][j / 2] += s[m][n][j];
        }
    }
    // The probabilities of keys 16 kp.. as A fragments: score tiles 2 kp and 2 kp + 1.
#pragma unroll
    for (int kp = 0; kp < kKeyTiles / 2; ++kp) {
      if (first_key + kp * 16 >= a.s) break;
      uint32_t p[M][4];
#pragma unroll
      for (int m = 0; m < M; ++m) {
        p[m][0] = H::pack(s[m][2 * kp][0], s[m][2 * kp][1]);
        p[m][1] = H::pack(s[m][2 * kp][2], s[m][2 * kp][3]);
        p[m][2] = H::pack(s[m][2 * kp + 1][0], s[m][2 * kp + 1][1]);
        p[m][3] = H::pack(s[m][2 * kp + 1][2], s[m][2 * kp + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kDimTiles / 2; ++dp) {
        if (dp >= dim_pairs) break;
        uint32_t b[4];
        const int r = kp * 16 + lane % 8 + 8 * ((lane / 8) & 1), c = dp * 16 + 8 * (lane / 16);
        ldmatrix_x4_trans(b, values + r * kPitch + c);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          H::mma(o[m][2 * dp], p[m], b[0], b[1]);
          H::mma(o[m][2 * dp + 1], p[m], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // this stage's keys and values are used up
  }
  T* const out = reinterpret_cast<T*>(a.out);
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int out_row = m0 + (warp * M + m) * 16 + g + 8 * r;
      const float inverse = 1.0f / quad_sum(row_sum[m][r]);
      if (out_row >= a.t) continue;
      T* const row = out + (int64_t(blockIdx.y) * a.t + out_row) * a.dv;
#pragma unroll
      for (int n = 0; n < kDimTiles; ++n)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int d = n * 8 + 2 * t + j;
          if (d < a.dv) row[d] = H::from_float(o[m][n][2 * r + j] * inverse);
        }
    }
}

}  // namespace kiln_attention16

// Grid: (ceil(T / kAttention16Rows), batch); block: 32 kAttention16Warps threads;
// dynamic shared memory attention16_shared_bytes(HEAD).
// M: kAttention16Rows / 16 / kAttention16Warps (eager_abi.h).
#define KILN_ATTENTION16(name, bf16, head, m)                             \
  extern "C" __global__ void __launch_bounds__(32 * kAttention16Warps, 2) \
      name(const AttentionArgs a) {                                       \
    kiln_attention16::attention_block<bf16, head, m>(a);                  \
  }
KILN_ATTENTION16(kiln_eager_attention16_bf16_64, true, 64, 1)
KILN_ATTENTION16(kiln_eager_attention16_bf16_128, true, 128, 1)
KILN_ATTENTION16(kiln_eager_attention16_f16_64, false, 64, 1)
KILN_ATTENTION16(kiln_eager_attention16_f16_128, false, 128, 1)
#undef KILN_ATTENTION16
