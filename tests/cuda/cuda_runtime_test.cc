// The CUDA runtime on a real GPU (label cuda; every test skips without one): device tensors
// and copies, the caching allocator, eager kernels against the CPU reference, compiled
// kernels by name, the profiler's view of them, and errors that name what went wrong.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cuda/cupti.h"
#include "cuda/device_memory.h"
#include "cuda/driver.h"
#include "kiln/kiln.h"
#include "kiln/profiler.h"
#include "support/compare.h"
#include "tensor/tensor_impl.h"

namespace kiln::testing {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (!cuda::available()) GTEST_SKIP() << "no usable GPU: " << cuda::unavailable_reason()

TEST(CudaTensor, CopiesBothWaysInEveryDtypeAndLayout) {
  SKIP_WITHOUT_GPU();
  for (DType d :
       {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::bool_}) {
    Tensor host = (randn({33, 17}) * 10.0).to(d);
    Tensor device = host.cuda();
    EXPECT_EQ(device.device(), Device::cuda);
    EXPECT_EQ(compare_tensors(device.cpu(), host, 0, 0), "") << dtype_name(d);
    // A transposed view copied to the GPU, and a strided GPU view made contiguous there.
    EXPECT_EQ(compare_tensors(host.t().cuda(), host.t(), 0, 0), "") << dtype_name(d);
    EXPECT_EQ(compare_tensors(device.t().contiguous(), host.t(), 0, 0), "") << dtype_name(d);
  }
}

TEST(CudaTensor, HostOnlyAccessSaysWhereTheTensorIs) {
  SKIP_WITHOUT_GPU();
  Tensor t = arange(6, DType::f32).reshape({2, 3}).cuda();
  EXPECT_NE(t.to_string().find("device=cuda"), std::string::npos) << t.to_string();
  EXPECT_EQ(t.at({1, 2}), 5.0);
  EXPECT_EQ(t.sum().item<double>(), 15.0);
  try {
    t.data<float>();
    FAIL() << "data<T>() of a GPU tensor";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("on cuda"), std::string::npos) << e.what();
  }
  try {
    (void)(t + arange(6, DType::f32).reshape({2, 3}));
    FAIL() << "an op across devices";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add: inputs are on different devices (cuda and cpu)"),
              std::string::npos)
        << e.what();
  }
}

TEST(CudaTensor, FreedBlocksAreReused) {
  SKIP_WITHOUT_GPU();
  cuda::synchronize("test");
  cuda::empty_cache();
  const void* first = nullptr;
  {
    Tensor a = empty({1 << 20}).cuda();
    first = a.impl()->storage->data();
  }
  EXPECT_GE(cuda::cached_bytes(), int64_t{4} << 20);
  Tensor b = empty({1 << 20}).cuda();
  EXPECT_EQ(b.impl()->storage->data(), first);
}

TEST(CudaTensor, MemoryStatsCountDeviceStorages) {
  SKIP_WITHOUT_GPU();
  const int64_t base = memory_allocated(Device::cuda);
  const int64_t host_base = memory_allocated(Device::cpu);
  reset_peak_memory_stats(Device::cuda);
  {
    Tensor a = empty({1 << 20}).cuda();
    EXPECT_EQ(memory_allocated(Device::cuda), base + (int64_t{4} << 20));
  }
  EXPECT_EQ(memory_allocated(Device::cuda), base);
  EXPECT_EQ(max_memory_allocated(Device::cuda), base + (int64_t{4} << 20));
  EXPECT_EQ(memory_allocated(Device::cpu), host_base) << "the host copy was freed";
}

// Small copies to the GPU are staged in pinned memory: the host does not wait for the GPU,
// and the bytes are the ones given even though the host buffer is gone at once.
TEST(CudaTensor, SmallCopiesToTheGpuDoNotWaitForIt) {
  SKIP_WITHOUT_GPU();
  Tensor busy = randn({1 << 22}).cuda();
  cuda::synchronize("test");
  const int64_t syncs = stats()["cuda.synchronizations"];
  std::vector<Tensor> small;
  for (int i = 0; i < 300; ++i) {  // more than the staging slots: each is reused
    busy = busy.sin();             // keeps the GPU busy while the host copies
    small.push_back(scalar_tensor(i * 0.5, DType::f64, Device::cuda));
  }
  EXPECT_EQ(stats()["cuda.synchronizations"] - syncs, 0);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(small[i].cpu().item<double>(), i * 0.5) << i;
}

