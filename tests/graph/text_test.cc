// The graph text format: round trips, canonical printing, symbolic dims, and parse errors
// that name file:line:column and what was expected.
#include <gtest/gtest.h>

#include <cmath>

#include "eager/interpreter.h"
#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/kiln.h"

namespace kiln {
namespace {

const char* kPointwise = R"(graph pointwise(%x: f32[s0, 1024], %y: f32[s0, 1024]) {
  %0 = add(%x, %y)
  %1 = sin(%0)
  %2 = cos(%1)
  return %2
}
)";

TEST(GraphText, RoundTripsExactly) {
  Graph g = parse_graph(kPointwise, "pointwise.kiln");
  EXPECT_EQ(print_graph(g), kPointwise);
  EXPECT_EQ(g.num_symbols, 1);
  EXPECT_EQ(type_string(g.nodes[2].type), "f32[s0, 1024]");
}

TEST(GraphText, EveryAttributeKindRoundTrips) {
  const char* text = R"(graph attrs(%x: f32[2, s0, 4], %i: i64[3], %b: bool[2, 1, 4]) {
  const %w: f32[4]
  %0 = sum(%x, dims=[0, -1], keepdim=true)
  %1 = sub(1, %x)
  %2 = mul(%x, 2.5)
  %3 = pow(%x, 2)
  %4 = gelu(%x, approximate="tanh")
  %5 = to(%x, dtype=bf16)
  %6 = reshape(%x, shape=[8, s0])
  %7 = clamp(%x, max=inf, min=-0.5)
  %8 = add(%x, %w)
  %9 = var(%x, correction=0, dims=[1], keepdim=false)
  %10 = where(%b, %x, %8)
  %11 = layer_norm(%x, %w, %w, eps=1e-05, normalized_shape=[4])
  %12 = index_select(%w, %i, dim=0)
  %13 = add(%x, 1e+30)
  return %0, %1, %2, %3, %4, %5, %6, %7, %9, %10, %11, %12, %13
}
)";
  Graph g = parse_graph(text, "attrs.kiln");
  EXPECT_EQ(print_graph(g), text);
  verify_graph(g);
  EXPECT_EQ(type_string(g.nodes[0].type), "f32[1, s0, 1]");
  EXPECT_EQ(type_string(g.nodes[6].type), "f32[8, s0]");
}

TEST(GraphText, PrintingIsCanonical) {
  // Node names and attribute order in the source do not matter; comments are ignored.
  const char* messy = R"(# a comment
graph g(%a: f32[3]) {
  %first = sum(%a, keepdim=false, dims=[0])   # trailing comment
  %second = neg(%first)
  return %second
})";
  EXPECT_EQ(print_graph(parse_graph(messy)), R"(graph g(%a: f32[3]) {
  %0 = sum(%a, dims=[0], keepdim=false)
  %1 = neg(%0)
  return %1
}
)");
}

TEST(GraphText, InterpreterRunsParsedGraphWithDynamicDims) {
  Graph g = parse_graph(kPointwise);
  for (int64_t rows : {1, 7}) {
    Tensor x = randn({rows, 1024}), y = randn({rows, 1024});
    std::vector<Tensor> out = interpret(g, {x, y});
    ASSERT_EQ(out[0].sizes(), (Shape{rows, 1024}));
    EXPECT_NEAR(out[0].at({rows - 1, 5}),
                std::cos(std::sin(float(x.at({rows - 1, 5}) + y.at({rows - 1, 5})))), 1e-6);
  }
  EXPECT_THROW(interpret(g, {randn({2, 1024}), randn({3, 1024})}), Error);  // s0 disagrees
  EXPECT_THROW(interpret(g, {randn({2, 1024})}), Error);                    // arity
  EXPECT_THROW(interpret(g, {randn({2, 1000}), randn({2, 1000})}), Error);  // static dim
}

