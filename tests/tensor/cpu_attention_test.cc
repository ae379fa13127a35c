// The CPU's one-pass attention (eager/cpu_attention.h) against an f64 loop over the
// definition, softmax(q @ k^T * scale, -1) @ v: blocks of rows and of keys that do not
// divide the sizes, a row max that grows from one key block to the next, strided operands,
// no batch dims, division by the scale, NaN rows and empty sizes; and the row primitives
// (support/row_math.h) it runs on, at every tail length.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "eager/cpu_attention.h"
#include "kiln/kiln.h"
#include "support/compare.h"
#include "support/row_math.h"

namespace kiln::testing {
namespace {

// The definition in f64, over contiguous copies: [..., T, Dv].
Tensor reference(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  const int64_t t = q.size(-2), s = k.size(-2), d = q.size(-1), dv = v.size(-1);
  const int64_t batches = q.numel() / (t * d);
  Shape sizes = q.sizes();
  sizes.back() = dv;
  std::vector<double> out(static_cast<size_t>(batches * t * dv));
  const float *qp = qc.data<float>(), *kp = kc.data<float>(), *vp = vc.data<float>();
  std::vector<double> scores(static_cast<size_t>(s));
  for (int64_t b = 0; b < batches; ++b)
    for (int64_t i = 0; i < t; ++i) {
      double most = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < s; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < d; ++e)
          dot += double(qp[(b * t + i) * d + e]) * double(kp[(b * s + j) * d + e]);
        scores[static_cast<size_t>(j)] = dot * scale;
        most = std::max(most, scores[static_cast<size_t>(j)]);
      }
      double sum = 0;
      for (double& x : scores) sum += (x = std::exp(x - most));
      for (int64_t e = 0; e < dv; ++e) {
        double acc = 0;
        for (int64_t j = 0; j < s; ++j)
          acc += scores[static_cast<size_t>(j)] * double(vp[(b * s + j) * dv + e]);
        out[static_cast<size_t>((b * t + i) * dv + e)] = acc / sum;
      }
    }
  Tensor result = zeros(sizes, DType::f64);
  std::copy(out.begin(), out.end(), result.data<double>());
  return result.to(DType::f32);
}

void expect_matches(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                    const std::string& what) {
  Tensor got = cpu_attention(q, k, v, scale, /*divide=*/false);
  ASSERT_TRUE(got.defined()) << what;
  EXPECT_EQ(compare_tensors(got, reference(q, k, v, scale), 1e-4, 2e-5), "") << what;
}

TEST(CpuAttention, MatchesTheDefinitionAcrossBlocksOfRowsAndKeys) {
  manual_seed(21);
  set_num_threads(2);
  // 300 rows and 1100 keys: partial row blocks and three key blocks, the last partial.
  Tensor q = randn({2, 3, 300, 16}), k = randn({2, 3, 1100, 16}), v = randn({2, 3, 1100, 24});
  expect_matches(q, k, v, 0.25, "2x3 batches, T 300, S 1100");
  expect_matches(randn({5, 8}), randn({7, 8}), randn({7, 3}), 0.35, "no batch dims");
  expect_matches(randn({1, 1, 1, 4}), randn({1, 1, 1, 4}), randn({1, 1, 1, 1}), 1.0, "1x1");
}

TEST(CpuAttention, ARowMaxThatGrowsInALaterKeyBlockRescalesWhatCameBefore) {
  // Keys grow along S, so each key block's scores exceed every earlier block's: the running
  // sum and output are rescaled at every step (exp of the old max would overflow otherwise).
  manual_seed(22);
  Tensor q = randn({2, 70, 8}).abs() + 0.5;
  Tensor ramp = linspace(0.0, 8.0, 1500).reshape({1, 1500, 1});
  Tensor k = (randn({2, 1500, 8}).abs() + 0.5) * ramp, v = randn({2, 1500, 5});
  expect_matches(q, k, v, 1.0, "growing scores");
}

