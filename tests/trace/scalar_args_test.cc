// Non-tensor arguments of compiled functions: SymFloat parameters, specialized on their first
// value and graph scalars after a change (automatic dynamic), in every mode; what they do
// with tensors of each dtype; what specializes them again. And PyTorch's type promotion of
// 0-d tensors (tests/data/golden_promotion.json), which a graph scalar relies on.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kiln/error.h"
#include "support/compare.h"
#include "support/modes.h"

namespace kiln::testing {
namespace {

int64_t stat(const char* name) { return stats()[name]; }

TEST(SymFloat, ArithmeticOnNumbersIsDoubleArithmetic) {
  SymFloat a = 1.5;
  EXPECT_FALSE(a.is_symbolic());
  EXPECT_EQ(a.maybe_as_double(), std::optional<double>(1.5));
  EXPECT_EQ((a * 2 + 1.0 - a / 3).hint(), 1.5 * 2 + 1.0 - 1.5 / 3);
  EXPECT_EQ((-a).hint(), -1.5);
  EXPECT_EQ(sqrt(a).hint(), std::sqrt(1.5));
  EXPECT_EQ(pow(a, 3.0).hint(), std::pow(1.5, 3.0));
  EXPECT_TRUE(a > 1.0 && a <= 1.5 && a != 2.0 && 2.0 > a);
  EXPECT_EQ(static_cast<double>(a), 1.5);
  // With tensors, a number SymFloat is the Scalar it holds.
  Tensor x = randn({4});
  EXPECT_EQ(compare_tensors(x * a, x * 1.5, 0, 0), "");
  EXPECT_EQ(compare_tensors(a - x, 1.5 - x, 0, 0), "");
  EXPECT_EQ((arange(4, DType::i32) * a).dtype(), DType::f32);
}

// The rule, in every mode: a SymFloat argument is specialized on its first value; the
// first call with another value makes it a graph scalar, and that one graph serves every
// value after, each call equal to eager.
class ScalarArgs : public ::testing::TestWithParam<ModeConfig> {};

TEST_P(ScalarArgs, SymFloatBecomesAGraphScalarAfterAValueChanges) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  Tensor w = randn({8}).to(test_device());
  auto program = [w](const Tensor& x, SymFloat scale, int64_t power) {
    SymFloat shifted = scale * 2.0 - 1.0;
    Tensor y = x.pow(static_cast<double>(power)) * scale + w / shifted;
    Tensor bounded = y.clamp(-scale, scale) + maximum(x, shifted) + (x > scale).to(DType::f32);
    return std::make_tuple(y, bounded, x.masked_fill(x < 0.0, sqrt(scale * scale + 1.0)),
                           full({2, 3}, exp(scale) + pow(scale, 2.0), x.dtype()));
  };
  auto f = compile(program, GetParam().options("symfloat"));
  int64_t traces = stat("trace.graphs"), dynamic = stat("guard.graph_scalars");
  Tensor x = randn({8}).to(test_device());
  for (double scale : {0.5, 0.5, 1.75, -0.25, 3.0, 1e-3, 0.5}) {
    auto [a, b, c, d] = f(x, scale, 2);
    auto [ea, eb, ec, ed] = program(x, scale, 2);
    EXPECT_EQ(compare_tensors(a, ea, 1e-5, 1e-5), "") << scale;
    EXPECT_EQ(compare_tensors(b, eb, 1e-5, 1e-5), "") << scale;
    EXPECT_EQ(compare_tensors(c, ec, 1e-5, 1e-5), "") << scale;
    EXPECT_EQ(compare_tensors(d, ed, 1e-5, 1e-5), "") << scale;
  }
  EXPECT_EQ(stat("trace.graphs") - traces, 2) << "the first value, then one graph for the rest";
  EXPECT_EQ(stat("guard.graph_scalars") - dynamic, 1);
  ASSERT_EQ(f.graphs().size(), 2u);
  EXPECT_EQ(f.graphs()[0].find("f64[]"), std::string::npos) << "specialized: " << f.graphs()[0];
  EXPECT_NE(f.graphs()[1].find("%in1: f64[]"), std::string::npos) << f.graphs()[1];
  // The int argument stays specialized: a new power traces again, the scale still a graph
  // scalar of the new trace.
  auto [a, b, c, d] = f(x, 0.75, 3);
  EXPECT_EQ(compare_tensors(a, std::get<0>(program(x, 0.75, 3)), 1e-5, 1e-5), "");
  ASSERT_EQ(f.graphs().size(), 3u);
  EXPECT_NE(f.graphs()[2].find("%in1: f64[]"), std::string::npos) << f.graphs()[2];
  (void)f(x, -2.0, 3);
  EXPECT_EQ(f.graphs().size(), 3u);
  EXPECT_TRUE(f.wait_for_stages(120));  // background stages land before the cache goes
}

// An optimizer step with a learning rate that changes every step (a schedule): one graph
// after the first change, parameters updated in place as eagerly.
TEST_P(ScalarArgs, InPlaceUpdatesTakeAGraphScalar) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  Tensor param = randn({16}).to(test_device()), momentum = zeros({16}).to(test_device());
  Tensor eager_param = param.clone(), eager_momentum = momentum.clone();
  auto step = [](const Tensor& p, const Tensor& m, const Tensor& grad, SymFloat lr) {
    m.mul_(SymFloat(0.9)).add_(grad);
    p.sub_(m, lr);
    p *= (1.0 - lr * 0.01);  // decoupled weight decay
    return p.sum();
  };
  auto f = compile(step, GetParam().options("sgd_step"));
  for (int i = 0; i < 6; ++i) {
    double lr = 0.1 / (1 + i);
    Tensor grad = randn({16}).to(test_device());
    Tensor total = f(param, momentum, grad, lr);
    Tensor eager_total = step(eager_param, eager_momentum, grad, lr);
    EXPECT_EQ(compare_tensors(param, eager_param, 1e-5, 1e-5), "") << i;
    EXPECT_EQ(compare_tensors(momentum, eager_momentum, 1e-5, 1e-5), "") << i;
    EXPECT_EQ(compare_tensors(total, eager_total, 1e-4, 1e-4), "") << i;
  }
  EXPECT_EQ(f.graphs().size(), 2u);
  EXPECT_TRUE(f.wait_for_stages(120));
}

