// Generated conformance cases: shapes (broadcast, size-1 dims, empty tensors, odd sizes,
// non-contiguous inputs, dynamic dims) × dtypes × ops, compiled in each compile mode and
// compared with the eager interpreter. One harness for every mode: later modes run it as is.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>

#include "kiln/kiln.h"
#include "support/compare.h"
#include "support/modes.h"

namespace kiln {
namespace {

using Fn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

struct Case {
  std::string name;
  Fn fn;
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  bool transpose_first = false;  // pass input 0 as a transposed (strided) view
  bool dynamic = false;          // mark dim 0 of every input dynamic, then call at another size
};

Tensor make_input(const Shape& shape, DType dtype) {
  if (dtype == DType::bool_) return rand(shape) > 0.5;
  if (!is_floating(dtype)) return floor(rand(shape) * 40.0 - 20.0).to(dtype);
  return (randn(shape) * 2.0).to(dtype);
}

double tolerance(DType d) {
  // Fused code rounds f16/bf16 once where eager rounds after every op.
  switch (d) {
    case DType::f16:
      return 2e-2;
    case DType::bf16:
      return 6e-2;
    case DType::f64:
      return 1e-10;
    case DType::f32:
      return 2e-5;
    default:
      return 0;
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const std::vector<DType> floats{DType::f32, DType::f64, DType::f16, DType::bf16};
  const std::vector<std::pair<Shape, Shape>> broadcasts{
      {{4, 1, 5}, {3, 1}}, {{1}, {6, 2}}, {{2, 3, 4}, {4}}, {{7, 13}, {7, 13}},
      {{0, 3}, {1, 3}},    {{}, {5}},     {{1, 1}, {1, 1}}};
  for (DType d : floats) {
    for (const auto& [a, b] : broadcasts) {
      out.push_back({fmt::format("mix_{}_{}_{}", dtype_name(d), a.size(), b.size()),
                     [](const std::vector<Tensor>& in) {
                       Tensor x = in[0], y = in[1];
                       return std::vector<Tensor>{
                           (where(x > y, sin(x) * y, x - y) + 1.0).exp() / 4.0,
                           maximum(x, y).sigmoid()};
                     },
                     {a, b},
                     {d, d}});
    }
    out.push_back({fmt::format("strided_{}", dtype_name(d)),
                   [](const std::vector<Tensor>& in) {
                     return std::vector<Tensor>{tanh(in[0]) * in[1] - 0.5};
                   },
                   {{7, 5}, {7, 5}},
                   {d, d},
                   true});
    out.push_back({fmt::format("reductions_{}", dtype_name(d)),
                   [](const std::vector<Tensor>& in) {
                     Tensor x = in[0];
                     return std::vector<Tensor>{
                         x.sum({-1}),        x.amax({0}, true),   x.mean(),   softmax(x, 0),
                         log_softmax(x, -1), x.sum({0, 2}, true), x.amin({1})};
                   },
                   {{3, 11, 6}},
                   {d}});
    out.push_back(
        {fmt::format("layer_norm_{}", dtype_name(d)),
         [](const std::vector<Tensor>& in) {
           return std::vector<Tensor>{layer_norm(in[0], {24}, in[1], in[2]), gelu(in[0], "tanh")};
         },
         {{5, 24}, {24}, {24}},
         {d, d, d}});
    out.push_back(
        {fmt::format("dynamic_{}", dtype_name(d)),
         [](const std::vector<Tensor>& in) {
           return std::vector<Tensor>{(in[0] * in[1]).sum({1}), softmax(in[0] + in[1], -1)};
         },
         {{6, 9}, {6, 9}},
         {d, d},
         false,
         true});
  }
  for (DType d : {DType::i32, DType::i64}) {
    out.push_back({fmt::format("int_arith_{}", dtype_name(d)),
                   [](const std::vector<Tensor>& in) {
                     Tensor x = in[0], y = in[1];
                     return std::vector<Tensor>{
                         x * 3 + y - abs(x),       maximum(x, y), x / y,
                         (x > y).logical_not(),    x.sum({1}),    x.amax({-1}),
                         (x * 0.5f).to(DType::f16)};
                   },
                   {{9, 4}, {9, 4}},
                   {d, d}});
  }
  out.push_back({"long_rows_split_across_threads",
                 [](const std::vector<Tensor>& in) {
                   Tensor x = in[0];
                   return std::vector<Tensor>{x.sum(), x.amax(), softmax(x, 0),
                                              x.prod(0) * 0 + (x * x).mean()};
                 },
                 {{1 << 17}},
                 {DType::f32}});
  out.push_back({"casts",
                 [](const std::vector<Tensor>& in) {
                   Tensor x = in[0] * 100.0f;
                   return std::vector<Tensor>{x.to(DType::i32),    x.to(DType::bf16),
                                              x.to(DType::f16),    x.to(DType::bool_),
                                              clamp(x, -5.0, 5.5), in[1].to(DType::f32) + 1};
                 },
                 {{4, 5}, {4, 5}},
                 {DType::f32, DType::bool_}});
  return out;
}

class Generated : public ::testing::TestWithParam<testing::ModeConfig> {};

// On the cuda suite the compiled function runs on GPU copies of the inputs and is checked
// against the eager interpreter on the CPU: the reference kernels stay the oracle.
TEST_P(Generated, CompiledMatchesEager) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  testing::ModeRun run(GetParam());
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    manual_seed(11);
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < c.shapes.size(); ++i) {
      Shape shape = c.shapes[i];
      if (c.transpose_first && i == 0) std::reverse(shape.begin(), shape.end());
      Tensor t = make_input(shape, c.dtypes[i]);
      inputs.push_back(c.transpose_first && i == 0 ? t.t() : t);
    }
    CompileOptions options = GetParam().options(c.name);
    auto f = compile([&c](std::vector<Tensor> in) { return c.fn(in); }, options);
    std::vector<std::vector<Tensor>> calls{inputs};
    if (c.dynamic) {
      for (const Tensor& t : inputs) mark_dynamic(t, 0);
      std::vector<Tensor> other;
      for (size_t i = 0; i < c.shapes.size(); ++i) {
        Shape shape = c.shapes[i];
        shape[0] = 13;
        other.push_back(make_input(shape, c.dtypes[i]));
      }
      calls.push_back(other);
    }
    for (const auto& call : calls) {
      std::vector<Tensor> want = c.fn(call), got = f(testing::on_test_device(call));
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        double tol = tolerance(want[i].dtype());
        EXPECT_EQ(testing::compare_tensors(got[i], want[i], tol, tol), "") << "output " << i;
      }
    }
    if (c.dynamic) {
      EXPECT_EQ(f.graphs().size(), 1u) << "a dynamic dim must not re-trace";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, Generated, ::testing::ValuesIn(testing::all_mode_configs()),
                         testing::mode_config_name);

}  // namespace
}  // namespace kiln