// A fused optimizer step on the GPU queues its work without waiting for the GPU: its
// learning rate and bias corrections reach the kernels as staged copies.
TEST(CudaCompiled, AFusedOptimizerStepDoesNotWaitForTheGpu) {
  SKIP_WITHOUT_GPU();
  auto model = std::make_shared<nn::Linear>(64, 32);
  model->to(Device::cuda);
  optim::AdamW opt(model->parameters(), {.lr = 1e-3});
  Tensor x = randn({16, 64}).cuda();
  for (int step = 0; step < 4; ++step) {
    opt.zero_grad();
    model->forward(x).sum().backward();
    const int64_t syncs = stats()["cuda.synchronizations"];
    opt.step();
    if (step >= 2) {
      EXPECT_EQ(stats()["cuda.synchronizations"] - syncs, 0) << "step " << step;
    }
  }
}

TEST(CudaCompiled, PointwiseKernelIsNamedAndMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = randn({1000, 37}), y = randn({1000, 37});
  CompileOptions options;
  options.name = "sincos";
  auto f = compile([](Tensor a, Tensor b) { return (a + b).sin().cos(); }, options);
  Tensor got = f(x.cuda(), y.cuda());
  EXPECT_EQ(got.device(), Device::cuda);
  EXPECT_EQ(compare_tensors(got, (x + y).sin().cos(), 1e-5, 1e-6), "");
  ASSERT_EQ(f.kernels().size(), 1u);
  EXPECT_EQ(f.kernels()[0].name, "cuda_poi_fused_add_cos_sin_0");
}

TEST(CudaCompiled, ProfilerShowsKernelsWithTheirStreamAndDeviceDuration) {
  SKIP_WITHOUT_GPU();
  Tensor x = randn({4, 4}).cuda(), y = randn({4, 4}).cuda();
  auto f = compile([](Tensor a, Tensor b) { return (a + b).sin().cos(); });
  f(x, y);
  Profiler p;
  p.start();
  f(x, y);
  p.stop();
  bool host = false, device = false;
  for (const ProfileEvent& e : p.events()) {
    if (e.name != "cuda_poi_fused_add_cos_sin_0") continue;
    if (e.category == "kernel") {
      host = true;
      EXPECT_EQ(e.args.at("kernel_backend"), "cuda");
      EXPECT_EQ(e.args.at("stream"), "1");
    }
    if (e.category == "gpu_kernel") {
      device = true;
      EXPECT_GT(e.duration_us, 0);
      EXPECT_LT(e.duration_us, 10000);
    }
  }
  EXPECT_TRUE(host) << "a host launch slice";
  EXPECT_TRUE(device) << "a device duration slice on the GPU track";
}

// With CUPTI, the GPU track holds every kernel a step ran, timed on the device: kiln's own
// under their names, and the kernels inside a library step (cuBLASLt's) under the step's
// name with their own in the "kernel" argument.
TEST(CudaCompiled, ProfilerShowsTheKernelsInsideLibraryStepsThroughCupti) {
  SKIP_WITHOUT_GPU();
  Tensor w = randn({64, 32}).cuda(), b = randn({64}).cuda(), x = randn({16, 32}).cuda();
  auto f = compile([&](Tensor in) { return (linear(in, w, b) * 2.0).sin(); });
  f(x);
  Profiler p;
  p.start();
  f(x);
  p.stop();
  const std::string reason = cuda::unavailable_cupti_reason();
  if (reason.find("was not found") != std::string::npos) GTEST_SKIP() << reason;
  ASSERT_EQ(reason, "") << "CUPTI is installed but kiln could not use it";
  bool library = false, own = false;
  for (const ProfileEvent& e : p.events()) {
    if (e.category != "gpu_kernel") continue;
    EXPECT_EQ(e.args.at("duration_source"), "cupti") << e.name;
    EXPECT_GT(e.duration_us, 0) << e.name;
    if (e.name.rfind("cuda_ext_linear", 0) == 0) {
      library = true;
      ASSERT_TRUE(e.args.count("kernel")) << "the library kernel's own name";
      EXPECT_NE(e.args.at("kernel"), "") << e.name;
    }
    own |= e.name.rfind("cuda_poi_fused", 0) == 0 && !e.args.count("kernel");
  }
  EXPECT_TRUE(library) << "the matmul's cuBLASLt kernel on the GPU track";
  EXPECT_TRUE(own) << "kiln's pointwise kernel on the GPU track";
}

