// Fusion is real: the kernels a compiled graph launches, counted and named.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "codegen/c_emitter.h"
#include "driver/pipeline.h"
#include "kiln/kiln.h"
#include "lower/lower.h"
#include "lower/schedule.h"
#include "lower/view_strides.h"
#include "support/compare.h"
#include "trace/tracer.h"

namespace kiln {
namespace {

// The steps of `fn` compiled natively for `inputs`: kernel names, "ext:<op>" otherwise.
template <class F>
std::vector<std::string> steps_of(F fn, const std::vector<Tensor>& inputs) {
  Tracer tracer("fusion", /*freeze_captured=*/false);
  std::vector<Tensor> traced = tracer.add_inputs(inputs);
  std::vector<Tensor> out;
  {
    RecorderScope scope(&tracer);
    out = fn(traced);
  }
  TraceResult result = tracer.finish(out);
  CompileOptions options;
  options.mode = CompileMode::InProcess;
  auto exe = compile_graph(result.graph, resolve_options(options));
  // The compiled graph computes what the eager ops do; captured tensors are its last inputs.
  std::vector<Tensor> args = inputs;
  for (const auto& c : result.captured) args.emplace_back(c.lock());
  std::vector<Tensor> got = exe->run(args), want = fn(inputs);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(testing::compare_tensors(got[i], want[i], 1e-5, 1e-5), "") << "output " << i;
  return exe->kernel_names();
}

size_t count_kernels(const std::vector<std::string>& steps) {
  size_t n = 0;
  for (const std::string& s : steps) n += s.rfind("ext:", 0) != 0;
  return n;
}

TEST(Fusion, PointwiseChainIsOneKernel) {
  auto steps = steps_of(
      [](std::vector<Tensor> in) { return std::vector<Tensor>{((in[0] + in[1]).sin()).cos()}; },
      {randn({4, 4}), randn({4, 4})});
  EXPECT_EQ(steps, std::vector<std::string>{"cpp_poi_fused_add_cos_sin_0"});
}

TEST(Fusion, SoftmaxAndLayerNormAreOneKernelEach) {
  auto softmax_steps =
      steps_of([](std::vector<Tensor> in) { return std::vector<Tensor>{softmax(in[0], -1)}; },
               {randn({32, 100})});
  EXPECT_EQ(softmax_steps.size(), 1u);
  EXPECT_LE(count_kernels(softmax_steps), 2u);
  EXPECT_EQ(softmax_steps[0].rfind("cpp_per_fused_", 0), 0u) << softmax_steps[0];
  auto ln_steps = steps_of(
      [](std::vector<Tensor> in) {
        return std::vector<Tensor>{layer_norm(in[0], {64}, in[1], in[2])};
      },
      {randn({2, 16, 64}), randn({64}), randn({64})});
  EXPECT_EQ(ln_steps.size(), 1u);
  EXPECT_LE(count_kernels(ln_steps), 2u);
  // Over a leading dim too (the reduced dims are not the innermost ones).
  auto column =
      steps_of([](std::vector<Tensor> in) { return std::vector<Tensor>{softmax(in[0], 0)}; },
               {randn({7, 5})});
  EXPECT_EQ(count_kernels(column), 1u);
}

// Row reductions of one tensor share a kernel (its rows loaded once); those of unrelated
// tensors do not, however many: a block repeated L times keeps L equal kernels (one object
// for all), where one kernel over every block would grow with L (and its compile with it).
TEST(Fusion, RowReductionsShareAKernelOnlyWhenTheyReadTheSameTensor) {
  auto same = steps_of(
      [](std::vector<Tensor> in) {
        return std::vector<Tensor>{in[0].sum({-1}), amax(in[0], {-1})};
      },
      {randn({16, 40})});
  EXPECT_EQ(count_kernels(same), 1u);
  auto apart = steps_of(
      [](std::vector<Tensor> in) {
        std::vector<Tensor> out;
        for (const Tensor& t : in) out.push_back(softmax(t * 0.5f, -1));
        return out;
      },
      {randn({16, 40}), randn({16, 40}), randn({16, 40})});
  EXPECT_EQ(count_kernels(apart), 3u);
}

TEST(Fusion, LinearReluIsALibraryCallAndOneKernel) {
  auto steps = steps_of(
      [](std::vector<Tensor> in) { return std::vector<Tensor>{relu(linear(in[0], in[1], in[2]))}; },
      {randn({8, 16}), randn({32, 16}), randn({32})});
  EXPECT_EQ(count_kernels(steps), 1u);
  EXPECT_NE(std::find(steps.begin(), steps.end(), "ext:matmul"), steps.end());
  EXPECT_EQ(steps.back(), "cpp_poi_fused_add_relu_0");
}

TEST(Fusion, ViewsAreIndexArithmeticNotCopies) {
  auto steps = steps_of(
      [](std::vector<Tensor> in) {
        Tensor t = in[0].transpose(0, 1).slice(0, 1, 7, 2).reshape({-1}) * 2.0f;
        return std::vector<Tensor>{t + in[1].expand({3, 5}).reshape({15})};
      },
      {randn({5, 8}), randn({1, 5})});
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0], "cpp_poi_fused_add_mul_0");
  for (const std::string& s : steps)
    for (const char* view : {"reshape", "permute", "slice", "expand"})
      EXPECT_EQ(s.find(view), std::string::npos) << s;
}