INSTANTIATE_TEST_SUITE_P(Modes, ScalarArgs, ::testing::ValuesIn(all_mode_configs()),
                         mode_config_name);

// A graph scalar acts as a number with a tensor: it keeps a floating tensor's dtype (a 0-d
// one's too) and makes an integer or bool tensor's result f32, as the specialized value does.
TEST(ScalarArgs, AGraphScalarPromotesAsANumber) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  for (DType dtype :
       {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::bool_}) {
    for (const Shape& shape : {Shape{5}, Shape{}}) {
      auto f = compile([](const Tensor& x, SymFloat s) { return x * s; });
      Tensor x = (randn(shape) * 4).to(dtype).to(test_device());
      for (double s : {0.5, -1.25, 3.0}) {  // specialized, then a graph scalar
        Tensor got = f(x, s), expected = x * s;
        EXPECT_EQ(got.dtype(), expected.dtype()) << dtype_name(dtype) << " " << s;
        double tol = default_tolerance(expected.dtype());
        EXPECT_EQ(compare_tensors(got, expected, tol, tol), "") << dtype_name(dtype) << " " << s;
      }
    }
  }
}

// What needs a SymFloat's value specializes it: a branch on it traces once per value again,
// each correct. A `double` parameter (opaque to the tracer) and a generic lambda's `auto`
// parameter stay specialized; a function pointer's SymFloat parameter becomes dynamic.
TEST(ScalarArgs, WhatNeedsTheValueSpecializes) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  auto branchy = [](const Tensor& x, SymFloat s) { return s > 1.0 ? x * s : x - s; };
  auto f = compile(branchy);
  Tensor x = randn({6}).to(test_device());
  for (double s : {0.5, 2.0, 3.0, 0.25})
    EXPECT_EQ(compare_tensors(f(x, s), branchy(x, s), 1e-6, 1e-6), "") << s;
  EXPECT_EQ(f.graphs().size(), 4u) << "the comparison guards each value";

  auto generic = compile([](const Tensor& t, auto s) { return t * s; });
  for (double s : {0.5, 2.0, 3.0}) EXPECT_EQ(compare_tensors(generic(x, s), x * s, 0, 0), "");
  EXPECT_EQ(generic.graphs().size(), 3u);

  Tensor (*pointer)(const Tensor&, SymFloat) = [](const Tensor& t, SymFloat s) { return t / s; };
  auto by_pointer = compile(pointer);
  for (double s : {0.5, 2.0, 3.0})
    EXPECT_EQ(compare_tensors(by_pointer(x, s), x / s, 1e-6, 1e-6), "");
  EXPECT_EQ(by_pointer.graphs().size(), 2u);
}

