// Settings from outside (environment variables, CompileOptions::name): a bad value is an
// Error naming the variable and the accepted values, raised where the options are resolved
// (compile()), never a parser error deep in a worker or a setting silently ignored.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "kiln/kiln.h"
#include "support/compare.h"

namespace kiln {
namespace {

using testing::error_of;
using testing::ScopedEnv;

Tensor add_one(Tensor x) { return (x + 1.0f).sin(); }

TEST(Environment, UnknownLogTopicIsRejectedWithTheAcceptedOnes) {
  ScopedEnv env("KILN_LOGS", "passes,bogus");
  std::string error = error_of([] { compile(add_one); });
  EXPECT_NE(error.find("KILN_LOGS: unknown topic 'bogus' in 'passes,bogus'"), std::string::npos)
      << error;
  EXPECT_NE(error.find("graph, guards, passes, lowering, pipeline, output_code, cache, workers, "
                       "autotune, cuda, stages, all"),
            std::string::npos)
      << error;
}

TEST(Environment, KnownLogTopicsAreAccepted) {
  ScopedEnv env("KILN_LOGS", "guards,cache,");
  EXPECT_EQ(error_of([] { compile(add_one)(randn({4})); }), "(no error)");
}

TEST(Environment, TraceSaveInputsTakesZeroOrOne) {
  ScopedEnv env("KILN_TRACE_SAVE_INPUTS", "2");
  EXPECT_EQ(error_of([] { compile(add_one); }),
            "KILN_TRACE_SAVE_INPUTS: '2' is not accepted (accepted: 0, 1)");
}

TEST(Environment, UnknownFaultIsRejected) {
  ScopedEnv env("KILN_INJECT_FAULT", "explode");
  EXPECT_EQ(
      error_of([] { compile(add_one); }),
      "KILN_INJECT_FAULT: 'explode' is not accepted (accepted: compile_error, crash, "
      "benchmark_crash, lowering:OP, slow_stage:fast, slow_stage:optimized, slow_after_trial, "
      "slow_threads)");
}

// lowering:OP for an op decompose_ops rewrites would break nothing: it says so.
TEST(Environment, LoweringFaultOnADecomposedOpSaysItCannot) {
  ScopedEnv env("KILN_INJECT_FAULT", "lowering:softmax");
  CompileOptions o;
  o.mode = CompileMode::InProcess;
  auto f = compile([](Tensor x) { return softmax(x, -1); }, o);
  std::string error = error_of([&] { f(randn({4, 8})); });
  EXPECT_NE(error.find("lowering:softmax cannot be injected: decompose_ops rewrites softmax"),
            std::string::npos)
      << error;
}

TEST(Environment, LoweringFaultNamesTheAcceptedOps) {
  for (const char* value : {"lowering:matmul", "lowering:nosuch"}) {
    ScopedEnv env("KILN_INJECT_FAULT", value);
    CompileOptions o;
    o.mode = CompileMode::InProcess;
    auto f = compile(add_one, o);
    std::string error = error_of([&] { f(randn({4})); });
    EXPECT_NE(error.find(std::string("KILN_INJECT_FAULT: ") + value + " is not accepted"),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("accepted: lowering:OP for OP one of neg, abs, relu"), std::string::npos)
        << error;
    EXPECT_EQ(error.find("gelu,"), std::string::npos)
        << "gelu is decomposed, so not accepted: " << error;
  }
}

// A lowering fault on an accepted op does change the compiled result (the fault is real).
TEST(Environment, LoweringFaultOnAPointwiseOpBreaksItsCode) {
  ScopedEnv env("KILN_INJECT_FAULT", "lowering:sin");
  CompileOptions o;
  o.mode = CompileMode::InProcess;
  Tensor x = randn({64});
  Tensor got = compile(add_one, o)(x);
  EXPECT_NE(testing::compare_tensors(got, add_one(x), 1e-5, 1e-5), "");
}

// Names with characters the graph text cannot carry still compile, in the worker modes
// too (where the graph crosses to a worker as text); they are made identifiers.
TEST(Environment, AnyNameCompilesInEveryMode) {
  Tensor x = randn({32});
  for (CompileMode mode : {CompileMode::InProcess, CompileMode::Subprocess}) {
    CompileOptions o;
    o.mode = mode;
    o.name = "my step 2+1";
    auto f = compile(add_one, o);
    EXPECT_EQ(testing::compare_tensors(f(x), add_one(x), 1e-5, 1e-5), "");
    EXPECT_EQ(f.graphs().at(0).find("my step"), std::string::npos) << f.graphs().at(0);
    EXPECT_NE(f.graphs().at(0).find("my_step_2_1"), std::string::npos) << f.graphs().at(0);
  }
  CompileOptions digit;
  digit.name = "2fast";
  auto g = compile(add_one, digit);
  g(x);
  EXPECT_NE(g.graphs().at(0).find("_2fast"), std::string::npos) << g.graphs().at(0);
}

}  // namespace
}  // namespace kiln