TEST(CudaCompiled, LargeRowsAndMatmulsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = randn({512, 3000}), w = randn({256, 3000}) * 0.02, b = randn({256});
  auto f = compile([&](Tensor in) {
    Tensor h = linear(in, w.cuda(), b.cuda()).relu();
    return std::vector<Tensor>{softmax(h, -1), layer_norm(in, {3000}), in.sum({0}), h.amax({-1})};
  });
  std::vector<Tensor> got = f(x.cuda());
  Tensor h = linear(x, w, b).relu();
  std::vector<Tensor> want{softmax(h, -1), layer_norm(x, {3000}), x.sum({0}), h.amax({-1})};
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(compare_tensors(got[i], want[i], 1e-4, 1e-4), "") << "output " << i;
}

// Register-held rows read and write runs of consecutive elements as vectors: rows that are
// whole runs, rows that end inside the last run, odd rows (runs of one), and buffers whose
// base is off the vector alignment (a view one element in), which take the scalar path.
TEST(CudaCompiled, RegisterRowsMatchTheCpuAlignedOrNot) {
  SKIP_WITHOUT_GPU();
  for (int64_t r : {1024, 1000, 999}) {
    for (int64_t offset : {0, 1}) {
      SCOPED_TRACE(fmt::format("rows of {}, base offset {}", r, offset));
      const int64_t rows = 48;
      Tensor flat = randn({rows * r + offset}), w_flat = randn({r + offset}), b = randn({r});
      Tensor x = flat.narrow(0, offset, rows * r).reshape({rows, r}),
             w = w_flat.narrow(0, offset, r);
      auto f = compile([&](Tensor in, Tensor weight) {
        return std::vector<Tensor>{softmax(in, -1), log_softmax(in, -1),
                                   layer_norm(in, {r}, weight, b.cuda()),
                                   softmax(in.to(DType::bf16), -1)};
      });
      Tensor xg = flat.cuda().narrow(0, offset, rows * r).reshape({rows, r});
      Tensor wg = w_flat.cuda().narrow(0, offset, r);
      std::vector<Tensor> got = f(xg, wg);
      std::vector<Tensor> want{softmax(x, -1), log_softmax(x, -1), layer_norm(x, {r}, w, b),
                               softmax(x.to(DType::bf16), -1)};
      for (size_t i = 0; i < want.size(); ++i) {
        const double tol = i == 3 ? 1e-2 : 1e-4;
        EXPECT_EQ(compare_tensors(got[i], want[i], tol, tol), "") << "output " << i;
      }
    }
  }
}