// A library call reads views in place, except a reshape that no strides express (heads
// transposed back and merged, as attention does): that one is a generated copy kernel, not
// the eager op's copy.
TEST(Fusion, AReshapeThatMustCopyBeforeALibraryCallIsAKernel) {
  auto steps = steps_of(
      [](std::vector<Tensor> in) {
        Tensor merged = in[0].transpose(1, 2).reshape({2, 6, 32});  // [b, h, t, dh] -> [b, t, h*dh]
        Tensor split = in[1].reshape({2, 6, 4, 8}).transpose(1, 2);  // a view: no copy
        return std::vector<Tensor>{matmul(merged, in[2]), matmul(split, in[3])};
      },
      {randn({2, 4, 6, 8}), randn({2, 6, 32}), randn({32, 5}), randn({8, 3})});
  EXPECT_EQ(count_kernels(steps), 1u) << ::testing::PrintToString(steps);
  EXPECT_NE(std::find(steps.begin(), steps.end(), "cpp_poi_fused_permute_reshape_0"), steps.end())
      << ::testing::PrintToString(steps);
  // The other reshape is a view: the eager op, which copies nothing.
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "ext:reshape"), 1)
      << ::testing::PrintToString(steps);
}

TEST(ViewStrides, ReshapesThatStridesExpressAndThoseThatCopy) {
  using V = std::vector<int64_t>;
  EXPECT_EQ(reshaped_strides({4, 6}, {6, 1}, {2, 2, 6}), (V{12, 6, 1}));
  EXPECT_EQ(reshaped_strides({4, 6}, {6, 1}, {24}), (V{1}));
  // Splitting a transposed dim is a view; merging transposed dims is not.
  EXPECT_EQ(reshaped_strides({6, 4}, {1, 6}, {2, 3, 4}), (V{3, 1, 6}));
  EXPECT_EQ(reshaped_strides({6, 4}, {1, 6}, {24}), std::nullopt);
  // A row slice keeps its rows mergeable within them, not across.
  EXPECT_EQ(reshaped_strides({3, 8}, {16, 1}, {3, 2, 4}), (V{16, 4, 1}));
  EXPECT_EQ(reshaped_strides({3, 8}, {16, 1}, {24}), std::nullopt);
  // Size-1 dims take any stride; broadcast dims stay unmergeable.
  EXPECT_EQ(reshaped_strides({1, 5}, {99, 1}, {5, 1}), (V{1, 1}));
  EXPECT_EQ(reshaped_strides({3, 5}, {0, 1}, {15}), std::nullopt);
}

TEST(Fusion, SameOpOverManyTensorsIsOneForeachKernel) {
  auto steps = steps_of(
      [](std::vector<Tensor> in) {
        std::vector<Tensor> out;
        for (size_t i = 0; i < in.size(); i += 2) out.push_back(in[i] + in[i + 1]);
        return out;
      },
      {randn({3}), randn({3}), randn({4, 5}), randn({5}), randn({1 << 16}), randn({1 << 16}),
       randn({}), randn({})});
  EXPECT_EQ(steps, std::vector<std::string>{"cpp_for_fused_add_0"});
  // A chain (each reads the previous) cannot be one foreach launch: `a`, read by two
  // kernels, runs first; the two that read it are one foreach kernel after it.
  auto chain = steps_of(
      [](std::vector<Tensor> in) {
        Tensor a = in[0] + in[1];
        return std::vector<Tensor>{a, a + in[1], a + in[0]};
      },
      {randn({6}), randn({6})});
  EXPECT_EQ(chain, (std::vector<std::string>{"cpp_poi_fused_add_0", "cpp_for_fused_add_1"}));
}

