// Pass tests as text: each tests/passes/cases/*.test names a pass, a graph before it and the
// graph expected after it. The harness checks the printed result against the expected text,
// the pass's `changed` flag, the verifier, and that the graph computes the same outputs as
// before (on random inputs, constants and dynamic sizes, through the interpreter).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "driver/pipeline.h"
#include "eager/interpreter.h"
#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/kiln.h"
#include "passes/passes.h"
#include "support/compare.h"

namespace kiln {
namespace {

const std::map<std::string, PassResult (*)(const Graph&)> kPasses = {
    {"eliminate_dead_nodes", eliminate_dead_nodes},
    {"eliminate_common_subexpressions", eliminate_common_subexpressions},
    {"fold_constants", fold_constants},
    {"simplify_views", simplify_views},
    {"decompose_ops", decompose_ops},
    {"fuse_gemm_epilogues", fuse_gemm_epilogues},
    {"fuse_gemm_activations", fuse_gemm_activations},
    {"fuse_attention", fuse_attention},
    {"fuse_attention_f32", fuse_attention_f32},
};

struct Case {
  std::string pass, before, expected;
};

Case read_case(const std::filesystem::path& path) {
  std::ifstream in(path);
  Case c;
  std::string line, *section = nullptr;
  while (std::getline(in, line)) {
    if (line.rfind("pass: ", 0) == 0)
      c.pass = line.substr(6);
    else if (line == "before:")
      section = &c.before;
    else if (line == "expected:")
      section = &c.expected;
    else if (section)
      *section += line + "\n";
  }
  return c;
}

Tensor sample(const TensorType& type, const std::vector<int64_t>& bindings) {
  Shape shape;
  for (const Dim& d : type.shape) shape.push_back(d.eval(bindings));
  return randn(shape, type.dtype);
}

TEST(Passes, TextCases) {
  std::filesystem::path dir = std::filesystem::path(KILN_TEST_DATA_DIR) / ".." / "passes" / "cases";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".test") continue;
    ++count;
    SCOPED_TRACE(entry.path().filename().string());
    Case c = read_case(entry.path());
    ASSERT_TRUE(kPasses.count(c.pass)) << "unknown pass " << c.pass;
    Graph before = parse_graph(c.before, entry.path().string());
    manual_seed(7);
    for (GraphConstant& k : before.constants) k.value = sample(k.type, {});
    PassResult result = kPasses.at(c.pass)(before);
    verify_graph(result.graph);
    std::string expected = print_graph(parse_graph(c.expected, "expected"));
    EXPECT_EQ(print_graph(result.graph), expected);
    EXPECT_EQ(result.changed, print_graph(before) != expected);
    std::vector<int64_t> bindings(static_cast<size_t>(before.num_symbols), 3);
    std::vector<Tensor> inputs;
    for (const GraphInput& in : before.inputs) inputs.push_back(sample(in.type, bindings));
    std::vector<Tensor> want = interpret(before, inputs), got = interpret(result.graph, inputs);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      double tol = 10 * testing::default_tolerance(want[i].dtype());
      EXPECT_EQ(testing::compare_tensors(got[i], want[i], tol, tol), "") << "output " << i;
    }
  }
  EXPECT_GE(count, 8);
}

// The pipeline's one pass list: device passes are entries of it, run (and logged, and
// verified) through run_pass like the others, for the plans they apply to: f32 attention
// fuses on both devices, f16 on the GPU only (the CPU's one-pass attention is f32's).
TEST(Passes, ThePipelineRunsEachDevicesFusionsForItsPlansOnly) {
  for (const char* dtype : {"f32", "f16"}) {
    const std::string text = fmt::format(
        R"(graph g(%q: {0}[2, 3, 5, 8], %k: {0}[2, 3, 7, 8], %v: {0}[2, 3, 7, 4]) {{
  %0 = permute(%k, dims=[0, 1, 3, 2])
  %1 = matmul(%q, %0)
  %2 = div(%1, 2.0)
  %3 = softmax(%2, dim=-1)
  %4 = matmul(%3, %v)
  return %4
}}
)",
        dtype);
    Graph g = parse_graph(text, "attention");
    setenv("KILN_LOGS", "passes", 1);
    ::testing::internal::CaptureStderr();
    std::string cuda = print_graph(optimize_graph(g, Device::cuda));
    std::string cuda_log = ::testing::internal::GetCapturedStderr();
    ::testing::internal::CaptureStderr();
    std::string cpu = print_graph(optimize_graph(g, Device::cpu));
    std::string cpu_log = ::testing::internal::GetCapturedStderr();
    unsetenv("KILN_LOGS");
    const bool f32 = std::string(dtype) == "f32";
    EXPECT_NE(cuda.find("attention(%q, %k, %v, divide=true, scale=2.0)"), std::string::npos)
        << cuda;
    EXPECT_NE(cuda_log.find("after fuse_attention:"), std::string::npos) << cuda_log;
    EXPECT_EQ(cuda_log.find("fuse_attention_f32"), std::string::npos) << cuda_log;
    EXPECT_EQ(cpu.find("attention(%q, %k, %v, divide=true, scale=2.0)") != std::string::npos, f32)
        << dtype << ":\n"
        << cpu;
    EXPECT_EQ(cpu_log.find("after fuse_attention:"), std::string::npos) << cpu_log;
    EXPECT_EQ(cpu_log.find("after fuse_attention_f32:") != std::string::npos, f32) << cpu_log;
    if (!f32) {
      EXPECT_NE(cpu_log.find("after decompose_ops:"), std::string::npos) << cpu_log;
    }
  }
}

}  // namespace
}  // namespace kiln
