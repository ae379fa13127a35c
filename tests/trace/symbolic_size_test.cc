// Symbolic sizes (include/kiln/sym_int.h): under mark_dynamic, size() is a SymInt that view,
// reshape, expand and the factories accept, so that one compiled entry serves every batch
// size; where a number is needed, the error names the size and says how to avoid it. And
// the factories in graphs: arange, linspace and eye are graph values, never stored constants.
#include <gtest/gtest.h>

#include <functional>

#include "kiln/error.h"
#include "support/compare.h"
#include "support/modes.h"

namespace kiln::testing {
namespace {

// `what` threw a ShapeError whose message holds every one of `parts`.
void expect_shape_error(const std::function<void()>& what, std::vector<std::string> parts) {
  try {
    what();
    ADD_FAILURE() << "no error; expected one mentioning " << parts[0];
  } catch (const ShapeError& e) {
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << p << " in: " << e.what();
  }
}

TEST(SymInt, ArithmeticOnNumbersIsPlainArithmetic) {
  SymInt a = 6;
  EXPECT_FALSE(a.is_symbolic());
  EXPECT_EQ(a * 2, 12);
  EXPECT_EQ(2 * a, 12);
  EXPECT_EQ(a / 4, 1);
  EXPECT_EQ(a + 1, 7);
  EXPECT_EQ(a - 7, -1);
  EXPECT_TRUE(a > 5 && a <= 6 && a != 5 && 7 > a);
  int64_t plain = a;
  EXPECT_EQ(plain, 6);
  EXPECT_EQ(a.maybe_as_int(), std::optional<int64_t>(6));
  EXPECT_THROW(SymInt(int64_t{1} << 62) * 4, ShapeError);
  EXPECT_THROW(a / 0, ShapeError);
  EXPECT_THROW(SymInt(INT64_MIN) / -1, ShapeError) << "the quotient that overflows";
  EXPECT_THROW(SymInt(INT64_MAX) + 1, ShapeError);
  EXPECT_THROW(SymInt(INT64_MIN) - 1, ShapeError);
  // Outside a trace a tensor's sizes are numbers.
  Tensor x = randn({3, 4});
  EXPECT_FALSE(x.size(0).is_symbolic());
  EXPECT_EQ(x.size(-1) * 2, 8);
  EXPECT_EQ(SymIntList({x.size(0), 4}).to_string(), "[3, 4]");
}

// The user trials of the issue, and the other shape arguments, in every mode: one entry
// serves every batch size, and each call equals eager.
class SymbolicSizes : public ::testing::TestWithParam<ModeConfig> {};

TEST_P(SymbolicSizes, ShapeArgumentsBuiltFromSizesStayDynamic) {
  ModeRun run(GetParam());
  auto program = [](Tensor x) {
    Tensor widened = x.view({x.size(0) * 2, 32});          // [2b, 32]
    Tensor pad = zeros({x.size(0), 2});                    // [b, 2]
    Tensor joined = cat({x, pad}, 1);                      // [b, 66]
    Tensor grid = ones({widened.size(0) / 2, 1, 32}) * 3;  // [b, 1, 32]
    Tensor spread = grid.expand({x.size(0), 4, 32});       // [b, 4, 32]
    Tensor noise = rand({x.size(0), 66});                  // [b, 66], fresh each call
    Tensor back = widened.reshape({x.size(0), -1});        // [b, 64]
    return std::make_tuple(widened.sum({1}), joined + noise * 0, spread.sum({1}), back, noise);
  };
  auto f = compile(program, GetParam().options("sym_sizes"));
  Tensor first = randn({4, 64});
  mark_dynamic(first, 0);
  for (int64_t batch : {4, 7, 1, 16}) {
    Tensor x = batch == 4 ? first : randn({batch, 64});
    auto [a, b, c, d, noise] = f(x);
    auto [ea, eb, ec, ed, enoise] = program(x);
    EXPECT_EQ(compare_tensors(a, ea, 1e-5, 1e-5), "") << batch;
    EXPECT_EQ(compare_tensors(b, eb, 1e-5, 1e-5), "") << batch;
    EXPECT_EQ(compare_tensors(c, ec, 1e-5, 1e-5), "") << batch;
    EXPECT_EQ(compare_tensors(d, ed, 0, 0), "") << batch;
    EXPECT_EQ(noise.sizes(), (Shape{batch, 66}));
  }
  ASSERT_EQ(f.graphs().size(), 1u) << "one entry for every batch size";
  EXPECT_NE(f.graphs()[0].find("reshape(%in0, shape=[2*s0, 32])"), std::string::npos)
      << f.graphs()[0];
}

// Slices with symbolic bounds: a constant table cut to the dynamic length (positional
// embeddings), the halves of a [2*s0] value, and writes through symbolic slices (into a
// traced value and into the argument), one trace for every length, each call equal to
// eager's result and side effects.
TEST_P(SymbolicSizes, SlicesTakeSymbolicBounds) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  Tensor table = randn({32, 8}).to(test_device());
  auto program = [table](Tensor x) {
    const SymInt t = x.size(0);
    Tensor pos = table.narrow(0, 0, t);  // [T, 8] of a [32, 8] table
    Tensor joined = cat({x, x * 3}, 0);  // [2T, 8]
    const SymInt n = joined.size(0) / 2;
    Tensor swapped = cat({joined.narrow(0, n, n), joined.slice(0, 0, n)}, 0);
    joined.narrow(0, n, n).mul_(-1);  // a traced value's second half
    x.slice(0, 0, t).add_(pos);       // the argument, written back
    return std::make_tuple(x + pos, swapped * 1, joined * 1);
  };
  auto f = compile(program, GetParam().options("sym_slices"));
  for (int64_t t : {5, 9, 32}) {
    Tensor x = randn({t, 8}).to(test_device());
    mark_dynamic(x, 0);
    Tensor eager_x = x.clone();
    auto [a, b, c] = f(x);
    auto [ea, eb, ec] = program(eager_x);
    EXPECT_EQ(compare_tensors(a, ea, 1e-6, 1e-6), "") << t;
    EXPECT_EQ(compare_tensors(b, eb, 1e-6, 1e-6), "") << t;
    EXPECT_EQ(compare_tensors(c, ec, 1e-6, 1e-6), "") << t;
    EXPECT_EQ(compare_tensors(x, eager_x, 1e-6, 1e-6), "") << t << ": the write-back";
  }
  ASSERT_EQ(f.graphs().size(), 1u) << "one trace for every length";
  EXPECT_NE(f.graphs()[0].find("slice(%captured0, dim=0, end=[s0], start=0, step=1)"),
            std::string::npos)
      << f.graphs()[0];
  // A length past the table is refused, as eager refuses it.
  Tensor x = randn({33, 8}).to(test_device());
  mark_dynamic(x, 0);
  EXPECT_THROW(f(x), ShapeError);
  // What kiln cannot size is an error that says so, not a fixed size.
  auto g = compile([](Tensor v) { return v.slice(0, 1) * 1; }, GetParam().options("sym_bad"));
  Tensor v = randn({6, 2}).to(test_device());
  mark_dynamic(v, 0);
  try {
    (void)g(v);
    ADD_FAILURE() << "a slice [1, s0) was accepted";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("is not a multiple of one size"), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, SymbolicSizes, ::testing::ValuesIn(all_mode_configs()),
                         mode_config_name);

TEST(SymbolicSizes, BracedListsOfNumbersAndSizesCompile) {
  auto f = compile([](Tensor x) {
    Tensor a = x.view({10, 32});         // numbers
    Tensor b = x.view({x.size(0), 32});  // a size
    Tensor c = x.reshape(x.sizes());     // a Shape
    Tensor d = x.view(x.sym_sizes());    // SymInts
    Shape target{320};
    return a.sum() + b.sum() + c.sum() + d.sum() + x.reshape(target).sum();
  });
  Tensor x = randn({10, 32});
  EXPECT_EQ(compare_tensors(f(x), x.sum() * 5, 1e-4, 1e-4), "");
}

TEST(SymbolicSizes, NeedingTheValueSaysWhichSizeAndWhatToDo) {
  Tensor x = randn({8, 4});
  mark_dynamic(x, 0);
  expect_shape_error(
      [&] {
        compile([](Tensor t) {
          int64_t rows = t.size(0);  // a number of a dynamic size
          return t * static_cast<float>(rows);
        })(x);
      },
      {"size s0 (dim 0 of input 0; 8 while tracing) is dynamic", "SymInt", "mark the dim"});
  expect_shape_error(
      [&] {
        compile([](Tensor t) { return t.size(0) > 4 ? t * 2 : t; })(x);  // a branch
      },
      {"comparing sizes s0", "> 4", "control flow"});
  expect_shape_error(
      [&] { compile([](Tensor t) {
              return zeros({t.size(0) + 1, 4});
            })(x); },
      {"s0 (dim 0 of input 0; 8 while tracing) + 1", "multiples of one dynamic size"});
  expect_shape_error([&] { compile([](Tensor t) {
                             return t.view({t.size(0) / 3, -1});
                           })(x); },
                     {"s0", "/ 3"});
  expect_shape_error([&] { compile([](Tensor t) { return zeros({t.size(0) * t.size(0)}); })(x); },
                     {"s0", "* s0"});
  // The same size compares equal to itself; that answer holds for every value.
  auto same = compile([](Tensor t) { return t.size(0) == t.size(0) ? t * 2 : t; });
  EXPECT_EQ(compare_tensors(same(x), x * 2, 0, 0), "");
}

TEST(SymbolicSizes, ASizeKeptPastItsTraceIsRefused) {
  SymInt kept;
  auto f = compile([&](Tensor t) {
    kept = t.size(0);
    return t + 1;
  });
  Tensor x = randn({5, 3});
  mark_dynamic(x, 0);
  f(x);
  ASSERT_TRUE(kept.is_symbolic());
  expect_shape_error([&] { (void)zeros({kept, 2}); }, {"s0", "dynamic"});
  auto g = compile([&](Tensor t) { return t.view({kept, 3}); });
  Tensor y = randn({5, 3});
  mark_dynamic(y, 0);
  expect_shape_error([&] { g(y); }, {"comes from a trace that has ended"});
}

// Values printed by PyTorch 1.13: torch.linspace(-1, 2, 7), torch.linspace(0, 1, 6),
// torch.linspace(3, -3, 4, dtype=float64), torch.eye(3, 4), torch.arange(2, 11, 3).
TEST(Factories, ArangeLinspaceEyeMatchPyTorch) {
  auto values = [](const Tensor& t) {
    std::vector<double> out;
    Tensor flat = t.reshape({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) out.push_back(flat.at({i}));
    return out;
  };
  EXPECT_EQ(values(linspace(-1, 2, 7)), (std::vector<double>{-1, -0.5, 0, 0.5, 1, 1.5, 2}));
  EXPECT_EQ(values(linspace(0, 1, 6)),
            (std::vector<double>{0.0, 0.20000000298023224, 0.4000000059604645, 0.6000000238418579,
                                 0.800000011920929, 1.0}));
  EXPECT_EQ(values(linspace(3, -3, 4, DType::f64)), (std::vector<double>{3, 1, -1, -3}));
  EXPECT_EQ(linspace(5, 9, 1).at({0}), 5);
  EXPECT_EQ(linspace(5, 9, 0).numel(), 0);
  EXPECT_THROW(linspace(0, 1, -1), Error);
  EXPECT_EQ(values(eye(3, 4)), (std::vector<double>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}));
  EXPECT_EQ(eye(2).sizes(), (Shape{2, 2}));
  EXPECT_EQ(values(arange(2, 11, 3)), (std::vector<double>{2, 5, 8}));
  EXPECT_EQ(arange(2, 11, 3).dtype(), DType::i64);
  EXPECT_THROW(arange(0, 1e300, 1e-300), ShapeError) << "too many elements";
}

class GraphFactories : public ::testing::TestWithParam<ModeConfig> {};

TEST_P(GraphFactories, AreGraphNodesNotStoredConstants) {
  ModeRun run(GetParam());
  auto program = [](Tensor x) {
    Tensor positions = arange(0, 64, 1, DType::f32);             // [64]
    Tensor ramp = linspace(-1, 1, 64);                           // [64]
    Tensor identity = eye(64);                                   // [64, 64]
    return matmul(x * positions + ramp, identity) + arange(64);  // int64 promoted to f32
  };
  auto f = compile(program, GetParam().options("factories"));
  for (int call = 0; call < 2; ++call) {
    Tensor x = randn({3, 64});
    EXPECT_EQ(compare_tensors(f(x), program(x), 1e-5, 1e-5), "") << call;
  }
  ASSERT_EQ(f.graphs().size(), 1u);
  const std::string g = f.graphs()[0];
  EXPECT_NE(g.find("arange("), std::string::npos) << g;
  // Every constant is a 0-d start or fill value: no factory output was stored.
  for (size_t at = g.find("const %"); at != std::string::npos; at = g.find("const %", at + 1)) {
    std::string line = g.substr(at, g.find('\n', at) - at);
    EXPECT_NE(line.find("[]"), std::string::npos) << "a stored constant: " << line;
  }
}

// Position ids and a causal mask from the sequence length, which is dynamic: arange of a
// symbolic size follows it, and the compiled kernels generate both ranges in place.
TEST_P(GraphFactories, ArangeFollowsADynamicLength) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  auto program = [](const Tensor& x) {
    const SymInt t = x.size(1);
    // Factories are made on the CPU; .to(x.device()) moves them eagerly and, while tracing,
    // is the value itself (a traced factory is on the traced function's device already).
    Tensor range = arange(t).to(x.device());
    Tensor pos = range.to(DType::f32);                         // [T]
    Tensor causal = range.unsqueeze(1) >= range.unsqueeze(0);  // [T, T]
    Tensor scores = matmul(x, x.transpose(1, 2)).masked_fill(causal.logical_not(), -1e9);
    return softmax(scores, -1) + pos.unsqueeze(1) * 0.01;
  };
  auto f = compile(program, GetParam().options("dyn_arange"));
  for (int64_t t : {5, 9, 16}) {
    Tensor x = randn({2, t, 8}).to(test_device());
    mark_dynamic(x, 1);
    EXPECT_EQ(compare_tensors(f(x), program(x), 1e-5, 1e-5), "") << "T = " << t;
  }
  EXPECT_EQ(f.graphs().size(), 1u) << "one trace for every length";
  EXPECT_EQ(arange(int64_t{4}).sizes(), (Shape{4}));
  EXPECT_EQ(arange(2.5, DType::f32).sizes(), (Shape{3})) << "a floating end: 0, 1, 2";
}

INSTANTIATE_TEST_SUITE_P(Modes, GraphFactories, ::testing::ValuesIn(all_mode_configs()),
                         mode_config_name);

}  // namespace
}  // namespace kiln::testing
