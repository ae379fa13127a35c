// compile(): tracing, guards and re-tracing, dynamic dims, lists and tuples, captured
// constants, stats and option handling.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <cmath>
#include <limits>

#include <tuple>

#include "kiln/kiln.h"
#include "support/compare.h"
#include "tensor/tensor_impl.h"

namespace kiln {
namespace {

using testing::compare_tensors;

TEST(Compile, TracesOnceAndHitsTheGuardAfter) {
  auto before = stats();
  auto f = compile([](Tensor a, Tensor b) { return ((a + b).sin()).cos(); });
  Tensor x = randn({4, 4}), y = randn({4, 4});
  Tensor expected = cos(sin(x + y));
  EXPECT_EQ(compare_tensors(f(x, y), expected, 1e-6, 1e-6), "");
  EXPECT_EQ(compare_tensors(f(x, y), expected, 1e-6, 1e-6), "");
  auto after = stats();
  EXPECT_EQ(after["trace.graphs"] - before["trace.graphs"], 1);
  EXPECT_EQ(after["guard.hits"] - before["guard.hits"], 1);
  ASSERT_EQ(f.graphs().size(), 1u);
  EXPECT_EQ(f.graphs()[0], R"(graph compiled(%in0: f32[4, 4], %in1: f32[4, 4]) {
  %0 = add(%in0, %in1)
  %1 = sin(%0)
  %2 = cos(%1)
  return %2
}
)");
}

TEST(Compile, GuardMissRetraces) {
  auto f = compile([](Tensor a) { return a * 2; });
  f(randn({3}));
  f(randn({3}));
  EXPECT_EQ(f.graphs().size(), 1u);
  f(randn({5}));              // size
  f(randn({3}, DType::f64));  // dtype
  f(randn({3, 1}));           // rank
  f(randn({4, 3}).t());       // contiguity
  EXPECT_EQ(f.graphs().size(), 5u);
  Tensor strided = randn({4, 3}).t();
  EXPECT_EQ(compare_tensors(f(strided), strided * 2, 0, 0), "");
}

TEST(Compile, DynamicDimsShareOneEntry) {
  auto f = compile([](Tensor a, Tensor b) { return (a + b).reshape({-1, 2, 4}).sum({2}); });
  Tensor x = randn({4, 8}), y = randn({4, 8});
  mark_dynamic(x, 0);
  mark_dynamic(y, 0);
  f(x, y);
  ASSERT_EQ(f.graphs().size(), 1u);
  EXPECT_NE(f.graphs()[0].find("%in0: f32[s0, 8], %in1: f32[s0, 8]"), std::string::npos);
  EXPECT_NE(f.graphs()[0].find("shape=[s0, 2, 4]"), std::string::npos);
  for (int64_t rows : {1, 9, 33}) {
    Tensor a = randn({rows, 8}), b = randn({rows, 8});
    Tensor expected = (a + b).reshape({-1, 2, 4}).sum({2});
    EXPECT_EQ(compare_tensors(f(a, b), expected, 1e-6, 1e-6), "") << rows;
  }
  EXPECT_EQ(f.graphs().size(), 1u);
  // Dims that shared a symbol must stay equal: this call misses and re-traces (statically),
  // where the broadcast is rejected.
  EXPECT_THROW(f(randn({6, 8}), randn({5, 8})), ShapeError);
}

TEST(Compile, ListsAndTuplesInAndOut) {
  auto g = compile([](std::vector<Tensor> xs, std::vector<Tensor> ys) {
    std::vector<Tensor> out;
    for (size_t i = 0; i < xs.size(); ++i) out.push_back(xs[i] + ys[i]);
    return out;
  });
  std::vector<Tensor> xs{randn({2}), randn({3}), randn({4})},
      ys{randn({2}), randn({3}), randn({4})};
  auto out = g(xs, ys);
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(compare_tensors(out[i], xs[i] + ys[i], 0, 0), "");
  g(std::vector<Tensor>{randn({2})}, std::vector<Tensor>{randn({2})});  // another length
  EXPECT_EQ(g.graphs().size(), 2u);

  auto h = compile([](Tensor a, std::tuple<Tensor, Tensor> pair) {
    auto [b, c] = pair;
    return std::make_tuple(a * b, std::vector<Tensor>{b - c, c});
  });
  Tensor a = randn({3}), b = randn({3}), c = randn({3});
  auto [ab, rest] = h(a, std::make_tuple(b, c));
  EXPECT_EQ(compare_tensors(ab, a * b, 0, 0), "");
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(compare_tensors(rest[0], b - c, 0, 0), "");
  EXPECT_EQ(compare_tensors(rest[1], c, 0, 0), "");
  EXPECT_EQ(rest[1].impl(), c.impl()) << "a returned input is that very tensor, as eagerly";
}

TEST(Compile, CapturedTensorsAreInputsByReference) {
  Tensor w = randn({8, 4}), bias = randn({8});
  auto f = compile([&](Tensor x) { return relu(linear(x, w, bias)) * ones({8}); });
  Tensor x = randn({2, 4});
  EXPECT_EQ(compare_tensors(f(x), relu(linear(x, w, bias)), 1e-6, 1e-6), "");
  const std::string text = f.graphs().at(0);
  EXPECT_NE(text.find("%captured0: f32[8, 4]"), std::string::npos) << text;
  EXPECT_NE(text.find("%captured1: f32[8]"), std::string::npos) << text;
  // ones() made during the trace is a constant.
  EXPECT_NE(text.find("const %c0: f32[]"), std::string::npos) << text;
}

TEST(Compile, FreezeCapturedFoldsThemAsConstants) {
  Tensor w = randn({8, 4}), bias = randn({8});
  CompileOptions options;
  options.freeze_captured = true;
  auto f = compile([&](Tensor x) { return relu(linear(x, w, bias)); }, options);
  Tensor x = randn({2, 4});
  EXPECT_EQ(compare_tensors(f(x), relu(linear(x, w, bias)), 1e-6, 1e-6), "");
  const std::string text = f.graphs().at(0);
  EXPECT_NE(text.find("const %c0: f32[8, 4]"), std::string::npos) << text;
  EXPECT_NE(text.find("const %c1: f32[8]"), std::string::npos) << text;
  EXPECT_EQ(text.find("%captured"), std::string::npos) << text;
}

TEST(Compile, TracedValuesHaveNoData) {
  Tensor leaked;
  auto f = compile([&](Tensor x) {
    leaked = x + 1;
    EXPECT_THROW(x.item<float>(), Error);
    EXPECT_THROW(x.data<float>(), Error);
    return leaked;
  });
  f(randn({1}));
  EXPECT_THROW(leaked + 1, Error);  // used outside its trace
}

TEST(Compile, EveryDesignCounterExistsFromTheStart) {
  auto s = stats();
  for (const char* name :
       {"compile.in_process", "compile.subprocess", "async.eager_runs", "async.compiled_runs",
        "async.bg_started", "async.bg_finished", "progressive.fast_runs",
        "progressive.optimized_runs", "cache.graph.hit", "cache.graph.miss", "cache.kernel.hit",
        "cache.kernel.miss", "autotune.runs", "autotune.lookup_hits"})
    EXPECT_EQ(s.count(name), 1u) << name;
}

TEST(Compile, BadEnvironmentValuesNameTheVariable) {
  setenv("KILN_COMPILE_MODE", "turbo", 1);
  try {
    compile([](Tensor a) { return a; });
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KILN_COMPILE_MODE"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("async+progressive"), std::string::npos);
  }
  CompileOptions explicit_mode;
  explicit_mode.mode = CompileMode::InProcess;  // options in code win over the environment
  EXPECT_NO_THROW(compile([](Tensor a) { return a; }, explicit_mode));
  unsetenv("KILN_COMPILE_MODE");
  setenv("KILN_COMPILE_THREADS", "zero", 1);
  EXPECT_THROW(compile([](Tensor a) { return a; }), Error);
  unsetenv("KILN_COMPILE_THREADS");
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(CompileScalars, IntDoubleAndBoolArgumentsAreSpecializedAndGuarded) {
  auto f = compile([](const Tensor& x, double alpha, int64_t power, bool negate, int shift) {
    Tensor y = x.pow(static_cast<double>(power)) * alpha + shift;
    return negate ? -y : y;
  });
  Tensor x = randn({5});
  auto eager = [&](double a, int64_t p, bool n, int s) {
    Tensor y = x.pow(static_cast<double>(p)) * a + s;
    return n ? -y : y;
  };
  int64_t traces = stats()["trace.graphs"];
  EXPECT_EQ(testing::compare_tensors(f(x, 0.5, 2, false, 1), eager(0.5, 2, false, 1), 1e-6, 1e-6),
            "");
  EXPECT_EQ(testing::compare_tensors(f(x, 0.5, 2, false, 1), eager(0.5, 2, false, 1), 1e-6, 1e-6),
            "");
  EXPECT_EQ(stats()["trace.graphs"] - traces, 1) << "the same values reuse the entry";
  EXPECT_EQ(testing::compare_tensors(f(x, 1.5, 2, false, 1), eager(1.5, 2, false, 1), 1e-6, 1e-6),
            "");
  EXPECT_EQ(testing::compare_tensors(f(x, 1.5, 3, true, 1), eager(1.5, 3, true, 1), 1e-6, 1e-6),
            "");
  EXPECT_EQ(testing::compare_tensors(f(x, 1.5, 3, true, -4), eager(1.5, 3, true, -4), 1e-6, 1e-6),
            "");
  EXPECT_EQ(stats()["trace.graphs"] - traces, 4) << "each new value is a new specialization";
  EXPECT_EQ(f.graphs().size(), 4u);
}

TEST(CompileScalars, DoublesAreGuardedByTheirBits) {
  auto f = compile([](const Tensor& x, double d) { return x / d; });
  Tensor x = ones({2});
  EXPECT_EQ(f(x, 0.0).at({0}), std::numeric_limits<double>::infinity());
  EXPECT_EQ(f(x, -0.0).at({0}), -std::numeric_limits<double>::infinity()) << "-0.0 is not 0.0";
  double nan = std::nan("");
  EXPECT_TRUE(std::isnan(f(x, nan).at({0})));
  EXPECT_TRUE(std::isnan(f(x, -nan).at({0})));
  EXPECT_EQ(f.graphs().size(), 3u) << "every NaN is one specialization";
}

TEST(CompileScalars, PairsInAndOut) {
  auto f = compile([](std::pair<Tensor, Tensor> p, double s) {
    return std::make_pair(p.first * s, p.second + p.first);
  });
  Tensor a = randn({3}), b = randn({3});
  auto [u, v] = f(std::make_pair(a, b), 2.0);
  EXPECT_EQ(testing::compare_tensors(u, a * 2.0, 1e-6, 1e-6), "");
  EXPECT_EQ(testing::compare_tensors(v, b + a, 1e-6, 1e-6), "");
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(CompileFactories, FactoriesAreGraphValuesNotConstants) {
  auto f = compile([](const Tensor& x) {
    Tensor z = zeros({4, 1000});  // a scalar broadcast in the graph, not 4000 stored values
    z.add_(x);                    // a fresh tensor: written in place like any other
    return cat({z, ones_like(x), full_like(x, 2.5)}, 0);
  });
  Tensor x = randn({4, 1000});
  Tensor want = cat({x, ones({4, 1000}), full({4, 1000}, 2.5)}, 0);
  EXPECT_EQ(testing::compare_tensors(f(x), want, 0, 0), "");
  const std::string text = f.graphs().at(0);
  EXPECT_EQ(text.find("const %c0: f32[4, 1000]"), std::string::npos) << text;
  EXPECT_NE(text.find("const %c0: f32[]"), std::string::npos) << text;
}

TEST(CompileFactories, LikeFactoriesFollowDynamicSizes) {
  auto f = compile([](const Tensor& x) { return cat({x, zeros_like(x), empty_like(x) * 0}, 1); });
  for (int64_t batch : {3, 5, 9}) {
    Tensor x = randn({batch, 2});
    mark_dynamic(x, 0);
    EXPECT_EQ(testing::compare_tensors(f(x), cat({x, zeros({batch, 4})}, 1), 0, 0), "") << batch;
  }
  EXPECT_EQ(f.graphs().size(), 1u);
}

}  // namespace
}  // namespace kiln

namespace kiln::testing {
namespace {

// Attention written out as ops compiles, on the CPU, to one attention step (the one-pass
// kernel of eager/cpu_attention.h) in f32, matching the eager ops; with grad, the softmax
// the backward reads is saved and the chain stays ops, and the gradients match eager's.
TEST(CompileAttention, CpuF32AttentionWrittenAsOpsRunsAsOneStep) {
  manual_seed(41);
  auto attend = [](const Tensor& q, const Tensor& k, const Tensor& v) {
    return matmul(softmax(matmul(q, k.transpose(-2, -1)) * 0.125, -1), v);
  };
  Tensor q = randn({2, 4, 70, 64}), k = randn({2, 4, 90, 64}), v = randn({2, 4, 90, 32});
  CompileOptions o;
  o.mode = CompileMode::InProcess;
  o.name = "attention_ops";
  auto f = compile(attend, o);
  std::vector<std::string> launched;
  set_launch_hooks([&](const LaunchInfo& i) { launched.push_back(std::string(i.name)); }, {});
  Tensor got = f(q, k, v);
  set_launch_hooks(nullptr, nullptr);
  EXPECT_EQ(compare_tensors(got, attend(q, k, v), 1e-4, 1e-5), "");
  ASSERT_EQ(launched.size(), 1u) << "one step, no scores kernel: " << launched.size();
  EXPECT_NE(launched[0].find("attention"), std::string::npos) << launched[0];

  Tensor qg = q.detach().requires_grad_(), kg = k.detach().requires_grad_(),
         vg = v.detach().requires_grad_();
  o.name = "attention_ops_grad";
  auto g = compile(attend, o);
  g(qg, kg, vg).sum().backward();
  std::vector<Tensor> compiled{qg.grad(), kg.grad(), vg.grad()};
  Tensor qe = q.detach().requires_grad_(), ke = k.detach().requires_grad_(),
         ve = v.detach().requires_grad_();
  attend(qe, ke, ve).sum().backward();
  EXPECT_EQ(compare_tensors(compiled[0], qe.grad(), 1e-4, 1e-5), "");
  EXPECT_EQ(compare_tensors(compiled[1], ke.grad(), 1e-4, 1e-5), "");
  EXPECT_EQ(compare_tensors(compiled[2], ve.grad(), 1e-4, 1e-5), "");
}

}  // namespace
}  // namespace kiln::testing
