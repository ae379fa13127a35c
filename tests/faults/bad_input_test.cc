// Bad input: each is a kiln::Error whose message names the op, the shapes and what is wrong;
// none crashes.
#include <gtest/gtest.h>

#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/kiln.h"
#include "support/compare.h"

namespace kiln {
namespace {

using testing::error_of;

TEST(BadInput, ShapeMismatchNamesOpAndShapes) {
  EXPECT_EQ(error_of([] {
              zeros({2, 3}) + zeros({4, 3});
            }),
            "add: cannot broadcast shapes [2, 3] and [4, 3] (dim 0: 2 vs 4)");
  EXPECT_EQ(error_of([] {
              matmul(zeros({2, 3}), zeros({4, 5}));
            }),
            "matmul(f32[2, 3], f32[4, 5]): contraction sizes differ (3 vs 4)");
  EXPECT_EQ(error_of([] {
              zeros({2, 3}).reshape({4, 2});
            }),
            "reshape(f32[2, 3]): cannot reshape to [4, 2]: element counts differ");
  EXPECT_EQ(error_of([] {
              zeros({2, 3}).sum({2});
            }),
            "sum: dim 2 is out of range for a tensor of 2 dims (expected -2..1)");
  EXPECT_EQ(error_of([] {
              cat({zeros({2, 3}), zeros({2, 4})}, 0);
            }),
            "cat(f32[2, 3], f32[2, 4]): input 1 differs from input 0 in dim 1");
}

TEST(BadInput, WrongDtypes) {
  EXPECT_EQ(
      error_of([] {
        matmul(zeros({2, 2}), zeros({2, 2}, DType::f64));
      }),
      "matmul(f32[2, 2], f64[2, 2]): operands must have the same dtype (cast one with .to())");
  EXPECT_EQ(error_of([] { softmax(zeros({2}, DType::i32), 0); }),
            "softmax(i32[2]): needs a floating input (softmax of integers); cast with .to(f32)");
  EXPECT_EQ(error_of([] { where(zeros({2}), zeros({2}), zeros({2})); }),
            "where(f32[2], f32[2], f32[2]): condition must be a bool tensor");
}

TEST(BadInput, CompiledFunctionGivenAWrongDtypeOrShape) {
  Tensor w = randn({4, 3});
  auto f = compile([&](Tensor x) { return matmul(x, w); });
  f(randn({2, 4}));
  EXPECT_EQ(
      error_of([&] {
        f(randn({2, 4}, DType::f64));
      }),
      "matmul(f64[2, 4], f32[4, 3]): operands must have the same dtype (cast one with .to())");
  EXPECT_EQ(error_of([&] {
              f(randn({2, 5}));
            }),
            "matmul(f32[2, 5], f32[4, 3]): contraction sizes differ (5 vs 4)");
  EXPECT_EQ(error_of([&] { f(Tensor()); }), "compile: argument tensor 0 is undefined");
}

TEST(BadInput, IndicesOutOfRange) {
  Tensor table = randn({10, 4});
  EXPECT_EQ(error_of([&] {
              embedding(from_vector({3, 12}, {2}, DType::i64), table);
            }),
            "embedding: index 12 is out of bounds for a dim of size 10");
  EXPECT_EQ(error_of([&] { index_select(table, 0, from_vector({-11}, {1}, DType::i64)); }),
            "index_select: index -11 is out of bounds for a dim of size 10");
  EXPECT_EQ(error_of([&] {
              table.at({10, 0});
            }),
            "at(): index [10, 0] is out of bounds for shape [10, 4]");
}

TEST(BadInput, IntegerDivisionByZeroIsAnErrorNotASignal) {
  Tensor a = arange(4, DType::i32), z = zeros({4}, DType::i32);
  EXPECT_EQ(error_of([&] { fmod(a, z); }), "fmod: integer division by zero (divisor of shape [4])");
  EXPECT_EQ(error_of([&] { remainder(a, 0); }),
            "remainder: integer division by zero (divisor of shape [])");
  EXPECT_EQ((a / z).dtype(), DType::f32);  // true division: inf and nan, as PyTorch
  Tensor min = full({1}, std::numeric_limits<int32_t>::min(), DType::i32);
  EXPECT_EQ(fmod(min, -1).at({0}), 0);  // INT_MIN % -1 would trap in C++
  EXPECT_EQ(error_of([&] { pow(a, -1); }),
            "pow: integers to negative integer powers are not allowed");
}

TEST(BadInput, MaxOfAnEmptyDimIsAnErrorEagerAndCompiled) {
  const char* message = "amax(f32[0, 3]): cannot reduce over dim 0 of size 0";
  EXPECT_EQ(error_of([] { zeros({0, 3}).amax({0}); }), message);
  auto f = compile([](Tensor x) { return x.amax({0}); });
  EXPECT_EQ(error_of([&] { f(zeros({0, 3})); }), message);
  EXPECT_EQ(zeros({0, 3}).sum({0}).at({1}), 0.0);  // a sum of nothing is 0
}

TEST(BadInput, UndefinedTensors) {
  EXPECT_EQ(error_of([] { Tensor() + 1; }),
            "add: an input tensor is undefined (default-constructed)");
  EXPECT_EQ(error_of([] { Tensor().sizes(); }), "use of an undefined (default-constructed) tensor");
}

// A size symbol that no input's shape binds is refused before anything compiles (it
// reached gcc as "'s0' undeclared").
TEST(BadInput, SizeSymbolsNoInputBindsAreRefused) {
  Graph g = parse_graph("graph g(%x: f32[s0]) {\n  %0 = neg(%x)\n  return %0\n}\n", "g");
  g.inputs[0].type.shape = {Dim::constant(4)};
  EXPECT_EQ(error_of([&] { verify_graph(g); }),
            "graph g: node %0 (neg) uses size symbol s0, which no input's shape binds");
}

// Graphs past kiln's counts are refused naming the limit.
TEST(BadInput, GraphCountsHaveLimits) {
  Graph g = parse_graph("graph g(%x: f32[2]) {\n  %0 = neg(%x)\n  return %0\n}\n", "g");
  g.outputs.assign(70000, g.outputs[0]);
  EXPECT_EQ(error_of([&] { verify_graph(g); }), "graph g: 70000 outputs; kiln's limit is 65536");
}

}  // namespace
}  // namespace kiln
