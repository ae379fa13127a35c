// Eager autograd's semantics, as libtorch's: leaves accumulate .grad, retain_graph, grad()
// of non-leaves, NoGradGuard and detach, in-place ops on tensors with history, and every
// misuse an Error that names what went wrong (never a wrong gradient).
#include <gtest/gtest.h>

#include "support/compare.h"
#include "tensor/tensor_impl.h"

namespace kiln::testing {
namespace {

Tensor f64(const Shape& shape) { return randn(shape, DType::f64); }

TEST(Autograd, LeavesAccumulateTheirGradient) {
  Tensor w = f64({3, 2}).requires_grad_();
  Tensor x = f64({4, 3});
  EXPECT_TRUE(w.requires_grad() && w.is_leaf());
  EXPECT_FALSE(x.requires_grad());
  Tensor loss = matmul(x, w).relu().sum();
  EXPECT_EQ(loss.grad_fn_name(), "SumBackward");
  EXPECT_FALSE(loss.is_leaf());
  loss.backward({}, true);
  Tensor expected = matmul(x.t(), (matmul(x, w) > 0.0).to(DType::f64));
  EXPECT_EQ(compare_tensors(w.grad(), expected, 1e-12, 1e-12), "");
  EXPECT_FALSE(x.grad().defined()) << "no gradient for a tensor that does not require it";
  loss.backward();  // retained: runs again, and adds
  EXPECT_EQ(compare_tensors(w.grad(), expected * 2, 1e-12, 1e-12), "");
  w.set_grad({});
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, ASecondBackwardWithoutRetainGraphIsAnError) {
  Tensor x = f64({3}).requires_grad_();
  Tensor y = (x.exp() * 2).sum();
  y.backward();
  std::string message = error_of([&] { y.backward(); });
  EXPECT_NE(message.find("a second time"), std::string::npos) << message;
  EXPECT_NE(message.find("retain_graph"), std::string::npos) << message;
}

TEST(Autograd, GradOfNonLeavesAndUnusedInputs) {
  Tensor x = f64({5}).requires_grad_();
  Tensor h = x.sin();
  Tensor y = (h * h).sum();
  std::vector<Tensor> g = kiln::grad({y}, {h, x});
  EXPECT_EQ(compare_tensors(g[0], h.detach() * 2, 1e-12, 1e-12), "");
  EXPECT_EQ(compare_tensors(g[1], (x.detach().sin() * x.detach().cos()) * 2, 1e-12, 1e-12), "");
  EXPECT_FALSE(x.grad().defined()) << "grad() returns, it does not accumulate";
  Tensor unused = f64({2}).requires_grad_();
  Tensor z = (x * 3).sum();
  EXPECT_NE(error_of([&] { kiln::grad({z}, {unused}, {}, true); }).find("not used"),
            std::string::npos);
  EXPECT_FALSE(kiln::grad({z}, {unused}, {}, false, true)[0].defined());
}

TEST(Autograd, NoGradGuardAndDetachRecordNothing) {
  Tensor x = f64({3}).requires_grad_();
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(is_grad_enabled());
    EXPECT_FALSE((x * 2).requires_grad());
    x.sub_(1.0);  // an update of a leaf, as optimizers make
  }
  EXPECT_TRUE(is_grad_enabled());
  EXPECT_FALSE(x.detach().requires_grad());
  EXPECT_EQ(x.detach().impl()->storage, x.impl()->storage) << "detach shares the elements";
  EXPECT_FALSE((x.detach() * 2).requires_grad());
}

TEST(Autograd, InPlaceOpsOnTensorsWithHistory) {
  Tensor x = f64({4}).requires_grad_();
  Tensor y = x * 2;
  y.add_(x);  // y = 3x
  y.mul_(2);  // y = 6x
  EXPECT_EQ(y.grad_fn_name(), "MulBackward");
  y.sum().backward();
  EXPECT_EQ(compare_tensors(x.grad(), full({4}, 6.0, DType::f64), 0, 0), "");
  // A buffer without history takes the history of what is written into it.
  Tensor w = f64({4}).requires_grad_();
  Tensor buffer = zeros({4}, DType::f64);
  buffer.add_(w * w);
  EXPECT_TRUE(buffer.requires_grad());
  buffer.sum().backward();
  EXPECT_EQ(compare_tensors(w.grad(), w.detach() * 2, 1e-12, 1e-12), "");
  // copy_ of a leaf into a buffer: the gradient reaches the leaf.
  Tensor v = f64({4}).requires_grad_();
  Tensor target = zeros({4}, DType::f64);
  target.copy_(v);
  (target * 3).sum().backward();
  EXPECT_EQ(compare_tensors(v.grad(), full({4}, 3.0, DType::f64), 0, 0), "");
}

TEST(Autograd, MisuseIsAnErrorNamingTheOp) {
  Tensor x = f64({3}).requires_grad_();
  std::string leaf = error_of([&] { x.add_(1.0); });
  EXPECT_NE(leaf.find("leaf"), std::string::npos) << leaf;
  EXPECT_NE(leaf.find("NoGradGuard"), std::string::npos) << leaf;

  Tensor y = x.exp();  // exp saves its output
  y.add_(1.0);
  std::string saved = error_of([&] { y.sum().backward(); });
  EXPECT_NE(saved.find("ExpBackward"), std::string::npos) << saved;
  EXPECT_NE(saved.find("modified by an in-place operation"), std::string::npos) << saved;

  Tensor wide = x * 2;
  std::string shape = error_of([&] { wide.backward(); });
  EXPECT_NE(shape.find("scalar output"), std::string::npos) << shape;
  EXPECT_NE(shape.find("[3]"), std::string::npos) << shape;

  std::string none = error_of([&] { f64({2}).sum().backward(); });
  EXPECT_NE(none.find("does not require grad"), std::string::npos) << none;

  std::string integer = error_of([&] { arange(3).requires_grad_(); });
  EXPECT_NE(integer.find("only floating"), std::string::npos) << integer;

  // A view whose storage another view wrote in place: its history no longer describes it.
  Tensor base = x * 1;
  Tensor view = base.narrow(0, 0, 2);
  base.mul_(2);
  std::string stale = error_of([&] { (view * x.narrow(0, 0, 2)).sum().backward(); });
  EXPECT_NE(stale.find("modified in place through another view"), std::string::npos) << stale;
}

TEST(Autograd, IntegerResultsAndNoDerivativeOpsCarryNoGradient) {
  Tensor x = f64({2, 3}).requires_grad_();
  EXPECT_FALSE(x.argmax(1).requires_grad());
  EXPECT_FALSE((x > 0.0).requires_grad());
  Tensor copy = x.clone();
  EXPECT_EQ(copy.grad_fn_name(), "CopyBackward");
  (copy * x).sum().backward();
  EXPECT_EQ(compare_tensors(x.grad(), x.detach() * 2, 1e-12, 1e-12), "");
}

TEST(Autograd, MixedDtypesGetGradientsInTheirOwnDtype) {
  Tensor a = randn({3}).requires_grad_();              // f32
  Tensor b = randn({3}, DType::f64).requires_grad_();  // f64
  (a * b).sum().backward();
  EXPECT_EQ(a.grad().dtype(), DType::f32);
  EXPECT_EQ(b.grad().dtype(), DType::f64);
  EXPECT_EQ(compare_tensors(a.grad(), b.detach().to(DType::f32), 1e-6, 1e-6), "");
}

}  // namespace
}  // namespace kiln::testing
