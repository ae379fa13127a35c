// OpenBLAS as kiln loads it (support/blas.h): its kernels named from the CPU's features,
// not from a CPU model a virtual machine may hide, and the eager matmul through it equal to
// a plain loop.
#include "support/blas.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

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

}  // namespace
}  // namespace kiln::testing
