// load_graph(): a saved graph and its weights run in another program on real inputs, with
// its inputs checked; and `kiln run --inputs --outputs --repeat` on the same files.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/error.h"
#include "support/compare.h"
#include "support/process.h"

namespace kiln::testing {
namespace {

namespace fs = std::filesystem;

class LoadGraph : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("kiln-load-{}-{}", getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(LoadGraph, ASavedGraphRunsWithItsWeights) {
  Tensor w = randn({16, 8}), b = randn({16});
  CompileOptions options;
  options.freeze_captured = true;  // the weights travel in the .safetensors beside the graph
  auto f = compile([&](Tensor x) { return relu(linear(x, w, b)).softmax(-1); }, options);
  Tensor x = randn({4, 8});
  Tensor want = f(x);
  f.save_graph(path("mlp.kiln"));
  LoadedGraph g = load_graph(path("mlp.kiln"));
  EXPECT_EQ(g.input_names(), std::vector<std::string>{"in0"});
  EXPECT_EQ(g.input_types(), std::vector<std::string>{"f32[4, 8]"});
  EXPECT_EQ(g.num_outputs(), 1u);
  for (int call = 0; call < 3; ++call) {
    std::vector<Tensor> got = g({x});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(compare_tensors(got[0], want, 1e-6, 1e-6), "") << call;
  }
  EXPECT_FALSE(g.kernels().empty());
  // Subprocess mode: compiled in workers, the same answer.
  LoadOptions sub;
  sub.compile.mode = CompileMode::Subprocess;
  EXPECT_EQ(compare_tensors(load_graph(path("mlp.kiln"), sub)({x})[0], want, 1e-6, 1e-6), "");
}

TEST_F(LoadGraph, CapturedTensorsAreSavedWithTheirCurrentValues) {
  Tensor w = randn({8, 8});
  auto f = compile([&](Tensor x) { return matmul(x, w).tanh(); });  // w by reference
  Tensor x = randn({2, 8});
  f(x);
  w.mul_(0.5);  // the saved file holds w as it is when saved
  f.save_graph(path("by_ref.kiln"));
  LoadedGraph g = load_graph(path("by_ref.kiln"));
  EXPECT_EQ(g.input_names(), std::vector<std::string>{"in0"});
  EXPECT_EQ(compare_tensors(g({x})[0], matmul(x, w).tanh(), 1e-6, 1e-6), "");
}

TEST_F(LoadGraph, InputsAreChecked) {
  std::ofstream(path("dyn.kiln")) << "graph dyn(%x: f32[s0, 4], %y: f32[s0, 4]) {\n"
                                     "  %0 = add(%x, %y)\n  return %0\n}\n";
  LoadedGraph g = load_graph(path("dyn.kiln"));
  for (int64_t n : {2, 7}) {
    Tensor x = randn({n, 4}), y = randn({n, 4});
    EXPECT_EQ(compare_tensors(g({x, y})[0], x + y, 0, 0), "") << n;
  }
  auto error_of = [&](const std::vector<Tensor>& in) {
    try {
      g(in);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of({randn({2, 4})}), "graph dyn takes 2 inputs (%x, %y), got 1");
  EXPECT_EQ(error_of({randn({2, 4}), randn({2, 4}, DType::f64)}),
            "graph dyn: input %y must be f32[s0, 4], got f64[2, 4] (wrong dtype)");
  EXPECT_EQ(error_of({randn({2, 4}), randn({2, 5})}),
            "graph dyn: input %y must be f32[s0, 4], got f32[2, 5] (dim 1 differs)");
  EXPECT_EQ(error_of({randn({2, 4}), randn({3, 4})}),
            "graph dyn: input %y must be f32[s0, 4], got f32[3, 4] (s0 is 2 elsewhere)");
  std::ofstream(path("weights.kiln")) << "graph w(%x: f32[4]) {\n  const %c0: f32[4]\n"
                                         "  %0 = add(%x, %c0)\n  return %0\n}\n";
  EXPECT_THROW(load_graph(path("weights.kiln")), Error) << "a constant without its values";
}

TEST_F(LoadGraph, CliRunsOnGivenInputsAndWritesOutputs) {
  std::ofstream(path("g.kiln")) << "graph g(%a: f32[s0, 3], %b: f32[3]) {\n"
                                   "  %0 = mul(%a, %b)\n  %1 = sum(%0, dims=[1], keepdim=false)\n"
                                   "  return %0, %1\n}\n";
  Tensor a = randn({5, 3}), b = randn({3});
  save_safetensors(path("in.safetensors"), {{"a", a}, {"b", b}});
  ProcessResult r = run_process(
      {"/usr/bin/env", "KILN_CACHE_DIR=" + path("cache"), KILN_CLI_PATH, "run", path("g.kiln"),
       "--inputs", path("in.safetensors"), "--outputs", path("out.safetensors"), "--repeat", "5"},
      120);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("time per call over 5 calls"), std::string::npos) << r.output;
  TensorMap out = load_safetensors(path("out.safetensors"));
  EXPECT_EQ(compare_tensors(out.at("output0"), a * b, 0, 0), "");
  EXPECT_EQ(compare_tensors(out.at("output1"), (a * b).sum({1}), 1e-6, 1e-6), "");
  save_safetensors(path("bad.safetensors"), {{"a", a}});
  r = run_process({"/usr/bin/env", "KILN_CACHE_DIR=" + path("cache"), KILN_CLI_PATH, "run",
                   path("g.kiln"), "--inputs", path("bad.safetensors")},
                  120);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no tensor named b"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace kiln::testing