// Multi-output kernels: values read only by one other pointwise kernel of their shape (an
// optimizer's moment, a mask kept for the backward) are stored by it, whatever their dtype;
// an optimizer's per-parameter kernels then form one foreach launch.
TEST(Fusion, AValueReadOnlyByOneKernelIsStoredByIt) {
  auto update = [](const Tensor& p, const Tensor& g, const Tensor& m) {
    Tensor m_new = m * 0.9f + g * 0.1f;
    Tensor keep = g.abs() < 2.0f;
    Tensor p_new = p - (m_new * 0.01f).masked_fill(keep.logical_not(), 0.0);
    return std::vector<Tensor>{p_new, m_new, keep};
  };
  auto steps = steps_of([&](std::vector<Tensor> in) { return update(in[0], in[1], in[2]); },
                        {randn({4099}), randn({4099}), randn({4099})});
  ASSERT_EQ(steps.size(), 1u) << fmt::format("{}", fmt::join(steps, ", "));
  EXPECT_EQ(steps[0].rfind("cpp_poi_fused_", 0), 0u) << steps[0];
  auto two = steps_of(
      [&](std::vector<Tensor> in) {
        std::vector<Tensor> out = update(in[0], in[1], in[2]);
        for (const Tensor& t : update(in[3], in[4], in[5])) out.push_back(t);
        return out;
      },
      {randn({33}), randn({33}), randn({33}), randn({8, 8}), randn({8, 8}), randn({8, 8})});
  ASSERT_EQ(two.size(), 1u) << fmt::format("{}", fmt::join(two, ", "));
  EXPECT_EQ(two[0].rfind("cpp_for_fused_", 0), 0u) << two[0];
}

TEST(Executor, WritesInPlaceOverADeadIntermediate) {
  auto before = stats()["executor.inplace"];
  Tensor w = randn({8, 8});
  auto steps = steps_of(
      [&](std::vector<Tensor> in) {
        Tensor a = in[0] * 2.0f;  // read by the matmul and by exp: realized
        Tensor m = matmul(a, w);
        return std::vector<Tensor>{m, a.exp()};
      },
      {randn({4, 8})});
  EXPECT_EQ(steps,
            (std::vector<std::string>{"cpp_poi_fused_mul_0", "ext:matmul", "cpp_poi_fused_exp_1"}));
  EXPECT_EQ(stats()["executor.inplace"] - before, 1);
}

TEST(Fusion, VectorizedMaxAndMinStillPropagateNaN) {
  const double nan = std::nan(""), inf = INFINITY;
  Tensor x = from_vector({1, nan, 3, 4, -inf, -inf, -inf, -inf, 2, 8, -1, 0}, {3, 4});
  // steps_of compares every output with eager, NaN matching NaN.
  auto steps = steps_of(
      [](std::vector<Tensor> in) {
        return std::vector<Tensor>{in[0].amax({1}), in[0].amin({1}), in[0].amax({0}, true)};
      },
      {x});
  EXPECT_EQ(count_kernels(steps), 2u);
  Tensor m = x.amax({1});
  EXPECT_TRUE(std::isnan(m.at({0})));
  EXPECT_EQ(m.at({1}), -inf);
}

TEST(Fusion, TanhGeluIsOneKernelAndMatchesEagerAtItsExtremes) {
  // The compiled form is x / (1 + exp(-2u)) (passes/decompose_ops.cc), eager's is
  // 0.5 x (1 + tanh(u)): equal where exp overflows (large negative x), underflows (large
  // positive x), near zero, and for inf and NaN, in f32 and f64.
  const double nan = std::nan(""), inf = INFINITY;
  std::vector<double> v = {-inf, -1e30, -100, -20, -9.5, -3, -1,  -1e-3, -1e-30, 0,  1e-30,
                           1e-3, 0.5,   1,    3,   9.5,  20, 100, 1e30,  inf,    nan};
  for (int i = 0; i < 43; ++i) v.push_back(-6 + 0.29 * i);
  for (DType d : {DType::f32, DType::f64}) {
    Tensor x = from_vector(v, {static_cast<int64_t>(v.size())}).to(d);
    auto steps = steps_of(
        [](std::vector<Tensor> in) { return std::vector<Tensor>{gelu(in[0], "tanh")}; }, {x});
    EXPECT_EQ(count_kernels(steps), 1u) << dtype_name(d);
  }
}

