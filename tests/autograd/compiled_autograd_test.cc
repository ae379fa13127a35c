// Compiled autograd (src/driver/compiled_backward.h): a compiled function whose results
// require grad gets a forward graph and a backward graph, both compiled in its mode; the
// results' gradients equal eager autograd's, in every mode; the seed's async test (forward
// and backward each compiled in the background while eager answers); guards on grad mode
// and on what requires grad.
#include <gtest/gtest.h>

#include <chrono>

#include "support/compare.h"
#include "support/modes.h"

namespace kiln::testing {
namespace {

int64_t delta(std::map<std::string, int64_t>& before, const char* name) {
  return stats()[name] - before[name];
}

struct Mlp {
  Tensor w1 = (randn({6, 16}) * 0.3).to(test_device()).requires_grad_();
  Tensor b1 = randn({16}).to(test_device()).requires_grad_();
  Tensor w2 = (randn({16, 3}) * 0.3).to(test_device()).requires_grad_();
  Tensor loss(const Tensor& x, const Tensor& target) const {
    Tensor h = gelu(matmul(x, w1) + b1);
    return mse_loss(matmul(h, w2).softmax(-1), target);
  }
  std::vector<Tensor> params() const { return {w1, b1, w2}; }
};

class CompiledAutograd : public ::testing::TestWithParam<ModeConfig> {};

TEST_P(CompiledAutograd, GradientsEqualEagerAutograds) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  Mlp model;
  auto f = compile([&model](const Tensor& x, const Tensor& t) { return model.loss(x, t); },
                   GetParam().options("mlp_loss"));
  for (int call = 0; call < 3; ++call) {
    Tensor x = randn({8, 6}).to(test_device()).requires_grad_();
    Tensor target = rand({8, 3}).to(test_device());
    Tensor loss = f(x, target);
    EXPECT_EQ(loss.grad_fn_name(), "Mlp_lossBackward");
    loss.backward();
    std::vector<Tensor> compiled_grads{x.grad()};
    for (const Tensor& p : model.params()) {
      compiled_grads.push_back(p.grad());
      p.set_grad({});
    }
    Tensor x_eager = x.detach().clone().requires_grad_();
    Tensor eager_loss = model.loss(x_eager, target);
    eager_loss.backward();
    EXPECT_EQ(compare_tensors(loss, eager_loss, 1e-5, 1e-6), "") << call;
    EXPECT_EQ(compare_tensors(compiled_grads[0], x_eager.grad(), 1e-4, 1e-6), "") << call;
    for (size_t i = 0; i < model.params().size(); ++i) {
      EXPECT_EQ(compare_tensors(compiled_grads[i + 1], model.params()[i].grad(), 1e-4, 1e-6), "")
          << call << " parameter " << i;
      model.params()[i].set_grad({});
    }
  }
  ASSERT_EQ(f.graphs().size(), 1u) << "one forward graph for every call";
  EXPECT_NE(f.graphs()[0].find("graph mlp_loss_forward("), std::string::npos) << f.graphs()[0];
  EXPECT_TRUE(f.wait_for_stages(120));
}

INSTANTIATE_TEST_SUITE_P(Modes, CompiledAutograd, ::testing::ValuesIn(all_mode_configs()),
                         mode_config_name);

Tensor chained_adds(const Tensor& x, const Tensor& y) {
  Tensor t = x;
  for (int i = 0; i < 500; ++i) t = t + y * 0.001f;
  return t;
}

// The seed's test_async: fresh inputs that require grad each iteration, output.sum()
// .backward(). The first is answered eagerly while the forward graph compiles in the
// background, and the backward's compile starts with its first backward(); once both landed,
// each serves compiled code at least for its trial's first call (whether it then takes over is
// measured: promotion by measurement, docs/design.md §5). Every gradient is checked.
TEST(CompiledAutogradAsync, ForwardAndBackwardCompileInTheBackground) {
  if (test_device() != Device::cpu) GTEST_SKIP() << "the CPU suite runs it";
  ModeConfig config{CompileMode::Async, WorkerStart::Subprocess, "async"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile(chained_adds, config.options("adds"));
  auto step = [&] {
    Tensor x = randn({100, 100}).requires_grad_(), y = randn({100, 100}).requires_grad_();
    f(x, y).sum().backward();
    EXPECT_EQ(compare_tensors(x.grad(), ones({100, 100}), 0, 0), "");
    EXPECT_EQ(compare_tensors(y.grad(), full({100, 100}, 0.5f), 1e-5, 1e-5), "");
  };
  step();
  EXPECT_GT(delta(before, "async.eager_runs"), 0);
  ASSERT_TRUE(f.wait_for_stages(120)) << "the background compiles never landed";
  EXPECT_EQ(delta(before, "async.bg_started"), 2);
  EXPECT_EQ(delta(before, "async.bg_finished"), 2);
  const int64_t compiled_before = stats()["async.compiled_runs"];
  for (int i = 0; i < 4; ++i) step();
  EXPECT_GE(stats()["async.compiled_runs"] - compiled_before, 2) << "forward and backward";
  EXPECT_TRUE(f.compile_errors().empty());
}

// The backward graph compiles on the first backward() that runs it: calls made only for
// their values (inputs that require grad, no backward) compile the forward alone.
TEST(CompiledAutogradAsync, TheBackwardCompilesWhenABackwardFirstRunsIt) {
  if (test_device() != Device::cpu) GTEST_SKIP() << "the CPU suite runs it";
  ModeConfig config{CompileMode::Async, WorkerStart::Subprocess, "async"};
  ModeRun run(config);
  auto before = stats();
  auto f = compile(chained_adds, config.options("adds_no_backward"));
  Tensor x = randn({100, 100}).requires_grad_(), y = randn({100, 100}).requires_grad_();
  f(x, y);
  ASSERT_TRUE(f.wait_for_stages(120));
  EXPECT_EQ(f(x, y).grad_fn_name(), "Adds_no_backwardBackward");
  EXPECT_EQ(delta(before, "async.bg_started"), 1) << "the forward's compile only";
  f(x, y).sum().backward();
  EXPECT_EQ(delta(before, "async.bg_started"), 2) << "the backward's compile starts with it";
  EXPECT_TRUE(f.wait_for_stages(120)) << "it waits for the backward's stage too";
  EXPECT_EQ(delta(before, "async.bg_finished"), 2);
  EXPECT_EQ(compare_tensors(x.grad(), ones({100, 100}), 0, 0), "");
  EXPECT_EQ(compare_tensors(y.grad(), full({100, 100}, 0.5f), 1e-5, 1e-5), "");
}

// The min cut on bytes: the forward saves the matrix product (not recomputable), and the
// backward recomputes the elementwise values after it (add, tanh, pow) from it and the
// primal inputs, instead of the forward saving each of them.
TEST(CompiledAutogradPartition, CheapElementwiseValuesAreRecomputedNotSaved) {
  Tensor w = randn({4, 3}).requires_grad_(), b = randn({3}).requires_grad_();
  auto loss = [&](const Tensor& x) { return (matmul(x, w) + b).tanh().pow(2.0).mean(); };
  auto f = compile(loss);
  Tensor x = randn({5, 4});
  f(x).backward();
  Tensor gw = w.grad(), gb = b.grad();
  w.set_grad({});
  b.set_grad({});
  loss(x).backward();
  EXPECT_EQ(compare_tensors(gw, w.grad(), 1e-5, 1e-7), "");
  EXPECT_EQ(compare_tensors(gb, b.grad(), 1e-5, 1e-7), "");
  ASSERT_EQ(f.graphs().size(), 1u);
  const std::string forward = f.graphs()[0];
  EXPECT_NE(forward.find("%0 = matmul(%in0, %captured0)"), std::string::npos) << forward;
  EXPECT_NE(forward.find("return %4, %0\n"), std::string::npos)
      << "the result and the product, nothing else: " << forward;
}

// Dims marked dynamic: kiln cannot compile that backward yet, so with grad mode on the
// function runs eagerly with autograd (and says so), and the gradients are right.
TEST(CompiledAutogradDynamic, RunsEagerlyWithAutogradAndRightGradients) {
  Tensor w = randn({4, 3}).requires_grad_();
  auto loss = [&w](const Tensor& x) { return matmul(x, w).sin().sum(); };
  auto f = compile(loss);
  int64_t eager_before = stats()["compile.eager_for_grad"];
  for (int64_t rows : {5, 9}) {
    Tensor x = randn({rows, 4});
    mark_dynamic(x, 0);
    f(x).backward();
    Tensor g = w.grad();
    w.set_grad({});
    loss(x).backward();
    EXPECT_EQ(compare_tensors(g, w.grad(), 1e-5, 1e-6), "") << rows;
    w.set_grad({});
  }
  EXPECT_EQ(stats()["compile.eager_for_grad"] - eager_before, 2);
}

TEST(CompiledAutogradGuards, GradModeAndRequiresGradAreGuarded) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  Tensor w = randn({4}).to(test_device());
  auto f = compile([&w](const Tensor& x) { return (x * w).sin().sum(); });
  Tensor x = randn({4}).to(test_device());
  EXPECT_FALSE(f(x).requires_grad());
  w.requires_grad_();  // captured: the entry traced without it is dropped
  Tensor loss = f(x);
  ASSERT_TRUE(loss.requires_grad());
  loss.backward();
  EXPECT_EQ(compare_tensors(w.grad(), (x * w.detach()).cos() * x, 1e-5, 1e-6), "");
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(f(x).requires_grad()) << "under NoGradGuard: an entry of its own, no history";
  }
  Tensor xg = x.clone().requires_grad_();
  f(xg).backward();
  EXPECT_EQ(compare_tensors(xg.grad(), (x * w.detach()).cos() * w.detach(), 1e-5, 1e-6), "");
  EXPECT_EQ(f.graphs().size(), 3u) << "w; no_grad mode; w and x (the entry without w dropped)";
  std::string twice = error_of([&] {
    Tensor l = f(xg);
    l.backward();
    l.backward();
  });
  EXPECT_NE(twice.find("a second time"), std::string::npos) << twice;
}

}  // namespace
}  // namespace kiln::testing
