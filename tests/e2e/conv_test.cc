// Convolution, pooling, norms and the shape ops beyond the golden cases
// (tests/autograd/derivatives_test.cc holds PyTorch's values and gradients for each op): a small
// CNN's loss and gradients compiled against eager autograd, half-precision inputs, unbatched
// inputs, and the errors that name the op, the shapes and the arguments.
#include <gtest/gtest.h>

#include <cmath>

#include "support/compare.h"
#include "support/modes.h"

namespace kiln::testing {
namespace {

struct Cnn {
  Tensor w1 = (randn({8, 3, 3, 3}) * 0.3).requires_grad_();
  Tensor b1 = randn({8}).requires_grad_();
  Tensor w2 = (randn({6, 4, 3, 3}) * 0.3).requires_grad_();
  Tensor w3 = (randn({6, 3, 2, 2}) * 0.3).requires_grad_();
  Tensor loss(const Tensor& x) const {
    Tensor h = max_pool2d(relu(conv2d(x, w1, b1, {1}, {1})), {3}, {2}, {1});
    h = avg_pool2d(gelu(conv2d(h, w2, {}, {1}, {1}, {1}, 2)), {2}, {}, {0}, true, false);
    h = conv_transpose2d(h, w3, {}, {2}, {0}, {1});
    return (h * h).mean();
  }
  std::vector<Tensor> params() const { return {w1, b1, w2, w3}; }
};

TEST(Conv, CompiledCnnLossAndGradientsEqualEagerAutograds) {
  ModeRun run(ModeConfig{CompileMode::InProcess, WorkerStart::Subprocess, "inprocess"});
  Cnn model;
  auto f = compile([&model](const Tensor& x) { return model.loss(x); });
  for (int call = 0; call < 2; ++call) {
    Tensor x = randn({2, 3, 11, 10}).requires_grad_();
    Tensor loss = f(x);
    loss.backward();
    std::vector<Tensor> compiled{x.grad()};
    for (const Tensor& p : model.params()) {
      compiled.push_back(p.grad());
      p.set_grad({});
    }
    Tensor x_eager = x.detach().clone().requires_grad_();
    Tensor eager_loss = model.loss(x_eager);
    eager_loss.backward();
    EXPECT_EQ(compare_tensors(loss, eager_loss, 1e-5, 1e-6), "") << call;
    EXPECT_EQ(compare_tensors(compiled[0], x_eager.grad(), 1e-4, 1e-6), "") << call;
    for (size_t i = 0; i < model.params().size(); ++i) {
      EXPECT_EQ(compare_tensors(compiled[i + 1], model.params()[i].grad(), 1e-4, 1e-6), "")
          << call << " parameter " << i;
      model.params()[i].set_grad({});
    }
  }
}

// Without a gradient to give, max pooling is a reduction: compiled, one fused kernel reads
// the windows, and its values equal the gathered first maxima.
TEST(Conv, MaxPoolWithoutAGradientIsAFusedReduction) {
  ModeRun run(ModeConfig{CompileMode::InProcess, WorkerStart::Subprocess, "inprocess"});
  Tensor x = randn({2, 3, 9, 8});
  auto f = compile([](const Tensor& t) { return max_pool2d(relu(t), {3}, {2}, {1}); });
  Tensor got = f(x);
  auto [values, indices] = max_pool2d_with_indices(relu(x), {3}, {2}, {1});
  EXPECT_EQ(compare_tensors(got, values, 0, 0), "");
  EXPECT_EQ(indices.dtype(), DType::i64);
  bool reduction = false;
  for (const KernelInfo& k : f.kernels()) reduction |= k.name.find("amax") != std::string::npos;
  EXPECT_TRUE(reduction) << "the window maximum runs in a generated kernel";
}

// pad compiles to what it is built from (cats and index_selects) and answers as eagerly; bad
// pads name the call.
TEST(Pad, CompiledEqualsEagerAndBadPadsNameTheCall) {
  ModeRun run(ModeConfig{CompileMode::InProcess, WorkerStart::Subprocess, "inprocess"});
  auto fn = [](const Tensor& t) {
    return pad(pad(t, {1, 1}, "reflect") * 2, {0, 0, 2, 1}, "constant", -1.0).relu();
  };
  auto f = compile(fn);
  Tensor x = randn({2, 4, 5});
  EXPECT_EQ(compare_tensors(f(x), fn(x), 1e-6, 1e-6), "");
  EXPECT_EQ(fn(x).sizes(), (Shape{2, 7, 7}));
  EXPECT_EQ(error_of([&] { pad(x, {1}); }),
            "pad(input [2, 4, 5], pad [1], mode \"constant\"): pad must hold a (before, after) "
            "pair per padded dim, last dim first, at most one pair per dim");
  EXPECT_EQ(error_of([&] {
              pad(x, {5, 0}, "reflect");
            }),
            "pad(input [2, 4, 5], pad [5, 0], mode \"reflect\"): dim 2 of size 5 is too short "
            "for pad (5, 0) in this mode");
  EXPECT_EQ(error_of([&] {
              pad(x, {1, 1}, "wrap");
            }),
            "pad(input [2, 4, 5], pad [1, 1], mode \"wrap\"): unknown mode (accepted: "
            "constant, reflect, replicate, circular)");
  EXPECT_EQ(error_of([&] {
              pad(x, {1, 1}, "replicate", 2.0);
            }),
            "pad(input [2, 4, 5], pad [1, 1], mode \"replicate\"): only the constant mode takes "
            "a value");
  EXPECT_EQ(error_of([&] {
              pad(x, {-3, -3});
            }),
            "pad(input [2, 4, 5], pad [-3, -3], mode \"constant\"): dim 2 of size 5 cannot lose "
            "6 elements");
}

// tril, flip and roll compile to what they are built from and answer as eagerly; bad dims name
// the op.
TEST(ShapeOps, CompiledEqualsEagerAndBadDimsNameTheOp) {
  ModeRun run(ModeConfig{CompileMode::InProcess, WorkerStart::Subprocess, "inprocess"});
  auto fn = [](const Tensor& t) { return roll(flip(tril(t, -1) + 1, {1}), {2}, {-1}); };
  auto f = compile(fn);
  Tensor x = randn({3, 5, 6});
  EXPECT_EQ(compare_tensors(f(x), fn(x), 0, 0), "");
  EXPECT_EQ(
      tril(full({2, 2}, std::nan(""), DType::f32)).isnan().to(DType::i64).sum().item<int64_t>(), 3)
      << "the zeroed triangle holds zeros, not x * 0";
  EXPECT_EQ(error_of([&] { flip(x, {0, -3}); }), "flip: dim 0 appears twice in dims [0, -3]");
  EXPECT_EQ(error_of([&] { flip(x, {3}); }), "flip: dim 3 is out of range for input [3, 5, 6]");
  EXPECT_EQ(error_of([&] {
              roll(x, {1, 2}, {0});
            }),
            "roll: shifts [1, 2] and dims [0] must have the same length");
  EXPECT_EQ(error_of([&] { triu(randn({4}), 0); }), "triu: input [4] must have at least 2 dims");
}

// A dynamic batch is one graph: the windows' geometry is static, the batch a size symbol.
TEST(Conv, ADynamicBatchCompilesOnce) {
  ModeRun run(ModeConfig{CompileMode::InProcess, WorkerStart::Subprocess, "inprocess"});
  Tensor w = randn({4, 3, 3, 3}), b = randn({4});
  auto fn = [&](const Tensor& in) {
    return avg_pool2d(max_pool2d(relu(conv2d(in, w, b, {1}, {1})), {2}), {2}, {}, {0}, true);
  };
  auto f = compile(fn);
  for (int64_t n : {2, 5, 3}) {
    Tensor x = randn({n, 3, 9, 9});
    mark_dynamic(x, 0);
    EXPECT_EQ(compare_tensors(f(x), fn(x), 1e-5, 1e-6), "") << n;
  }
  ASSERT_EQ(f.graphs().size(), 1u);
  EXPECT_NE(f.graphs()[0].find("f32[s0, 3, 9, 9]"), std::string::npos) << f.graphs()[0];
}

TEST(Conv, HalfPrecisionAndUnbatchedInputsMatchF32) {
  Tensor x = randn({2, 4, 8, 8}), w = randn({6, 4, 3, 3}) * 0.2, b = randn({6});
  Tensor want = conv2d(x, w, b, {1}, {1});
  for (DType d : {DType::bf16, DType::f16}) {
    Tensor got = conv2d(x.to(d), w.to(d), b.to(d), {1}, {1});
    EXPECT_EQ(got.dtype(), d);
    EXPECT_EQ(compare_tensors(got.to(DType::f32), want, 3e-2, 3e-2), "") << dtype_name(d);
    Tensor pooled = avg_pool2d(x.to(d), {2});
    EXPECT_EQ(compare_tensors(pooled.to(DType::f32), avg_pool2d(x, {2}), 1e-2, 1e-2), "");
  }
  Tensor one = conv2d(x.narrow(0, 1, 1).squeeze(0), w, b, {1}, {1});
  EXPECT_EQ(one.sizes(), (Shape{6, 8, 8}));
  EXPECT_EQ(compare_tensors(one, want.narrow(0, 1, 1).squeeze(0), 1e-5, 1e-6), "");
  EXPECT_EQ(max_pool1d(randn({3, 7}), {2}).sizes(), (Shape{3, 3}));
}

// Training-mode batch_norm updates its running statistics in place, as PyTorch's definition
// says (momentum-weighted; the variance unbiased), eagerly and from a compiled function (a
// mutation of captured tensors, written back after each call); eval mode reads them.
TEST(Norms, BatchNormTrainingUpdatesTheRunningStatisticsEagerAndCompiled) {
  ModeRun run(ModeConfig{CompileMode::InProcess, WorkerStart::Subprocess, "inprocess"});
  Tensor x = randn({4, 3, 5, 2}) * 2 + 1;
  auto expected_after = [&](const Tensor& mean0, const Tensor& var0, int steps) {
    Tensor m = mean0.clone(), v = var0.clone();
    for (int i = 0; i < steps; ++i) {
      m = m * 0.9 + x.mean({0, 2, 3}) * 0.1;
      v = v * 0.9 + x.var({0, 2, 3}, 1) * 0.1;
    }
    return std::pair{m, v};
  };
  Tensor mean = zeros({3}), var = ones({3});
  Tensor y = batch_norm(x, mean, var, {}, {}, true);
  auto [m1, v1] = expected_after(zeros({3}), ones({3}), 1);
  EXPECT_EQ(compare_tensors(mean, m1, 1e-5, 1e-6), "");
  EXPECT_EQ(compare_tensors(var, v1, 1e-5, 1e-6), "");
  EXPECT_EQ(compare_tensors(y.mean({0, 2, 3}), zeros({3}), 1e-5, 1e-5), "");

  Tensor cm = zeros({3}), cv = ones({3});
  auto f = compile([&](const Tensor& in) { return batch_norm(in, cm, cv, {}, {}, true); });
  for (int i = 0; i < 3; ++i) EXPECT_EQ(compare_tensors(f(x), y, 1e-5, 1e-5), "") << i;
  auto [m3, v3] = expected_after(zeros({3}), ones({3}), 3);
  EXPECT_EQ(compare_tensors(cm, m3, 1e-5, 1e-6), "") << "written back after each call";
  EXPECT_EQ(compare_tensors(cv, v3, 1e-5, 1e-6), "");
  Tensor eval = batch_norm(x, cm, cv);
  EXPECT_EQ(compare_tensors(
                eval, (x - cm.reshape({1, 3, 1, 1})) / (cv.reshape({1, 3, 1, 1}) + 1e-5).sqrt(),
                1e-5, 1e-5),
            "");
  EXPECT_EQ(error_of([&] {
              batch_norm(randn({1, 3}), zeros({3}), ones({3}), {}, {}, true);
            }),
            "batch_norm: expected more than 1 value per channel when training, got input [1, 3]");
  EXPECT_EQ(error_of([&] {
              instance_norm(randn({2, 3, 1}));
            }),
            "instance_norm: expected more than 1 spatial element when using the input's "
            "statistics, got input [2, 3, 1]");
  EXPECT_EQ(error_of([&] {
              group_norm(randn({2, 6, 4}), 4);
            }),
            "group_norm: the 6 channels of input [2, 6, 4] are not divisible into 4 groups");
  EXPECT_EQ(error_of([&] {
              batch_norm(randn({2, 3}), zeros({4}), ones({4}));
            }),
            "batch_norm: running_mean [4] must be [3] for input [2, 3]");
}

TEST(Conv, BadArgumentsNameTheOpTheShapesAndTheArgument) {
  Tensor x = randn({1, 3, 8, 8});
  EXPECT_EQ(error_of([&] {
              conv2d(x, randn({4, 2, 3, 3}));
            }),
            "conv2d(input [1, 3, 8, 8], weight [4, 2, 3, 3], groups 1): the input's 3 channels "
            "must be groups x the weight's in_channels / groups (2), and its 4 out_channels a "
            "multiple of groups");
  EXPECT_EQ(error_of([&] {
              conv2d(x, randn({4, 3, 9, 3}));
            }),
            "conv2d(input [1, 3, 8, 8], weight [4, 3, 9, 3], groups 1): spatial dim 0 of size 8 "
            "(padded 8) is smaller than the kernel's span 9 (kernel_size 9, dilation 1)");
  EXPECT_EQ(error_of([&] {
              conv2d(x, randn({4, 3, 3, 3}), {}, {0});
            }),
            "conv2d(input [1, 3, 8, 8], weight [4, 3, 3, 3], groups 1): stride entries must be "
            "in [1, 65536], got 0");
  EXPECT_EQ(error_of([&] {
              conv2d(x, randn({4, 3, 3, 3}), {}, {1, 1, 1});
            }),
            "conv2d: stride [1, 1, 1] has 3 entries, expected 1 or 2");
  EXPECT_EQ(error_of([&] {
              conv2d(x, randn({4, 3, 3, 3}), randn({3}));
            }),
            "conv2d: bias [3] must be [4] (one per output channel)");
  EXPECT_EQ(error_of([&] {
              conv2d(randn({8, 8}), randn({4, 3, 3, 3}));
            }),
            "conv2d: input [8, 8] must be [N, C, *spatial] or [C, *spatial] with 2 spatial dims");
  EXPECT_EQ(error_of([&] {
              conv_transpose2d(x, randn({3, 2, 3, 3}), {}, {2}, {0}, {2});
            }),
            "conv_transpose2d(input [1, 3, 8, 8], weight [3, 2, 3, 3], groups 1): "
            "output_padding [2] must be smaller than the stride or the dilation");
  EXPECT_EQ(error_of([&] { max_pool2d(x, {2}, {}, {2}); }),
            "max_pool2d(input [1, 3, 8, 8], kernel_size [2, 2], stride [2, 2], padding [2, 2]): "
            "padding must be at most half the kernel size");
  EXPECT_EQ(error_of([&] { max_pool2d(x.to(DType::i32), {2}); }),
            "max_pool2d: needs a floating input, got i32; cast with .to(f32)");
  EXPECT_EQ(error_of([&] { avg_pool2d(x, {2}, {}, {0}, false, true, 0); }),
            "avg_pool2d: divisor_override must not be 0");
  EXPECT_EQ(error_of([&] {
              fold(randn({1, 12, 19}), {5, 6}, {2});
            }),
            "col2im(f32[1, 12, 19]): dim 2 must be the 20 windows of output_size");
  // A size from outside is bounded before any arithmetic on it.
  EXPECT_EQ(error_of([&] {
              fold(randn({1, 4, 1}), {int64_t{1} << 62, 1}, {2, 1});
            }),
            "col2im(f32[1, 4, 1]): spatial dim 0 of size 4611686018427387904 is larger than "
            "281474976710656");
}

}  // namespace
}  // namespace kiln::testing