TEST(CpuAttention, ReadsStridedOperandsAndDividesByTheScale) {
  manual_seed(23);
  // Heads split from [B, T, H * D] activations, as a transformer's projections give them.
  Tensor qkv = randn({2, 130, 3 * 4 * 16});
  auto head = [&](int64_t i) {
    return qkv.narrow(-1, i * 64, 64).reshape({2, 130, 4, 16}).transpose(1, 2);
  };
  expect_matches(head(0), head(1), head(2), 0.25, "heads of a [B, T, 3 * H * D] tensor");
  // A last dim with a stride: copied first.
  Tensor kt = randn({2, 16, 90}).transpose(1, 2);  // [2, 90, 16], stride 90 along D
  Tensor q = randn({2, 33, 16}), v = randn({2, 90, 7});
  expect_matches(q, kt, v, 0.5, "k strided along its last dim");
  // Expanded operands: keys repeated along S (rows at stride 0), one batch's values for all.
  expect_matches(q, randn({2, 1, 16}).expand({2, 90, 16}), randn({1, 90, 7}).expand({2, 90, 7}),
                 0.5, "expanded k and v");
  Tensor divided = cpu_attention(q, kt, v, 4.0, /*divide=*/true);
  EXPECT_EQ(compare_tensors(divided, reference(q, kt, v, 0.25), 1e-4, 2e-5), "");
}

TEST(CpuAttention, NaNRowsStayNaNAndEmptySizesGiveWhatTheUnfusedOpsGive) {
  manual_seed(24);
  Tensor q = randn({3, 40, 8}), k = randn({3, 50, 8}), v = randn({3, 50, 4});
  q.data<float>()[(1 * 40 + 7) * 8 + 3] = std::numeric_limits<float>::quiet_NaN();
  Tensor got = cpu_attention(q, k, v, 0.3, false);
  for (int64_t e = 0; e < 4; ++e) EXPECT_TRUE(std::isnan(got.at({1, 7, e}))) << e;
  EXPECT_TRUE(std::isfinite(got.at({1, 8, 0})));
  EXPECT_TRUE(std::isfinite(got.at({0, 7, 0})));
  // No keys: softmax over nothing is 0/0, as matmul/softmax/matmul give.
  Tensor none = cpu_attention(randn({2, 3, 8}), zeros({2, 0, 8}), zeros({2, 0, 4}), 1.0, false);
  ASSERT_EQ(none.sizes(), (Shape{2, 3, 4}));
  EXPECT_TRUE(std::isnan(none.at({1, 2, 3})));
  EXPECT_EQ(cpu_attention(zeros({2, 0, 8}), randn({2, 5, 8}), randn({2, 5, 4}), 1.0, false).sizes(),
            (Shape{2, 0, 4}));
  // Other dtypes are the caller's: the unfused ops serve them.
  EXPECT_FALSE(cpu_attention(randn({2, 3, 8}, DType::f64), randn({2, 5, 8}, DType::f64),
                             randn({2, 5, 4}, DType::f64), 1.0, false)
                   .defined());
}

TEST(RowMath, ExpAndMaxMatchTheScalarLibmAtEveryTailLength) {
  manual_seed(25);
  for (int64_t n = 0; n <= 40; ++n) {
    Tensor x = randn({std::max<int64_t>(n, 1)}) * 4.0f;
    std::vector<float> row(x.data<float>(), x.data<float>() + n), scaled = row;
    float most = scale_and_max(scaled.data(), n, 0.75f);
    float want_most = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(scaled[static_cast<size_t>(i)], row[static_cast<size_t>(i)] * 0.75f);
      want_most = std::max(want_most, row[static_cast<size_t>(i)] * 0.75f);
    }
    EXPECT_EQ(most, want_most) << n;
    float sum = exp_shifted_sum(scaled.data(), n, most);
    double want_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      // Against the exact exp of the same f32 argument: libmvec's 4 ulp.
      const float argument = row[static_cast<size_t>(i)] * 0.75f - most;
      double want = std::exp(double(argument));
      EXPECT_NEAR(scaled[static_cast<size_t>(i)], want, 2.4e-7 * want + 1e-30) << n << " " << i;
      want_sum += want;
    }
    EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum + 1e-30) << n;
  }
}

}  // namespace
}  // namespace kiln::testing
