// Toolchains compile real C with real compilers; a bad kernel is a CompileError that names
// the kernel and carries the compiler's diagnostics.
#include <gtest/gtest.h>

#include <algorithm>

#include "compile/shared_object.h"
#include "compile/toolchain.h"
#include "kiln/error.h"
#include "support/cpu_features.h"

namespace kiln {
namespace {

const char* tier_word(Tier tier) {
  return tier == Tier::light ? "light" : tier == Tier::fast ? "fast" : "optimized";
}

const char* kGood =
    "#include <stdint.h>\nvoid twice(int64_t n, float* x) { for (int64_t i = 0; i < n; ++i) x[i] "
    "*= 2; }\n";

TEST(Toolchain, EachTierBuildsLoadableCode) {
  for (Tier tier : {Tier::light, Tier::fast, Tier::optimized}) {
    Toolchain t = toolchain_for(tier);
    EXPECT_FALSE(t.version.empty()) << t.name;
    EXPECT_NE(t.identity().find(t.name), std::string::npos);
    std::string so = compile_object(t, std::string("good_") + tier_word(tier), kGood);
    auto lib = SharedObject::load_bytes(so, "good");
    auto fn = reinterpret_cast<void (*)(int64_t, float*)>(lib->symbol("twice"));
    float data[3] = {1, 2, 3};
    fn(3, data);
    EXPECT_EQ(data[2], 6.0f);
    EXPECT_THROW(lib->symbol("missing"), Error);
  }
  EXPECT_NE(toolchain_for(Tier::optimized).identity(), toolchain_for(Tier::fast).identity());
  EXPECT_NE(toolchain_for(Tier::light).identity(), toolchain_for(Tier::fast).identity());
}

// The gcc tiers ask for the CPU's preferred vector width and vector math; only the fast
// stage's small units go to the light tier.
TEST(Toolchain, GccTiersUseTheHostsVectorWidth) {
  const std::string width = "-mprefer-vector-width=" + std::to_string(preferred_vector_width());
  for (Tier tier : {Tier::fast, Tier::optimized}) {
    const std::vector<std::string>& flags = toolchain_for(tier).flags;
    for (const char* flag : {"-march=native", "-fno-math-errno", "-fopenmp"})
      EXPECT_NE(std::find(flags.begin(), flags.end(), flag), flags.end())
          << tier_word(tier) << flag;
    EXPECT_NE(std::find(flags.begin(), flags.end(), width), flags.end()) << tier_word(tier);
  }
  const std::vector<int> widths = cpu_vector_widths();
  EXPECT_EQ(widths.front(), 128);
  EXPECT_NE(std::find(widths.begin(), widths.end(), preferred_vector_width()), widths.end());
  if (__builtin_cpu_supports("avx2")) {
    EXPECT_GE(preferred_vector_width(), 256);
  }
  Toolchain fast = toolchain_for(Tier::fast);
  EXPECT_EQ(unit_toolchain(fast, true).identity(), toolchain_for(Tier::light).identity());
  EXPECT_EQ(unit_toolchain(fast, false).identity(), fast.identity());
  Toolchain optimized = toolchain_for(Tier::optimized);
  EXPECT_EQ(unit_toolchain(optimized, true).identity(), optimized.identity());
}

TEST(Toolchain, BadSourceIsACompileErrorWithDiagnostics) {
  for (Tier tier : {Tier::light, Tier::fast, Tier::optimized}) {
    try {
      compile_object(toolchain_for(tier), "cpp_poi_fused_broken_0",
                     "void f(void) { undeclared_thing = 1; }\n");
      ADD_FAILURE() << "no error";
    } catch (const CompileError& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("kernel cpp_poi_fused_broken_0 failed to compile"), std::string::npos) << m;
      EXPECT_NE(m.find("undeclared_thing"), std::string::npos) << m;
    }
  }
  EXPECT_THROW(toolchain_for(Tier::optimized, "icc"), CompileError);
}

// A vectorized kernel of the gcc tiers clears the vector registers' upper halves before it
// returns (vzeroupper: C5 F8 77): otherwise the caller's SSE code afterwards runs many times
// slower. gcc leaves it out at -O1 unless asked (toolchain.cc).
TEST(Toolchain, VectorKernelsReturnWithCleanUpperRegisters) {
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "no AVX on this CPU";
  const char* kVector =
      "#include <stdint.h>\nvoid scale(int64_t n, float* restrict x, const float* restrict y) {\n"
      "  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * 3.0f + y[i];\n}\n";
  for (Tier tier : {Tier::fast, Tier::optimized}) {
    std::string so =
        compile_object(toolchain_for(tier), std::string("vec_") + tier_word(tier), kVector);
    EXPECT_NE(so.find("\xc5\xf8\x77"), std::string::npos) << tier_word(tier) << ": no vzeroupper";
  }
}

}  // namespace
}  // namespace kiln