std::string parse_error(const std::string& text) {
  try {
    parse_graph(text, "bad.kiln");
  } catch (const ParseError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GraphText, ErrorsNameFileLineColumnAndExpectation) {
  EXPECT_EQ(parse_error("grph g() {}"), "bad.kiln:1:1: expected 'graph', found 'grph'");
  EXPECT_EQ(parse_error("graph g(%x: f33[2]) {\n  return %x\n}"),
            "bad.kiln:1:13: unknown dtype 'f33' (expected f32, f64, f16, bf16, i32, i64 or bool)");
  EXPECT_EQ(parse_error("graph g(%x: f32[2]) {\n  %0 = frobnicate(%x)\n  return %0\n}"),
            "bad.kiln:2:8: unknown op 'frobnicate'");
  EXPECT_EQ(parse_error("graph g(%x: f32[2]) {\n  %0 = neg(%y)\n  return %0\n}"),
            "bad.kiln:2:12: value %y is not defined");
  EXPECT_EQ(parse_error("graph g(%x: f32[2]) {\n  %0 = neg(%x\n  return %0\n}"),
            "bad.kiln:3:3: expected ')', found 'return'");
  EXPECT_EQ(parse_error("graph g(%x: f32[2]) {\n  %0 = neg(%x)\n}"),
            "bad.kiln:3:1: expected a return statement before '}', found '}'");
  EXPECT_EQ(parse_error("graph g(%x: f32[2], %x: f32[2]) {\n  return %x\n}"),
            "bad.kiln:1:21: value %x is defined twice");
  EXPECT_EQ(
      parse_error("graph g(%x: f32[2]) {\n  %0 = sum(%x, dims=[0], dims=[0])\n  return %0\n}"),
      "bad.kiln:2:26: attribute 'dims' is given twice");
  EXPECT_EQ(parse_error("graph g(%x: f32[2]) {\n  %0 = neg(%x, 1)\n  return %0\n}"),
            "bad.kiln:2:16: expected a value or name=attribute in neg(), found '1'");
  EXPECT_EQ(parse_error("graph g(%x: f32[2], %y: f32[3]) {\n  %0 = add(%x, %y)\n  return %0\n}"),
            "bad.kiln:2:8: add: cannot broadcast shapes [2] and [3] (dim 0: 2 vs 3)");
  EXPECT_EQ(
      parse_error("graph g(%x: f32[2]) {\n  %0 = gelu(%x, approximate=\"fast\")\n  return %0\n}"),
      "bad.kiln:2:8: gelu(f32[2]): approximate must be \"none\" or \"tanh\", got \"fast\"");
  EXPECT_EQ(parse_error("graph g(%x: f32[2]) {\n  return %x\n} extra"),
            "bad.kiln:3:3: expected end of input after the graph, found 'extra'");
  EXPECT_EQ(parse_error("graph g(%x: f32[q1]) {\n  return %x\n}"),
            "bad.kiln:1:17: expected a size or a size symbol like s0, found 'q1'");
  EXPECT_EQ(parse_error("graph g(%x: f32[2]) {\n  %0 = gelu(%x, approximate=\"fast)\n"),
            "bad.kiln:2:29: unterminated string");
  EXPECT_EQ(parse_error("graph g(%x: f32[99999999999999999999]) {}"),
            "bad.kiln:1:17: integer '99999999999999999999' is out of range");
}

TEST(GraphText, VerifierRejectsBrokenGraphs) {
  Graph g = parse_graph(kPointwise);
  Graph bad = g;
  bad.nodes[1].inputs[0] = g.node_value(2);  // reads a later value
  EXPECT_THROW(verify_graph(bad), Error);
  bad = g;
  bad.nodes[0].type.dtype = DType::f64;  // stored type disagrees with inference
  EXPECT_THROW(verify_graph(bad), Error);
  bad = g;
  bad.inputs[0].name = "0x";  // would collide with node numbering
  EXPECT_THROW(verify_graph(bad), Error);
  bad = g;
  bad.outputs.clear();
  EXPECT_THROW(verify_graph(bad), Error);
  verify_graph(g);
}

}  // namespace
}  // namespace kiln
