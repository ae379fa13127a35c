// Toolchains compile real C with real compilers; a bad kernel is a CompileError that names
// the kernel and carries the compiler's diagnostics.
#include <gtest/gtest.h>

#include "compile/shared_object.h"
#include "compile/toolchain.h"
#include "kiln/error.h"

namespace kiln {
namespace {

const char* kGood =
    "#include <stdint.h>\nvoid twice(int64_t n, float* x) { for (int64_t i = 0; i < n; ++i) x[i] "
    "*= 2; }\n";

TEST(Toolchain, EachTierBuildsLoadableCode) {
  for (Tier tier : {Tier::fast, Tier::optimized}) {
    Toolchain t = toolchain_for(tier);
    EXPECT_FALSE(t.version.empty()) << t.name;
    EXPECT_NE(t.identity().find(t.name), std::string::npos);
    std::string so = compile_object(t, tier == Tier::fast ? "good_fast" : "good_opt", kGood);
    auto lib = SharedObject::load_bytes(so, "good");
    auto fn = reinterpret_cast<void (*)(int64_t, float*)>(lib->symbol("twice"));
    float data[3] = {1, 2, 3};
    fn(3, data);
    EXPECT_EQ(data[2], 6.0f);
    EXPECT_THROW(lib->symbol("missing"), Error);
  }
  EXPECT_NE(toolchain_for(Tier::optimized).identity(), toolchain_for(Tier::fast).identity());
}

TEST(Toolchain, BadSourceIsACompileErrorWithDiagnostics) {
  for (Tier tier : {Tier::fast, Tier::optimized}) {
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

}  // namespace
}  // namespace kiln
