// Kernels compiled once per distinct body (driver/plan_builder.h, assemble_units): a graph
// of repeated blocks compiles one block's kernels, under every kernel's own name; equal
// bodies under different configs stay apart; equal units of two graphs share one object,
// with every cache off; and the results stay those of eager.
#include <gtest/gtest.h>

#include <set>

#include "compile/toolchain.h"
#include "driver/object_store.h"
#include "driver/plan_builder.h"
#include "kiln/kiln.h"
#include "support/compare.h"
#include "trace/tracer.h"

namespace kiln::testing {
namespace {

// `blocks` times: matmul, sin, softmax, add (a layer of a deep model, repeated).
Tensor repeated_blocks(const Tensor& x, const Tensor& w, int blocks) {
  Tensor h = x;
  for (int i = 0; i < blocks; ++i) h = softmax(matmul(h, w).sin(), -1) + x;
  return h;
}

Graph traced_blocks(const std::string& name, int blocks) {
  Tracer tracer(name, /*freeze_captured=*/false);
  std::vector<Tensor> in = tracer.add_inputs({randn({64, 64}), randn({64, 64})});
  Tensor out;
  {
    RecorderScope scope(&tracer);
    out = repeated_blocks(in[0], in[1], blocks);
  }
  return tracer.finish({out}).graph;
}

TEST(KernelDedup, RepeatedBlocksShareOneFunctionUnderTheirOwnNames) {
  CompiledPlan plan = build_plan(traced_blocks("deep", 12), toolchain_for(Tier::optimized, "gcc"));
  ASSERT_GE(plan.kernels.size(), 12u);
  std::set<std::string> names, symbols;
  for (const KernelLaunch& k : plan.kernels) {
    names.insert(k.name);
    symbols.insert(k.symbol);
  }
  EXPECT_EQ(names.size(), plan.kernels.size()) << "each kernel keeps its own name";
  EXPECT_EQ(symbols.size(), 1u) << "12 equal blocks hold one distinct kernel";
  ASSERT_EQ(plan.units.size(), 1u);
  EXPECT_NE(plan.units[0].source.find(*symbols.begin() + "("), std::string::npos);
  EXPECT_EQ(plan.units[0].source.find(plan.kernels[1].name), std::string::npos)
      << "the unit holds the body once, under its symbol";
}

TEST(KernelDedup, EqualBodiesUnderDifferentConfigsStayApart) {
  const Toolchain toolchain = toolchain_for(Tier::optimized, "gcc");
  CompiledPlan plan = build_plan(traced_blocks("deep", 2), toolchain);
  ASSERT_EQ(plan.kernels.size(), 2u);
  ASSERT_EQ(plan.kernels[0].symbol, plan.kernels[1].symbol);
  KernelConfig other = plan.kernels[1].config;
  other["THREADS"] = 1;
  ASSERT_TRUE(plan.kernels[1].space.admits(other));
  plan.kernels[1].config = other;
  assemble_units(plan, toolchain);
  EXPECT_NE(plan.kernels[0].symbol, plan.kernels[1].symbol);
  size_t functions = 0;
  for (const ObjectUnit& u : plan.units)
    for (const KernelLaunch& k : plan.kernels)
      functions += u.source.find(k.symbol + "(") != std::string::npos;
  EXPECT_EQ(functions, 2u);
}

TEST(KernelDedup, TwoGraphsShareObjectsWithCachesOff) {
  ScopedEnv no_caches("KILN_FORCE_DISABLE_CACHES", "1");
  forget_loaded_objects();
  CompileOptions options;
  options.mode = CompileMode::InProcess;
  Tensor x = randn({64, 64}), w = randn({64, 64});
  const int64_t before = stats()["compile.in_process"];
  options.name = "twelve_blocks";
  auto twelve = compile([&](Tensor a) { return repeated_blocks(a, w, 12); }, options);
  EXPECT_EQ(compare_tensors(twelve(x), repeated_blocks(x, w, 12), 1e-5, 1e-5), "");
  EXPECT_GE(twelve.kernels(0).size(), 12u);
  EXPECT_EQ(stats()["compile.in_process"] - before, 1)
      << "twelve equal blocks (two units apart), one object";
  options.name = "three_blocks";
  auto three = compile([&](Tensor a) { return repeated_blocks(a, w, 3); }, options);
  EXPECT_EQ(compare_tensors(three(x), repeated_blocks(x, w, 3), 1e-5, 1e-5), "");
  EXPECT_EQ(stats()["compile.in_process"] - before, 1) << "another graph, the same object";
}

}  // namespace
}  // namespace kiln::testing
