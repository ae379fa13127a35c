// The BLAS libraries as kiln loads them (support/blas.h): OpenBLAS's kernels named from the
// CPU's features, not from a CPU model a virtual machine may hide; oneDNN serving f32 products
// when it is there, KILN_SGEMM choosing; products through either equal to an f64 loop.
#include "support/blas.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "kiln/kiln.h"
#include "support/compare.h"
#include "support/cpu_features.h"

namespace kiln::testing {
namespace {

TEST(Blas, TheCoreFollowsTheCpusFeatures) {
  EXPECT_EQ(blas_core_for(true, true), "SkylakeX");
  EXPECT_EQ(blas_core_for(false, true), "Haswell");
  EXPECT_EQ(blas_core_for(false, false), "") << "OpenBLAS's own choice";
  if (std::getenv("OPENBLAS_CORETYPE")) GTEST_SKIP() << "the user's choice stands";
  std::vector<int> widths = cpu_vector_widths();
  auto has = [&](int w) { return std::find(widths.begin(), widths.end(), w) != widths.end(); };
  std::string want = blas_core_for(has(512), has(256));
  if (want.empty()) GTEST_SKIP() << "no AVX2: OpenBLAS chooses";
  EXPECT_EQ(blas().core, want);
  EXPECT_EQ(std::getenv("OPENBLAS_CORETYPE"), nullptr) << "the environment is left as it was";
}

TEST(Blas, EagerMatmulThroughTheLoadedLibraryMatchesALoop) {
  Tensor a = randn({37, 53}), b = randn({53, 29});
  Tensor c = matmul(a, b);
  const float* av = a.const_data<float>();
  const float* bv = b.const_data<float>();
  std::vector<float> want(37 * 29, 0.0f);
  for (int i = 0; i < 37; ++i)
    for (int k = 0; k < 53; ++k)
      for (int j = 0; j < 29; ++j) want[i * 29 + j] += av[i * 53 + k] * bv[k * 29 + j];
  EXPECT_EQ(compare_tensors(c, from_vector<float>(want, {37, 29}), 1e-4, 1e-4), "");
}

// Every transpose pair, leading dimensions wider than the rows, against an f64 loop.
TEST(Blas, SgemmMatchesAnF64LoopForEveryTransposeAndLeadingDimension) {
  const int64_t m = 45, n = 31, k = 67, pad = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(fmt::format("{} trans_a {} trans_b {}", blas().sgemm_library, ta, tb));
      const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
      Tensor a = randn({ta ? k : m, lda}), b = randn({tb ? n : k, ldb});
      std::vector<float> c(static_cast<size_t>(m * ldc), -7.0f);
      sgemm(ta, tb, m, n, k, a.const_data<float>(), lda, b.const_data<float>(), ldb, c.data(), ldc);
      const float* av = a.const_data<float>();
      const float* bv = b.const_data<float>();
      double worst = 0;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double want = 0;
          for (int64_t p = 0; p < k; ++p)
            want += double(ta ? av[p * lda + i] : av[i * lda + p]) *
                    double(tb ? bv[j * ldb + p] : bv[p * ldb + j]);
          worst = std::max(worst, std::abs(want - c[static_cast<size_t>(i * ldc + j)]));
        }
      EXPECT_LT(worst, 1e-4);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = n; j < ldc; ++j)
          ASSERT_EQ(c[static_cast<size_t>(i * ldc + j)], -7.0f) << "written past a row";
    }
}

// A weight shared by every batch folds the batches into rows (one product); other layouts
// run a product per batch. Both equal the per-batch products, in f32 and f64.
TEST(Blas, BatchedProductsEqualTheirPerBatchProducts) {
  for (DType dtype : {DType::f32, DType::f64}) {
    Tensor x = randn({4, 6, 8}).to(dtype), w = randn({5, 8}).to(dtype);
    struct Case {
      const char* name;
      Tensor a, b;
    };
    std::vector<Case> cases = {
        {"shared weight, folded", x, w.t()},
        {"shared weight, batches strided", x.transpose(0, 1).contiguous().transpose(0, 1), w.t()},
        {"one row per batch", randn({7, 1, 8}).to(dtype), w.t()},
        {"a weight per batch", x, randn({4, 8, 5}).to(dtype)},
    };
    for (const Case& c : cases) {
      SCOPED_TRACE(fmt::format("{} {}", dtype_name(dtype), c.name));
      Tensor got = matmul(c.a, c.b);
      for (int64_t i = 0; i < c.a.size(0); ++i) {
        Tensor b = c.b.dim() == 3 ? c.b.narrow(0, i, 1).squeeze(0) : c.b;
        EXPECT_EQ(compare_tensors(got.narrow(0, i, 1).squeeze(0),
                                  matmul(c.a.narrow(0, i, 1).squeeze(0), b), 1e-5, 1e-5),
                  "")
            << "batch " << i;
      }
    }
  }
}

// Which library serves f32 products, in a fresh process each (the choice is made once).
// _exit: no exit-time leak check in the child (LeakSanitizer of clang 14 crashes on
// oneDNN's dynamic TLS, which is why the sanitizer run sets KILN_SGEMM=openblas).
void print_sgemm_library(const char* choice) {
  if (choice) setenv("KILN_SGEMM", choice, 1);
  if (!choice) unsetenv("KILN_SGEMM");
  try {
    std::cerr << "serves: " << blas().sgemm_library << std::endl;
  } catch (const Error& e) {
    std::cerr << e.what() << std::endl;
    _exit(1);
  }
  _exit(0);
}

TEST(BlasDeathTest, KilnSgemmChoosesTheLibrary) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  void* dnnl = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
  EXPECT_EXIT(print_sgemm_library("openblas"), ::testing::ExitedWithCode(0), "serves: OpenBLAS");
  EXPECT_EXIT(print_sgemm_library("mkl"), ::testing::ExitedWithCode(1),
              "KILN_SGEMM: 'mkl' is not accepted \\(accepted: openblas, onednn\\)");
  if (!dnnl) {
    EXPECT_EXIT(print_sgemm_library("onednn"), ::testing::ExitedWithCode(1),
                "KILN_SGEMM=onednn: cannot load oneDNN");
    GTEST_SKIP() << "no libdnnl.so.2 here: OpenBLAS serves by default";
  }
  EXPECT_EXIT(print_sgemm_library(nullptr), ::testing::ExitedWithCode(0), "serves: oneDNN");
  EXPECT_EXIT(print_sgemm_library("onednn"), ::testing::ExitedWithCode(0), "serves: oneDNN");
}

}  // namespace
}  // namespace kiln::testing