// The fused attention kernel against the CPU's unfused ops: query and key counts that are
// not tile multiples, heads read in place from a packed [b, t, 3 * d] projection (strided
// batch dims), head dims below the tile, rank 2, and half precisions.
TEST(CudaEager, FusedAttentionMatchesTheUnfusedOps) {
  SKIP_WITHOUT_GPU();
  struct Case {
    Tensor q, k, v;
    double tol;
  };
  std::vector<Case> cases;
  cases.push_back({randn({2, 3, 70, 40}), randn({2, 3, 50, 40}), randn({2, 3, 50, 24}), 1e-4});
  {
    Tensor qkv = randn({2, 33, 3 * 64});  // [b, t, 3 heads... of 4 x 16]
    auto head = [&](int64_t i) {
      return qkv.narrow(-1, i * 64, 64).reshape({2, 33, 4, 16}).transpose(1, 2);
    };
    cases.push_back({head(0), head(1), head(2), 1e-4});
  }
  cases.push_back({randn({129, 64}), randn({65, 64}), randn({65, 64}), 1e-4});
  // Transformer heads, with scores large enough that f32 products carried in TF32 alone
  // (10-bit mantissas) would miss the tolerance.
  cases.push_back(
      {randn({2, 4, 256, 64}) * 2.0, randn({2, 4, 256, 64}) * 2.0, randn({2, 4, 256, 64}), 1e-4});
  cases.push_back({randn({2, 8, 64, 32}).to(DType::f16), randn({2, 8, 96, 32}).to(DType::f16),
                   randn({2, 8, 96, 32}).to(DType::f16), 2e-2});
  cases.push_back({randn({1, 40, 64}).to(DType::bf16), randn({1, 40, 64}).to(DType::bf16),
                   randn({1, 40, 64}).to(DType::bf16), 5e-2});
  for (size_t c = 0; c < cases.size(); ++c) {
    const Case& t = cases[c];
    Tensor want = scaled_dot_product_attention(t.q, t.k, t.v, 0.3);
    // The heads keep their strides on the way to the GPU when taken from a GPU projection.
    Tensor got = scaled_dot_product_attention(t.q.cuda(), t.k.cuda(), t.v.cuda(), 0.3);
    EXPECT_EQ(compare_tensors(got, want, t.tol, t.tol), "") << "case " << c;
  }
  {  // strided heads on the GPU itself
    Tensor qkv = randn({2, 33, 3 * 64});
    Tensor g = qkv.cuda();
    auto head = [](const Tensor& x, int64_t i) {
      return x.narrow(-1, i * 64, 64).reshape({2, 33, 4, 16}).transpose(1, 2);
    };
    Tensor want = scaled_dot_product_attention(head(qkv, 0), head(qkv, 1), head(qkv, 2));
    Tensor got = scaled_dot_product_attention(head(g, 0), head(g, 1), head(g, 2));
    EXPECT_EQ(compare_tensors(got, want, 1e-4, 1e-4), "");
  }
}

