// The GEMM template's library arm (IMPL=0) when the library refuses: a oneDNN call that
// answers an error status falls through to the generated tiled loops, so C is the product
// rather than whatever its buffer held. The refusing library is a stand-in (a static
// dnnl_sgemm in the kernel's own translation unit, which its call binds to): the real one
// refuses nothing kiln sends it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "codegen/gemm_template.h"
#include "compile/shared_object.h"
#include "compile/toolchain.h"
#include "kiln/kiln.h"
#include "support/blas.h"
#include "support/compare.h"

namespace kiln::testing {
namespace {

constexpr const char* kRefusingLibrary = R"(#include <stdint.h>
static int refused_calls = 0;
static int dnnl_sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                      float* c, int64_t ldc) {
  (void)ta; (void)tb; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b;
  (void)ldb; (void)beta; (void)c; (void)ldc;
  ++refused_calls;
  return 2;  /* dnnl_invalid_arguments */
}
int refused_call_count(void) { return refused_calls; }
)";

TEST(GemmTemplate, ALibraryCallThatIsRefusedFallsThroughToTheTiledLoops) {
  if (!blas().dnnl_sgemm) GTEST_SKIP() << "the library arm calls OpenBLAS, which has no status";
  manual_seed(31);
  for (bool b_transposed : {false, true}) {
    const int64_t m = 37, n = 70, k = 45;
    const std::string name = b_transposed ? "gemm_refused_bt" : "gemm_refused";
    KernelSource kernel{
        name,
        emit_gemm_template(name, {"37", "70", "45", b_transposed}, 0, cpp_dialect()),
        {{"IMPL", 0}, {"BM", 16}, {"BN", 32}, {"BK", 16}, {"THREADS", 0}, {"VEC", 0}}};
    const std::string source =
        std::string(kRefusingLibrary) + emit_translation_unit({kernel}, cpp_dialect());
    auto object = SharedObject::load_bytes(
        compile_object(toolchain_for(Tier::optimized, "gcc"), name, source), name);
    using Kernel = void (*)(const int64_t*, char* const*);
    auto fn = reinterpret_cast<Kernel>(object->symbol(name));
    auto refused = reinterpret_cast<int (*)()>(object->symbol("refused_call_count"));
    Tensor a = randn({m, k}), b = b_transposed ? randn({n, k}) : randn({k, n});
    Tensor c = full({m, n}, std::numeric_limits<float>::quiet_NaN());
    char* buffers[] = {reinterpret_cast<char*>(c.data<float>()),
                       reinterpret_cast<char*>(a.data<float>()),
                       reinterpret_cast<char*>(b.data<float>())};
    fn(nullptr, buffers);
    EXPECT_EQ(refused(), 1) << "the library arm ran first";
    Tensor want = matmul(a, b_transposed ? b.transpose(0, 1) : b);
    EXPECT_EQ(compare_tensors(c, want, 1e-4, 1e-4), "") << (b_transposed ? "B [N, K]" : "B [K, N]");
  }
}

}  // namespace
}  // namespace kiln::testing
