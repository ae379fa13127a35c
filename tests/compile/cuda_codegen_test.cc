// The CUDA dialect without a GPU: CUDA source for a few graphs (golden snippets: names,
// the argument block, grid-stride loops), NVRTC compiling it to a cubin for sm_90 in a
// compile worker, and a bad kernel failing with NVRTC's diagnostics. The tests that run
// kernels on a GPU carry the label cuda.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "codegen/c_emitter.h"
#include "compile/nvrtc.h"
#include "driver/pipeline.h"
#include "driver/plan_builder.h"
#include "kiln/kiln.h"
#include "lower/lower.h"
#include "lower/schedule.h"
#include "trace/tracer.h"
#include "worker/jobs.h"
#include "worker/pool.h"

namespace kiln::testing {
namespace {

std::string cuda_source(const std::string& name, const std::vector<Tensor>& examples,
                        const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn) {
  Tracer tracer(name, /*freeze_captured=*/false);
  std::vector<Tensor> in = tracer.add_inputs(examples);
  std::vector<Tensor> out;
  {
    RecorderScope scope(&tracer);
    out = fn(in);
  }
  Graph g = optimize_graph(tracer.finish(out).graph, Device::cuda);
  Program program = lower_graph(g);
  schedule_program(program, Device::cuda);
  std::vector<KernelSource> kernels;
  for (const LoopKernel& k : program.kernels)
    kernels.push_back({dialect_kernel_name(k.name, cuda_dialect()),
                       emit_kernel(k, g.num_symbols, cuda_dialect()),
                       {}});
  return emit_translation_unit(kernels, cuda_dialect());
}

// Compiles `source` with NVRTC in a compile worker; returns the cubin's size.
size_t compile_in_worker(const std::string& name, const std::string& source) {
  ToolchainSpec nvrtc;
  nvrtc.device = Device::cuda;
  nvrtc.arch = "sm_90";
  Fields reply = compile_pool(WorkerStart::Subprocess, 1)
                     .submit(encode(CompileUnitJob{name, source, nvrtc, ""}))
                     .get();
  return decode_unit_reply(reply).object.size();
}

const std::string kSinCos = cuda_source(
    "sincos", {randn({64, 64}), randn({64, 64})},
    [](const std::vector<Tensor>& in) { return std::vector<Tensor>{cos(sin(in[0] + in[1]))}; });

TEST(CudaCodegen, PointwiseKernelsAreGridStrideLoopsOverTheArgumentBlock) {
  // The argument block the backend fills (codegen/kernel_abi.h), declared by the same text.
  EXPECT_NE(kSinCos.find("struct KilnArgs { int64_t sizes[32]; char* buffers[64]; };"),
            std::string::npos)
      << kSinCos;
  EXPECT_EQ(std::string(kKilnArgsSource),
            "struct KilnArgs { int64_t sizes[32]; char* buffers[64]; };");
  EXPECT_NE(kSinCos.find(
                "extern \"C\" __global__ void cuda_poi_fused_add_cos_sin_0(const KilnArgs args)"),
            std::string::npos)
      << kSinCos;
  // Aligned buffers: four consecutive elements per thread, loaded and stored as one 16-byte
  // vector per buffer; the rest, and unaligned buffers, in the plain grid-stride loop.
  EXPECT_NE(
      kSinCos.find("const kiln_vec<float, 4> kiln_l1 = *(const kiln_vec<float, 4>*)(p1 + kiln_v);"),
      std::string::npos)
      << kSinCos;
  EXPECT_NE(kSinCos.find("*(kiln_vec<float, 4>*)(p0 + kiln_v) = kiln_s0;"), std::string::npos)
      << kSinCos;
  EXPECT_NE(kSinCos.find("kiln_v += kiln_stride * 4"), std::string::npos) << kSinCos;
  // The lanes are one unrolled loop, so the expression is written once, not four times.
  EXPECT_NE(kSinCos.find("for (int kiln_lane = 0; kiln_lane < 4; ++kiln_lane) {"),
            std::string::npos)
      << kSinCos;
  EXPECT_EQ(kSinCos.find("kiln_s0.v[1]"), std::string::npos) << kSinCos;
  EXPECT_NE(
      kSinCos.find("for (int64_t i0 = kiln_vector_end + kiln_tid; i0 < n; i0 += kiln_stride) {"),
      std::string::npos)
      << kSinCos;
  EXPECT_NE(kSinCos.find("const float* __restrict__ p1 = (float*)buffers[1];"), std::string::npos)
      << kSinCos;
  EXPECT_NE(kSinCos.find("sinf("), std::string::npos);
  EXPECT_EQ(kSinCos.find("#pragma omp"), std::string::npos) << "no OpenMP in CUDA source";
  EXPECT_EQ(kSinCos.find("cpp_"), std::string::npos) << "kernel names carry the cuda prefix";
}

// A multi-output kernel (a moment stored with the update that reads it, and a bool mask):
// every output a vector of its own dtype, stored after the lanes.
const std::string kTwoOutputs = cuda_source(
    "two_outputs", {randn({256}), randn({256}), randn({256})}, [](const std::vector<Tensor>& in) {
      Tensor m = in[1] * 0.9f + in[2] * 0.1f;
      Tensor keep = in[2] > 0.0f;
      return std::vector<Tensor>{in[0] - (m * 0.01f).masked_fill(keep, 0.0), m, keep};
    });

TEST(CudaCodegen, MultiOutputKernelsStoreAVectorPerOutput) {
  size_t first = kTwoOutputs.find("__global__ void");
  ASSERT_NE(first, std::string::npos) << kTwoOutputs;
  EXPECT_EQ(kTwoOutputs.find("__global__ void", first + 1), std::string::npos)
      << "one kernel: " << kTwoOutputs;
  for (const char* snippet : {"*(kiln_vec<float, 4>*)(p0 + kiln_v) = kiln_s0;",
                              "*(kiln_vec<float, 4>*)(p1 + kiln_v) = kiln_s1;",
                              "*(kiln_vec<uint8_t, 4>*)(p2 + kiln_v) = kiln_s2;"})
    EXPECT_NE(kTwoOutputs.find(snippet), std::string::npos) << snippet << "\n" << kTwoOutputs;
  // It may run with an output written over an input (PlanExecutable::run_writing_into): no
  // restrict, and the plain loop computes every value before it stores any.
  EXPECT_EQ(kTwoOutputs.find("__restrict__"), std::string::npos) << kTwoOutputs;
  size_t last_value = kTwoOutputs.find("const uint8_t kiln_o2 = ");
  size_t first_store = kTwoOutputs.find("p0[i0] = kiln_o0;");
  ASSERT_NE(last_value, std::string::npos) << kTwoOutputs;
  ASSERT_NE(first_store, std::string::npos) << kTwoOutputs;
  EXPECT_LT(last_value, first_store) << kTwoOutputs;
}

// A foreach launch's parts each grid-stride over the whole grid in turn, so the grid is
// sized for the largest part, not the first (a bias first would leave one block for the
// weights).
TEST(CudaCodegen, ForeachLaunchesAreSizedForTheirLargestPart) {
  Tracer tracer("foreach_grid", /*freeze_captured=*/false);
  std::vector<Tensor> in = tracer.add_inputs({randn({5}), randn({5}), randn({512, 1024}),
                                              randn({512, 1024}), randn({3, 7}), randn({3, 7})});
  std::vector<Tensor> out;
  {
    RecorderScope scope(&tracer);
    for (size_t i = 0; i < in.size(); i += 2) out.push_back(in[i] * 0.5f + in[i + 1]);
  }
  Graph g = optimize_graph(tracer.finish(out).graph, Device::cuda);
  CompiledPlan plan = build_plan(g, cuda_toolchain("sm_90"), Device::cuda);
  ASSERT_EQ(plan.kernels.size(), 1u);
  EXPECT_EQ(plan.kernels[0].kind, "for");
  int64_t work = 1;
  for (const Dim& d : plan.kernels[0].work) work *= d.coeff;
  EXPECT_EQ(work, 512 * 1024);
  // The parts differ only in their counts: one loop body, run once per part over its own
  // buffers, so the source (and NVRTC's time) does not grow with the parts.
  const std::string& source = plan.units.at(0).source;
  EXPECT_NE(source.find("const int64_t kiln_counts[3] = {5, (int64_t)512 * 1024, (int64_t)3 * 7};"),
            std::string::npos)
      << source;
  EXPECT_NE(source.find("char* const* kiln_buffers = buffers + kiln_part * 3;"), std::string::npos)
      << source;
  size_t loops = 0;
  for (size_t at = source.find("kiln_vector_end ="); at != std::string::npos;
       at = source.find("kiln_vector_end =", at + 1))
    ++loops;
  EXPECT_EQ(loops, 1u) << source;
}

TEST(CudaCodegen, BroadcastsFlattenTheirLoops) {
  Tensor x = randn({6, 5});
  mark_dynamic(x, 0);
  std::string src = cuda_source("bcast", {x, randn({5})}, [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{in[0] * in[1] + 1.0f};
  });
  EXPECT_NE(src.find("const int64_t s0 = sizes[0];"), std::string::npos) << src;
  EXPECT_NE(src.find("flat < n;"), std::string::npos) << src;
  EXPECT_NE(src.find("rest % (5)"), std::string::npos) << src;
}

const std::string kRows =
    cuda_source("rows", {randn({16, 300}), randn({300})}, [](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{softmax(in[0], -1), layer_norm(in[0], {300}, in[1]),
                                 in[0].sum({0}), in[0].amax({-1})};
    });

TEST(CudaCodegen, RowReductionsRunARowPerBlockCombinedThroughShuffles) {
  EXPECT_NE(kRows.find("cuda_per_fused_"), std::string::npos) << kRows;
  EXPECT_NE(kRows.find("for (int64_t i0 = blockIdx.x; i0 < rows; i0 += gridDim.x) {"),
            std::string::npos)
      << kRows;
  // A constant row of 300: 128 threads, each holding a run of four consecutive elements in
  // registers, read once as one 16-byte vector (element by element when misaligned); the
  // threads past the row's end hold zeros and skip every loop.
  EXPECT_NE(kRows.find("float r0[4];"), std::string::npos) << kRows;
  EXPECT_NE(kRows.find("const int kiln_o = (c * 128 + (int)threadIdx.x) * 4;"), std::string::npos)
      << kRows;
  EXPECT_NE(kRows.find("const kiln_vec<float, 4> kiln_h0 = kiln_ld<float, 4>(p3 + kiln_row + "
                       "kiln_o, kiln_aligned);"),
            std::string::npos)
      << kRows;
  EXPECT_NE(kRows.find("if (kiln_o < R) {"), std::string::npos) << kRows;
  EXPECT_NE(kRows.find("const bool kiln_aligned = (((unsigned long long)p0 % 16) | "),
            std::string::npos)
      << kRows;
  // The layer_norm weight is read a run at a time too, and each output run stored as one vector.
  EXPECT_NE(kRows.find("kiln_ld<float, 4>(p4 + kiln_o, kiln_aligned);"), std::string::npos)
      << kRows;
  EXPECT_NE(kRows.find("kiln_st<float, 4>(p1 + kiln_row + kiln_o, kiln_s1, kiln_aligned);"),
            std::string::npos)
      << kRows;
  EXPECT_NE(kRows.find("__shared__ float s_a0[4];"), std::string::npos) << kRows;
  EXPECT_NE(kRows.find("__shfl_xor_sync(0xffffffffu, a0, o)"), std::string::npos) << kRows;
  EXPECT_NE(kRows.find("__syncthreads();"), std::string::npos) << kRows;
  // amax of floats propagates a NaN through its compare, across the block too.
  EXPECT_NE(kRows.find("|| (y) != (y)) ? (y) :"), std::string::npos) << kRows;
  EXPECT_NE(kRows.find("if (threadIdx.x == 0) {"), std::string::npos)
      << "row stores by one thread\n"
      << kRows;
}

TEST(CudaCodegen, RowsOfDynamicLengthStrideThroughMemory) {
  Tensor x = randn({4, 9});
  mark_dynamic(x, 1);
  std::string src = cuda_source("dyn_rows", {x}, [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{softmax(in[0], -1)};
  });
  EXPECT_NE(src.find("for (int64_t i1 = threadIdx.x; i1 < R; i1 += blockDim.x) {"),
            std::string::npos)
      << src;
  EXPECT_EQ(src.find("r0["), std::string::npos) << src;
}

const std::string kLong =
    cuda_source("long_rows", {randn({1 << 16})}, [](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{in[0].sum(), in[0].amax()};
    });

TEST(CudaCodegen, LongRowsSplitOverBlocksAndTheLastBlockFolds) {
  // One row of 65536: the launch may give it many blocks; each leaves a partial, and the
  // block that takes the last ticket folds them in order.
  EXPECT_NE(
      kLong.find(
          "const int64_t kiln_split = (int64_t)gridDim.x >= rows ? (int64_t)gridDim.x / rows : 1;"),
      std::string::npos)
      << kLong;
  EXPECT_NE(
      kLong.find("for (int64_t i1 = kiln_lo + threadIdx.x; i1 < kiln_hi; i1 += blockDim.x) {"),
      std::string::npos)
      << kLong;
  EXPECT_NE(
      kLong.find("kiln_last = atomicAdd(&kiln_counters[i0], 1u) == (unsigned)(kiln_split - 1);"),
      std::string::npos)
      << kLong;
  EXPECT_NE(kLong.find("kiln_counters[i0] = 0;"), std::string::npos) << kLong;
}

TEST(CudaCodegen, ColumnReductionsSplitEachColumnOverTheWarpsOfABlock) {
  // sum over dim 0: the kept dim is the contiguous one, so a warp's lanes own 32 neighbouring
  // columns (coalesced reads), and each of the block's warps (16 rows: 4) sums a slice of the
  // rows; the slices are folded in order through shared memory.
  EXPECT_NE(kRows.find("const int kiln_slices = 4, kiln_slice = threadIdx.x >> 5;"),
            std::string::npos)
      << kRows;
  EXPECT_NE(kRows.find("for (int64_t kiln_c = blockIdx.x * (int64_t)32; kiln_c < rows; kiln_c += "
                       "(int64_t)gridDim.x * 32) {"),
            std::string::npos)
      << kRows;
  EXPECT_NE(kRows.find("for (int64_t i1 = kiln_slice; kiln_in && i1 < R; i1 += kiln_slices) {"),
            std::string::npos)
      << kRows;
  EXPECT_NE(kRows.find("for (int q = 1; q < kiln_slices; ++q)"), std::string::npos) << kRows;
}

// Training's random ops in CUDA kernels: dropout, a normal of another dtype and softmax's
// dropout, every draw generated in its kernel by the generator's own source.
const std::string kDraws =
    cuda_source("draws", {randn({64, 256}), randn({64, 256}, DType::bf16), randn({256})},
                [](const std::vector<Tensor>& in) {
                  return std::vector<Tensor>{dropout(in[0], 0.1), in[1] + randn_like(in[1]),
                                             dropout(softmax(in[0], -1), 0.2),
                                             in[2] + arange(256).to(DType::f32)};
                });

TEST(CudaCodegen, DrawsAreGeneratedInTheKernelsThatReadThem) {
  // The unit carries the generator (support/philox.inc) after the helpers.
  EXPECT_NE(kDraws.find("KILN_HELPER kiln_philox_t kiln_philox("), std::string::npos) << kDraws;
  EXPECT_NE(kDraws.find("#define KILN_RANDOM_LOG log"), std::string::npos) << kDraws;
  // A run of four f32 elements takes one Philox call (a word each), made before the lanes;
  // four bf16 normals take two (two words each).
  EXPECT_NE(kDraws.find("kiln_philox_t kiln_r0[1];"), std::string::npos) << kDraws;
  EXPECT_NE(kDraws.find("kiln_r0[0] = kiln_philox((uint64_t)"), std::string::npos) << kDraws;
  EXPECT_NE(kDraws.find("kiln_philox_t kiln_r0[2];"), std::string::npos) << kDraws;
  EXPECT_NE(kDraws.find("kiln_rand_of(kiln_r0[kiln_lane >> 2], (uint64_t)kiln_lane, 0)"),
            std::string::npos)
      << kDraws;
  EXPECT_NE(kDraws.find("kiln_randn_of(kiln_r0[kiln_lane >> 1], (uint64_t)kiln_lane, 0)"),
            std::string::npos)
      << kDraws;
  // An arange in a vector loop: each lane's position is its element.
  EXPECT_NE(kDraws.find("const int64_t i0 = kiln_v + kiln_lane;"), std::string::npos) << kDraws;
  // The plain loop and the row kernel draw each element by its position.
  EXPECT_NE(kDraws.find("kiln_rand_narrow("), std::string::npos) << kDraws;
  EXPECT_NE(kDraws.find("cuda_per_fused_amax_div_exp_ge_mul_rand_sub_sum_"), std::string::npos)
      << kDraws;
}

TEST(Nvrtc, CompilesGeneratedKernelsToCubinInAWorker) {
  if (!nvrtc_available()) GTEST_SKIP() << "no NVRTC here";
  EXPECT_GT(compile_in_worker("sincos", kSinCos), 1000u);
  std::string f16 =
      cuda_source("half", {randn({8, 8}, DType::f16), randn({8, 8}, DType::bf16)},
                  [](const std::vector<Tensor>& in) {
                    return std::vector<Tensor>{exp(in[0]) * 2.0f, in[1].to(DType::f32) + 1.0f};
                  });
  EXPECT_GT(compile_in_worker("half", f16), 1000u);
  EXPECT_GT(compile_in_worker("rows", kRows), 1000u);
  EXPECT_GT(compile_in_worker("draws", kDraws), 1000u);
  EXPECT_GT(compile_in_worker("two_outputs", kTwoOutputs), 1000u);
  EXPECT_GT(compile_in_worker("long_rows", kLong), 1000u);
  // Register-held rows whose every read is a broadcast (no vector access): no alignment test.
  std::string broadcast_rows =
      cuda_source("broadcast_rows", {randn({16, 1})}, [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{in[0].expand({16, 300}).amax({-1}) +
                                   in[0].expand({16, 300}).sum({-1})};
      });
  EXPECT_EQ(broadcast_rows.find("kiln_aligned"), std::string::npos) << broadcast_rows;
  EXPECT_GT(compile_in_worker("broadcast_rows", broadcast_rows), 1000u);
}

TEST(Nvrtc, ABadKernelIsACompileErrorWithNvrtcsLog) {
  if (!nvrtc_available()) GTEST_SKIP() << "no NVRTC here";
  try {
    compile_in_worker("bad", "extern \"C\" __global__ void bad() { undeclared_thing = 1; }");
    FAIL() << "no error";
  } catch (const CompileError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("kernel bad failed to compile for sm_90"), std::string::npos) << m;
    EXPECT_NE(m.find("undeclared_thing"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace kiln::testing