TEST(ScalarArgs, ASymFloatKeptPastItsTraceIsAnError) {
  SymFloat kept;
  auto f = compile([&kept](const Tensor& x, SymFloat s) {
    kept = s;
    return x * s;
  });
  Tensor x = randn({3});
  (void)f(x, 1.0);
  (void)f(x, 2.0);  // a graph scalar now
  ASSERT_TRUE(kept.is_symbolic());
  EXPECT_NE(error_of([&] { (void)(x * kept); }).find("used outside its trace"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)kept.guard_double(); }).find("used outside its trace"),
            std::string::npos);
}

// PyTorch's answer for binary ops and where() over every pair of dtypes, each operand with
// dims or 0-d: eagerly, and traced into one graph.
TEST(TypePromotion, ZeroDimTensorsRankBelowTensorsWithDims) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  std::ifstream in(data_path("golden_promotion.json"));
  ASSERT_TRUE(in) << data_path("golden_promotion.json");
  nlohmann::json golden = nlohmann::json::parse(in);
  auto dtype_of = [](const std::string& name) {
    for (int d = 0; d < kNumDTypes; ++d)
      if (dtype_name(static_cast<DType>(d)) == name) return static_cast<DType>(d);
    throw Error("unknown dtype " + name);
  };
  auto operand = [&](const std::string& dtype, int rank) {
    Tensor values = dtype == "bool" ? from_vector<int64_t>({1, 0, 1}, {3})
                                    : from_vector<int64_t>({3, 2, 5}, {3});
    Tensor t = values.to(dtype_of(dtype)).to(test_device());
    return rank == 0 ? t.narrow(0, 0, 1).reshape(SymIntList()) : t;
  };
  Tensor cond = from_vector<int64_t>({1, 0, 1}, {3}).to(DType::bool_).to(test_device());
  auto apply = [cond](const std::string& op, const Tensor& a, const Tensor& b) {
    if (op == "add") return a + b;
    if (op == "div") return a / b;
    if (op == "lt") return a < b;
    if (op == "maximum") return maximum(a, b);
    return where(cond, a, b);
  };
  std::vector<Tensor> operands;
  std::vector<std::string> ops, expected, names;
  for (const auto& c : golden["cases"]) {
    operands.push_back(operand(c["a"], c["a_rank"]));
    operands.push_back(operand(c["b"], c["b_rank"]));
    ops.push_back(c["op"]);
    expected.push_back(c["out"]);
    names.push_back(fmt::format("{}({}{}, {}{})", std::string(c["op"]), std::string(c["a"]),
                                c["a_rank"] == 0 ? "[]" : "[3]", std::string(c["b"]),
                                c["b_rank"] == 0 ? "[]" : "[3]"));
  }
  ASSERT_GT(ops.size(), 900u);
  auto all = [&](const std::vector<Tensor>& xs) {
    std::vector<Tensor> out;
    for (size_t i = 0; i < ops.size(); ++i) out.push_back(apply(ops[i], xs[2 * i], xs[2 * i + 1]));
    return out;
  };
  std::vector<Tensor> eager = all(operands);
  std::vector<Tensor> compiled = compile(all)(operands);
  for (size_t i = 0; i < ops.size(); ++i) {
    EXPECT_EQ(dtype_name(eager[i].dtype()), expected[i]) << names[i] << " eagerly";
    EXPECT_EQ(dtype_name(compiled[i].dtype()), expected[i]) << names[i] << " compiled";
    double tol = default_tolerance(eager[i].dtype());
    EXPECT_EQ(compare_tensors(compiled[i], eager[i], tol, tol), "") << names[i];
  }
}

}  // namespace
}  // namespace kiln::testing
