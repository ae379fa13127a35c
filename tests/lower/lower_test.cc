// Lowering tests as text: each tests/lower/cases/*.test holds a graph (before:) and the
// scheduled loop program lower_graph and schedule_program make of it for a device
// ("device: cuda"; cpu unless it says) (expected:, as print_program writes it). The harness
// checks the printed program, that it verifies, and that it is what the emitter is given:
// build_plan runs nothing else between lowering and codegen.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "codegen/c_emitter.h"
#include "graph/text.h"
#include "graph/verify.h"
#include "kiln/error.h"
#include "loop/kernel.h"
#include "lower/lower.h"
#include "lower/schedule.h"

namespace kiln {
namespace {

struct Case {
  std::string before, expected;
  Device device = Device::cpu;
};

Case read_case(const std::filesystem::path& path) {
  std::ifstream in(path);
  Case c;
  std::string line, *section = nullptr;
  while (std::getline(in, line)) {
    if (line == "device: cuda")
      c.device = Device::cuda;
    else if (line == "before:")
      section = &c.before;
    else if (line == "expected:")
      section = &c.expected;
    else if (section)
      *section += line + "\n";
  }
  return c;
}

std::filesystem::path cases_dir() {
  return std::filesystem::path(KILN_TEST_DATA_DIR) / ".." / "lower" / "cases";
}

TEST(Lowering, TextCases) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(cases_dir())) {
    if (entry.path().extension() != ".test") continue;
    ++count;
    SCOPED_TRACE(entry.path().filename().string());
    Case c = read_case(entry.path());
    Graph g = parse_graph(c.before, entry.path().string());
    verify_graph(g);
    Program program = lower_graph(g);
    schedule_program(program, c.device);
    verify_program(program);
    EXPECT_EQ(print_program(program), c.expected);
  }
  EXPECT_GE(count, 5);
}

Program lowered(const std::string& text, Device device = Device::cpu) {
  Program program = lower_graph(parse_graph(text, "case"));
  schedule_program(program, device);
  return program;
}

std::string error_of(const Program& program) {
  try {
    verify_program(program);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kSoftmax = R"(graph g(%x: f32[8, 32]) {
  %0 = amax(%x, dims=[1], keepdim=true)
  %1 = sub(%x, %0)
  %2 = exp(%1)
  %3 = sum(%2, dims=[1], keepdim=true)
  %4 = div(%2, %3)
  return %4
}
)";

// The verifier rejects what the emitter would render wrongly, naming the kernel.
TEST(Lowering, TheVerifierRejectsBrokenPrograms) {
  Program good = lowered(kSoftmax);
  ASSERT_EQ(error_of(good), "(no error)");
  LoopKernel& k = good.kernels.at(0);
  const std::string name = k.name;

  Program bad = good;
  bad.kernels[0].stores[0].param = 1;  // the input
  EXPECT_EQ(error_of(bad), "loop IR: kernel " + name + ": a store into p1, which is not an output");

  bad = good;
  bad.kernels[0].param_dtypes[1] = DType::f64;
  EXPECT_NE(error_of(bad).find("a load of p1 as f32, which holds f64"), std::string::npos)
      << error_of(bad);

  bad = good;
  bad.kernels[0].phases.pop_back();  // the store divides by the sum's accumulator
  EXPECT_NE(error_of(bad).find("accumulator 1 of 1 phases"), std::string::npos) << error_of(bad);

  bad = good;
  bad.kernels[0].stores[0].index = index_add(index_var(2), index_const(1));
  EXPECT_NE(error_of(bad).find("loop variable i2 is not in the domain"), std::string::npos)
      << error_of(bad);

  bad = good;
  bad.kernels[0].stores[0].index = index_sym(0);  // the graph has no size symbols
  EXPECT_NE(error_of(bad).find("size symbol s0 is not the graph's"), std::string::npos)
      << error_of(bad);

  bad = good;
  bad.steps.push_back(Step{Step::Kind::Kernel, 7, -1});
  EXPECT_EQ(error_of(bad), "loop IR: a step launches kernel 7 of 1");
}