// The f16/bf16 kernel (tensor-core products in the operand type, cuda/attention_mma16.cuh)
// against the CPU's f32 ops on the same rounded operands: head dims from 8 to 128 (padded to
// 64 or 128; 100 and 36 are not runs of 16 bytes, so they take the element-wise loads),
// query and key counts that are not tile multiples, several key tiles with the largest
// scores in the last ones (the rescale), and strided heads.
TEST(CudaEager, HalfPrecisionAttentionMatchesF32Ops) {
  SKIP_WITHOUT_GPU();
  struct Case {
    Shape q, k, dv;  // dv: the value head dim as a one-element shape
  };
  const std::vector<Case> cases = {
      {{2, 3, 70, 64}, {2, 3, 130, 64}, {64}}, {{1, 2, 33, 128}, {1, 2, 200, 128}, {128}},
      {{2, 1, 64, 32}, {2, 1, 64, 32}, {32}},  {{1, 1, 17, 100}, {1, 1, 90, 100}, {100}},
      {{3, 50, 8}, {3, 65, 8}, {8}},           {{1, 4, 129, 80}, {1, 4, 257, 80}, {48}},
      {{2, 2, 40, 36}, {2, 2, 70, 36}, {36}},
  };
  for (DType dtype : {DType::bf16, DType::f16}) {
    const double tol = dtype == DType::bf16 ? 3e-2 : 1e-2;
    for (size_t c = 0; c < cases.size(); ++c) {
      const Case& t = cases[c];
      Shape v_shape = t.k;
      v_shape.back() = t.dv[0];
      // Keys grow along the sequence, so the row max is first met in a later tile.
      Tensor ramp = arange(0, t.k[t.k.size() - 2]).reshape({-1, 1}) * (1.0 / 64) + 0.5;
      Tensor q = randn(t.q).to(dtype), k = (randn(t.k) * ramp).to(dtype),
             v = randn(v_shape).to(dtype);
      const double scale = c % 2 ? 1 / std::sqrt(double(t.q.back())) : 0.3;
      Tensor want =
          scaled_dot_product_attention(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32), scale);
      Tensor got = scaled_dot_product_attention(q.cuda(), k.cuda(), v.cuda(), scale);
      EXPECT_EQ(got.dtype(), dtype);
      EXPECT_EQ(compare_tensors(got.to(DType::f32), want, tol, tol), "")
          << dtype_name(dtype) << " case " << c;
    }
  }
  {  // heads read in place from a packed bf16 projection on the GPU
    Tensor qkv = randn({2, 77, 3 * 256}).to(DType::bf16);
    auto head = [](const Tensor& x, int64_t i) {
      return x.narrow(-1, i * 256, 256).reshape({2, 77, 4, 64}).transpose(1, 2);
    };
    Tensor f = qkv.to(DType::f32);
    Tensor want = scaled_dot_product_attention(head(f, 0), head(f, 1), head(f, 2));
    Tensor g = qkv.cuda();
    Tensor got = scaled_dot_product_attention(head(g, 0), head(g, 1), head(g, 2));
    EXPECT_EQ(compare_tensors(got.to(DType::f32), want, 3e-2, 3e-2), "");
  }
  {  // written as ops in bf16 with a divided scale, compiled: one fused step
    auto attention = [](Tensor q, Tensor k, Tensor v) {
      Tensor scores = matmul(q, k.transpose(-2, -1)) / std::sqrt(64.0);
      return matmul(softmax(scores, -1), v);
    };
    Tensor q = randn({2, 4, 90, 64}).to(DType::bf16), k = randn({2, 4, 150, 64}).to(DType::bf16),
           v = randn({2, 4, 150, 64}).to(DType::bf16);
    Tensor want = attention(q.to(DType::f32), k.to(DType::f32), v.to(DType::f32));
    auto f = compile(attention);
    f(q.cuda(), k.cuda(), v.cuda());
    std::vector<std::string> launched;
    set_launch_hooks([&](const LaunchInfo& i) { launched.push_back(std::string(i.name)); }, {});
    Tensor got = f(q.cuda(), k.cuda(), v.cuda());
    set_launch_hooks(nullptr, nullptr);
    EXPECT_EQ(compare_tensors(got.to(DType::f32), want, 3e-2, 3e-2), "");
    ASSERT_EQ(launched.size(), 1u) << fmt::format("{}", fmt::join(launched, ", "));
    EXPECT_NE(launched[0].find("attention"), std::string::npos) << launched[0];
  }
}

// Attention written out as ops compiles to one fused step on the GPU, named in the profile.
TEST(CudaCompiled, AttentionWrittenAsOpsIsOneFusedStep) {
  SKIP_WITHOUT_GPU();
  Tensor qkv = randn({2, 100, 3 * 128});
  auto attention = [](Tensor x) {
    auto head = [&](int64_t i) {
      return x.narrow(-1, i * 128, 128).reshape({2, 100, 4, 32}).transpose(1, 2);
    };
    Tensor scores = matmul(head(0), head(1).transpose(-2, -1)) / std::sqrt(32.0);
    return matmul(softmax(scores, -1), head(2)).transpose(1, 2).reshape({2, 100, 128});
  };
  Tensor want = attention(qkv);  // eager on the CPU: the unfused oracle
  auto f = compile(attention);
  f(qkv.cuda());
  Profiler p;
  p.start();
  Tensor got = f(qkv.cuda());
  p.stop();
  EXPECT_EQ(compare_tensors(got, want, 1e-4, 1e-4), "");
  bool fused = false;
  for (const ProfileEvent& e : p.events()) fused |= e.name.find("attention") != std::string::npos;
  EXPECT_TRUE(fused) << "an attention step in the profile";
}