// The bodies of `g`'s kernels, as emitted.
std::string kernel_sources(const Graph& g) {
  std::string src;
  Program program = lower_graph(g);
  schedule_program(program, Device::cpu);
  for (const LoopKernel& k : program.kernels) src += emit_kernel(k, g.num_symbols, cpp_dialect());
  return src;
}

TEST(Fusion, RmsNormIsOneRowKernel) {
  Tensor w = randn({96});
  auto steps = steps_of(
      [&](std::vector<Tensor> in) { return std::vector<Tensor>{rms_norm(in[0], {96}, w, 1e-6)}; },
      {randn({4, 7, 96})});
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].rfind("cpp_per_fused_", 0), 0u) << steps[0];
  // bf16 in and out, computed in f32: compiled within a bf16 rounding of eager.
  Tensor x = randn({33, 64}).to(DType::bf16), wb = randn({64}).to(DType::bf16);
  auto f = compile([&](const Tensor& t) { return rms_norm(t, {64}, wb); });
  Tensor got = f(x), want = rms_norm(x, {64}, wb);
  EXPECT_EQ(got.dtype(), DType::bf16);
  EXPECT_EQ(testing::compare_tensors(got.to(DType::f32), want.to(DType::f32), 1e-2, 1e-2), "");
}

TEST(Fusion, AValueReadOnlyInsideItsKernelIsNotStored) {
  // gelu(linear(x)) in bf16: the f32 upcast of the product plus bias has two readers, both
  // in the GELU kernel. It is computed there once and not written out as a second output.
  Tracer tracer("upcast", /*freeze_captured=*/false);
  auto in = tracer.add_inputs({randn({16, 32}).to(DType::bf16), randn({64, 32}).to(DType::bf16),
                               randn({64}).to(DType::bf16)});
  std::vector<Tensor> out;
  {
    RecorderScope scope(&tracer);
    out = {gelu(linear(in[0], in[1], in[2]))};
  }
  Graph g = optimize_graph(tracer.finish(out).graph);
  Program program = lower_graph(g);
  size_t kernels = 0;
  for (const LoopKernel& k : program.kernels) {
    ++kernels;
    EXPECT_EQ(k.num_outputs, 1) << k.name;
  }
  EXPECT_EQ(kernels, 1u);
}

TEST(Fusion, SourceIsDeterministic) {
  Tracer tracer("det", /*freeze_captured=*/false);
  auto in = tracer.add_inputs({randn({3, 5}), randn({5})});
  std::vector<Tensor> out;
  {
    RecorderScope scope(&tracer);
    out = {softmax(in[0] * in[1], -1) + 1.0f};
  }
  Graph g = optimize_graph(tracer.finish(out).graph);
  std::string a = kernel_sources(g);
  std::string b = kernel_sources(g);
  EXPECT_EQ(a, b);
  EXPECT_NE(a.find("cpp_per_fused_"), std::string::npos);
}

size_t occurrences(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

TEST(Fusion, SoftmaxComputesEachExpOnce) {
  // exp(x - max) feeds the row sum and the stores: the sum's loop keeps it in the output,
  // the store loop divides it in place (the values are checked in steps_of).
  steps_of([](std::vector<Tensor> in) { return std::vector<Tensor>{softmax(in[0], -1)}; },
           {randn({64, 300})});
  Tracer tracer("sm", /*freeze_captured=*/false);
  auto in = tracer.add_inputs({randn({64, 300})});
  std::vector<Tensor> out;
  {
    RecorderScope scope(&tracer);
    out = {softmax(in[0], -1)};
  }
  Graph g = optimize_graph(tracer.finish(out).graph);
  std::string source = kernel_sources(g);
  std::string body = source.substr(source.find("void cpp_per_fused_"));
  EXPECT_EQ(occurrences(body, "expf("), 1u) << body;
}

}  // namespace
}  // namespace kiln