// Schedules that do not fit their kernel or device are refused, naming the axis.
TEST(Lowering, TheVerifierRejectsSchedulesThatDoNotFit) {
  Program good = lowered(kSoftmax, Device::cuda);
  ASSERT_EQ(error_of(good), "(no error)");
  const Schedule& s = good.kernels.at(0).schedule;
  ASSERT_TRUE(s.row_per_block);
  ASSERT_EQ(s.held.elements(), 4);  // one run of 4 a thread: 8 of 128 threads hold the row
  ASSERT_FALSE(s.whole_runs);

  Program bad = good;
  bad.kernels[0].schedule.decided = false;
  EXPECT_NE(error_of(bad).find("not scheduled"), std::string::npos) << error_of(bad);

  bad = good;
  bad.device = Device::cpu;
  EXPECT_NE(error_of(bad).find("scheduled for cuda in a cpu program"), std::string::npos)
      << error_of(bad);

  bad = good;
  bad.kernels[0].schedule.block_threads = 100;
  EXPECT_NE(error_of(bad).find("100 threads per block"), std::string::npos) << error_of(bad);

  bad = good;
  bad.kernels[0].schedule.block_threads = 32;
  bad.kernels[0].schedule.held = HeldRow{1, 3};
  EXPECT_NE(error_of(bad).find("held runs of 3 elements in rows of 32"), std::string::npos)
      << error_of(bad);

  bad = good;
  bad.kernels[0].schedule.held = HeldRow{};  // the launch bounds assume a held row
  EXPECT_NE(error_of(bad).find("launch bounds"), std::string::npos) << error_of(bad);

  bad = good;
  bad.kernels[0].schedule.whole_runs = true;
  EXPECT_NE(error_of(bad).find("whole runs in a row they do not divide"), std::string::npos)
      << error_of(bad);

  bad = good;  // softmax's store reads the sum: its row may not be split over blocks
  bad.kernels[0].schedule.held = HeldRow{};
  bad.kernels[0].schedule.min_blocks_per_sm = 0;
  bad.kernels[0].schedule.split_blocks = true;
  EXPECT_NE(error_of(bad).find("split blocks"), std::string::npos) << error_of(bad);

  Program cpu = lowered(kSoftmax);
  ASSERT_EQ(error_of(cpu), "(no error)");
  cpu.kernels[0].schedule.vector_width = 4;
  EXPECT_NE(error_of(cpu).find("GPU axes in a CPU schedule"), std::string::npos) << error_of(cpu);
}

// The emitter prints only what was scheduled, for the device it was scheduled for.
TEST(Lowering, TheEmitterRefusesKernelsNotScheduledForItsDialect) {
  Program cpu = lowered(kSoftmax);
  EXPECT_THROW(emit_kernel(cpu.kernels.at(0), 0, cuda_dialect()), CompileError);
  EXPECT_NO_THROW(emit_kernel(cpu.kernels.at(0), 0, cpp_dialect()));
  Program unscheduled = lower_graph(parse_graph(kSoftmax, "case"));
  EXPECT_THROW(emit_kernel(unscheduled.kernels.at(0), 0, cpp_dialect()), CompileError);
}

// Expressions are built only through checked factories.
TEST(Lowering, ExpressionFactoriesCheckTheirNodes) {
  ExprPtr x = make_load(DType::f32, 1, index_var(0));
  EXPECT_THROW(make_apply(Op::matmul, DType::f32, {}, {x, x}), Error);
  EXPECT_THROW(make_apply(Op::add, DType::f32, {}, {x}),
               Error);  // add needs two operands, or a scalar
  Attrs scalar;
  scalar.set("scalar", 2.0);
  EXPECT_NO_THROW(make_apply(Op::add, DType::f32, scalar, {x}));
  EXPECT_THROW(make_apply(Op::add, DType::f32, scalar, {x, x}), Error);
  EXPECT_THROW(make_load(DType::f32, -1, index_var(0)), Error);
  EXPECT_THROW(make_accumulator(DType::f32, -1), Error);
}

// Indices are compared by structure: equal trees are the same index, whatever their
// pointers; different ones differ even when they evaluate alike.
TEST(Lowering, IndicesCompareStructurally) {
  IndexPtr a = index_add(index_mul(index_var(0), index_const(32)), index_var(1));
  IndexPtr b = index_add(index_mul(index_var(0), index_const(32)), index_var(1));
  EXPECT_NE(a, b);
  EXPECT_TRUE(same_index(a, b));
  EXPECT_EQ(index_hash(a), index_hash(b));
  EXPECT_FALSE(same_index(a, index_add(index_var(1), index_mul(index_var(0), index_const(32)))));
  EXPECT_FALSE(same_index(index_var(0), index_sym(0)));
}

}  // namespace
}  // namespace kiln