// A compiled plan's matrix products are run once on scratch operands while its kernels
// compile (loading cuBLASLt and each product's kernel off the first call's path).
TEST(CudaCompiled, LibraryStepsAreWarmedUpWhileKernelsCompile) {
  SKIP_WITHOUT_GPU();
  Tensor w = (randn({48, 40}) * 0.1), b = randn({48});
  Tensor wg = w.cuda(), bg = b.cuda();
  auto f = compile([&](Tensor x) { return (linear(x, wg, bg) * 3.0).cos(); });
  Tensor x = randn({24, 40});
  Profiler p;
  p.start();
  Tensor got = f(x.cuda());
  p.stop();
  EXPECT_EQ(compare_tensors(got, (linear(x, w, b) * 3.0).cos(), 1e-4, 1e-4), "");
  int warmups = 0;
  for (const ProfileEvent& e : p.events())
    warmups += e.category == "compile" && e.name == "library warm-up (1 steps)";
  EXPECT_EQ(warmups, 1);
}

int64_t stat_delta(const std::map<std::string, int64_t>& before, const char* name) {
  return stats()[name] - before.at(name);
}

TEST(CudaGraphs, ReplayEqualsNormalExecutionForNewInputsEachCall) {
  SKIP_WITHOUT_GPU();
  Tensor w = (randn({64, 32}) * 0.1).cuda(), b = randn({64}).cuda();
  auto fn = [&](Tensor x) { return softmax(linear(x, w, b).relu(), -1) * 2.0; };
  CompileOptions graphs;
  graphs.name = "graphs";
  graphs.cuda_graphs = true;
  auto f = compile(fn, graphs);
  CompileOptions plain;
  plain.name = "plain";
  auto g = compile(fn, plain);
  auto before = stats();
  Tensor same = randn({16, 32}).cuda();
  std::vector<Tensor> results;
  for (int call = 0; call < 5; ++call) {
    Tensor x = call >= 3 ? same : randn({16, 32}).cuda();  // new addresses, then one reused
    Tensor got = f(x);
    results.push_back(got);
    EXPECT_EQ(compare_tensors(got, g(x), 1e-5, 1e-6), "") << "call " << call;
  }
  // A result stays as it was when later replays run.
  EXPECT_EQ(compare_tensors(results[3], g(same), 1e-5, 1e-6), "");
  EXPECT_EQ(stat_delta(before, "cuda.graph_captures"), 1);
  EXPECT_EQ(stat_delta(before, "cuda.graph_replays"), 4);
  EXPECT_EQ(stat_delta(before, "cuda.graph_fallbacks"), 0);
}

TEST(CudaGraphs, APlanThatWaitsOnTheHostRunsUncaptured) {
  SKIP_WITHOUT_GPU();
  Tensor table = randn({10, 8}).cuda();
  CompileOptions graphs;
  graphs.name = "lookup";
  graphs.cuda_graphs = true;
  // embedding reads its indices on the host (bounds checks): not capturable.
  auto f = compile([&](Tensor idx) { return embedding(idx, table) * 3.0; }, graphs);
  auto before = stats();
  Tensor idx = (rand({6}) * 9.0).to(DType::i64).cuda();
  for (int call = 0; call < 3; ++call)
    EXPECT_EQ(compare_tensors(f(idx), embedding(idx, table) * 3.0, 1e-6, 1e-6), "")
        << "call " << call;
  EXPECT_EQ(stat_delta(before, "cuda.graph_fallbacks"), 1);
  EXPECT_EQ(stat_delta(before, "cuda.graph_replays"), 0);
}

TEST(CudaCompiled, BiasReluAndGeluRunInCublasLtsEpilogue) {
  SKIP_WITHOUT_GPU();
  Tensor x = randn({300, 128}), w1 = randn({256, 128}) * 0.1, b1 = randn({256}),
         w2 = randn({64, 256}) * 0.1;
  auto layers = [](Tensor in, Tensor a, Tensor ab, Tensor c) {
    return matmul(gelu(linear(in, a, ab), "tanh"), c.t()).relu();
  };
  CompileOptions options;
  options.name = "epilogues";
  auto f = compile([&](Tensor in) { return layers(in, w1.cuda(), b1.cuda(), w2.cuda()); }, options);
  Tensor got = f(x.cuda());
  EXPECT_EQ(compare_tensors(got, layers(x, w1, b1, w2), 1e-4, 1e-4), "");
  // Both products carry their tails: no pointwise kernel is left.
  EXPECT_EQ(f.kernels().size(), 0u);
}

TEST(CudaCompiled, MaxAutotuneTimesCublasLtAlgorithmsAndCachesTheWinner) {
  SKIP_WITHOUT_GPU();
  const std::string dir = ::testing::TempDir() + "/kiln-cublaslt-tune";
  std::filesystem::remove_all(dir);
  const char* suite_cache = std::getenv("KILN_CACHE_DIR");
  const std::string previous = suite_cache ? suite_cache : "";
  setenv("KILN_CACHE_DIR", dir.c_str(), 1);
  Tensor a = randn({384, 256}).to(DType::bf16), b = randn({256, 320}).to(DType::bf16);
  CompileOptions options;
  options.name = "tuned_mm";
  options.max_autotune = true;
  auto f = compile([](Tensor x, Tensor y) { return matmul(x, y).relu(); }, options);
  Tensor got = f(a.cuda(), b.cuda());
  EXPECT_EQ(compare_tensors(got.to(DType::f32), matmul(a, b).relu().to(DType::f32), 2e-2, 2e-2),
            "");
  int entries = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir + "/autotune")) {
    std::ifstream in(e.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    entries += text.find("\"cublaslt\"") != std::string::npos;
  }
  EXPECT_EQ(entries, 1) << "one tuned algorithm, for the one product shape";
  if (previous.empty())
    unsetenv("KILN_CACHE_DIR");
  else
    setenv("KILN_CACHE_DIR", previous.c_str(), 1);
}

// Reductions over leading dims (a bias's gradient, a norm's weight gradient) in the column
// form: ragged column blocks and slices, several phases, NaN, element stores after them.
TEST(CudaCompiled, ColumnReductionsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  auto f = compile([](Tensor x) {
    Tensor centered = x - x.mean({0}, true);
    return std::vector<Tensor>{x.sum({0}), (centered * centered).mean({0}), x.amax({0}),
                               centered * 2.0f, x.sum({0, 1})};
  });
  for (Shape shape : std::vector<Shape>{{1024, 8, 65}, {3, 1, 40}, {777, 2, 33}, {64, 4, 2048}}) {
    Tensor x = randn(shape);
    if (shape[0] == 3) x.data<float>()[5] = std::nanf("");
    std::vector<Tensor> got = f(x.cuda());
    Tensor c = x - x.mean({0}, true);
    std::vector<Tensor> want = {x.sum({0}), (c * c).mean({0}), x.amax({0}), c * 2.0f,
                                x.sum({0, 1})};
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(compare_tensors(got[i], want[i], 1e-4, 1e-4), "")
          << "output " << i << " of " << fmt::format("{}", fmt::join(shape, "x"));
  }
}

TEST(CudaCompiled, LongRowsSplitOverBlocksMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  Tensor x = randn({1 << 22}), y = randn({3, 1 << 20});
  CompileOptions options;
  options.name = "long_rows";
  auto f = compile(
      [](Tensor a, Tensor b) {
        return std::vector<Tensor>{a.sum(), a.amax(), a.mean(), b.sum({-1}), b.amin({-1})};
      },
      options);
  for (int call = 0; call < 3; ++call) {  // the counters the last blocks reset serve the next call
    std::vector<Tensor> got = f(x.cuda(), y.cuda());
    std::vector<Tensor> want{x.sum(), x.amax(), x.mean(), y.sum({-1}), y.amin({-1})};
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_EQ(compare_tensors(got[i], want[i], 1e-5, 1e-3), "")
          << "output " << i << ", call " << call;
  }
}

TEST(CudaCompiled, CapturedTensorsMustBeWhereTheInputsAre) {
  SKIP_WITHOUT_GPU();
  Tensor w = randn({4, 4});  // left on the CPU
  CompileOptions options;
  options.name = "mixed";
  auto f = compile([&](Tensor x) { return matmul(x, w); }, options);
  try {
    f(randn({4, 4}).cuda());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("captured tensor"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("is on cpu but input 0 is on cuda"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kiln::testing
