// Random numbers as graph ops: the generator's statistics (moments and a Kolmogorov-Smirnov
// bound), seeds, and compiled functions that draw fresh numbers at every call, bit-identical
// to eager after manual_seed, in every mode.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "kiln/error.h"
#include "support/compare.h"
#include "support/modes.h"

namespace kiln::testing {
namespace {

std::vector<double> values_of(const Tensor& t) {
  Tensor c = t.cpu().to(DType::f64).contiguous();
  const double* p = c.const_data<double>();
  return std::vector<double>(p, p + c.numel());
}

// The Kolmogorov-Smirnov statistic of `sample` against `cdf`.
template <class Cdf>
double ks_statistic(std::vector<double> sample, Cdf cdf) {
  std::sort(sample.begin(), sample.end());
  double n = static_cast<double>(sample.size()), d = 0;
  for (size_t i = 0; i < sample.size(); ++i) {
    double f = cdf(sample[i]);
    d = std::max({d, f - static_cast<double>(i) / n, static_cast<double>(i + 1) / n - f});
  }
  return d;
}

void check_moments(const Tensor& t, double mean, double var, const std::string& what) {
  std::vector<double> v = values_of(t);
  double n = static_cast<double>(v.size()), m = 0, s = 0;
  for (double x : v) m += x;
  m /= n;
  for (double x : v) s += (x - m) * (x - m);
  s /= n - 1;
  // Five standard errors of the mean and of the variance.
  EXPECT_NEAR(m, mean, 5 * std::sqrt(var / n)) << what;
  EXPECT_NEAR(s, var, 5 * var * std::sqrt(2.0 / n) * 2) << what;
}

TEST(Random, UniformAndNormalHaveTheRightDistributions) {
  manual_seed(1234);
  const int64_t n = 200000;
  // At 1% significance the KS statistic stays below 1.63 / sqrt(n).
  const double bound = 1.63 / std::sqrt(static_cast<double>(n));
  for (DType dtype : {DType::f32, DType::f64}) {
    std::string name(dtype_name(dtype));
    Tensor u = rand({n}, dtype);
    check_moments(u, 0.5, 1.0 / 12, "rand " + name);
    EXPECT_LT(ks_statistic(values_of(u), [](double x) { return std::clamp(x, 0.0, 1.0); }), bound)
        << name;
    std::vector<double> uv = values_of(u);
    EXPECT_GE(*std::min_element(uv.begin(), uv.end()), 0.0);
    EXPECT_LT(*std::max_element(uv.begin(), uv.end()), 1.0);
    Tensor z = randn({n}, dtype);
    check_moments(z, 0.0, 1.0, "randn " + name);
    EXPECT_LT(
        ks_statistic(values_of(z), [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }),
        bound)
        << name;
  }
  Tensor k = randint(-3, 5, {n});
  EXPECT_EQ(k.dtype(), DType::i64);
  std::vector<double> kv = values_of(k);
  EXPECT_EQ(*std::min_element(kv.begin(), kv.end()), -3);
  EXPECT_EQ(*std::max_element(kv.begin(), kv.end()), 4);
  check_moments(k, 0.5, (64.0 - 1) / 12, "randint");
}

TEST(Random, SeedsRepeatAndDrawsDiffer) {
  manual_seed(7);
  Tensor a = rand({64}), b = randn({3, 5});
  manual_seed(7);
  EXPECT_EQ(compare_tensors(rand({64}), a, 0, 0), "");
  EXPECT_EQ(compare_tensors(randn({3, 5}), b, 0, 0), "");
  EXPECT_NE(compare_tensors(rand({64}), a, 0, 0), "") << "the next draw is another";
  manual_seed(8);
  EXPECT_NE(compare_tensors(rand({64}), a, 0, 0), "") << "another seed";
  EXPECT_THROW(rand({4}, DType::i32), Error);
  EXPECT_THROW(randint(3, 3, {4}), Error);
  EXPECT_THROW(randint(INT64_MIN, INT64_MAX, {4}), Error);  // high - low would overflow
  EXPECT_THROW(dropout(a, 1.5), Error);
}

TEST(Random, DropoutZeroesAFractionAndScalesTheRest) {
  manual_seed(3);
  Tensor x = ones({100000});
  Tensor y = dropout(x, 0.3);
  std::vector<double> v = values_of(y);
  double zeros = static_cast<double>(std::count(v.begin(), v.end(), 0.0)) / v.size();
  EXPECT_NEAR(zeros, 0.3, 0.01);
  for (double e : v) ASSERT_TRUE(e == 0.0 || std::abs(e - 1 / 0.7) < 1e-6) << e;
  EXPECT_EQ(dropout(x, 0.3, /*train=*/false).impl(), x.impl());
  Tensor p = full({50000}, 0.25);
  EXPECT_NEAR(bernoulli(p).mean().item<double>(), 0.25, 0.01);
}

// A function drawing several times: dropout, a second rand, randn_like, in-place refills.
Tensor draws(const Tensor& x, const Tensor& noise) {
  Tensor h = dropout(x, 0.4) + rand_like(x) * 0.1;
  noise.normal_(0, 2);
  return h * randn_like(x) + noise + bernoulli(x.abs().clamp(0, 1));
}

class CompiledRandom : public ::testing::TestWithParam<ModeConfig> {};

TEST_P(CompiledRandom, EachCallDrawsFreshNumbersBitIdenticalToEager) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  Tensor x = randn({16, 8}).to(test_device());
  Tensor noise = zeros({16, 8}).to(test_device()), noise_eager = zeros({16, 8}).to(test_device());
  auto f = compile([&](const Tensor& in) { return draws(in, noise); }, GetParam().options("draws"));
  std::vector<Tensor> compiled, eager;
  manual_seed(99);
  for (int i = 0; i < 3; ++i) compiled.push_back(f(x));
  Tensor noise_after = noise.clone();
  manual_seed(99);
  for (int i = 0; i < 3; ++i) eager.push_back(draws(x, noise_eager));
  for (int i = 0; i < 3; ++i) {
    // The draws are bit-identical; what surrounds them may round differently (fused
    // multiply-adds), hence the f32 tolerance.
    EXPECT_EQ(compare_tensors(compiled[i], eager[i], 1e-5, 1e-5), "") << "call " << i;
  }
  EXPECT_EQ(compare_tensors(noise_after, noise_eager, 1e-6, 1e-6), "");
  EXPECT_NE(compare_tensors(compiled[0], compiled[1], 1e-3, 1e-3), "") << "fresh numbers";
  EXPECT_EQ(f.graphs().size(), 1u);
  const std::string text = f.graphs()[0];
  EXPECT_NE(text.find("%rng: i64[2]"), std::string::npos) << text;
  EXPECT_EQ(text.find("const"), std::string::npos) << "no random value became a constant\n" << text;
}

TEST_P(CompiledRandom, DropoutUnderDynamicShapes) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  auto f =
      compile([](const Tensor& in) { return dropout(in, 0.5); }, GetParam().options("dyn_dropout"));
  for (int64_t batch : {4, 7, 12}) {
    Tensor x = randn({batch, 32}).to(test_device());
    mark_dynamic(x, 0);
    manual_seed(static_cast<uint64_t>(batch));
    Tensor got = f(x);
    manual_seed(static_cast<uint64_t>(batch));
    Tensor want = dropout(x, 0.5);
    EXPECT_EQ(compare_tensors(got, want, 0, 0), "") << batch;
  }
  EXPECT_EQ(f.graphs().size(), 1u);
}

// Draws that compiled kernels generate where they are read (no draw is materialized):
// returned raw in every floating dtype, read through a view, fused into dropout, into a
// softmax's row kernel and into a reduction. The draws and the elementwise arithmetic of
// one rounding each are bit-identical to eager; reductions sum in another order.
std::vector<Tensor> fused_draws(const Tensor& x) {
  std::vector<Tensor> out;
  for (DType d : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
    out.push_back(rand_like(x.to(d)));
    out.push_back(randn_like(x.to(d)));
  }
  out.push_back(rand({5, 7}).to(x.device()));  // on the CPU, to() of its own device is itself
  out.push_back(rand_like(x.t()).t() + x);     // a draw read through a permute
  out.push_back(dropout(x, 0.3));
  out.push_back(dropout(softmax(x, 1), 0.1));
  out.push_back((x * randn_like(x)).sum({1}));
  return out;
}

TEST_P(CompiledRandom, FusedDrawsAreBitIdenticalToEager) {
  KILN_SKIP_WITHOUT_TEST_DEVICE();
  ModeRun run(GetParam());
  Tensor x = randn({24, 40}).to(test_device());
  auto f = compile([](const Tensor& in) { return fused_draws(in); }, GetParam().options("fused"));
  for (uint64_t seed : {5u, 6u}) {
    manual_seed(seed);
    std::vector<Tensor> got = f(x);
    manual_seed(seed);
    std::vector<Tensor> want = fused_draws(x);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const bool sums = i + 1 == got.size() || i + 2 == got.size();  // softmax, sum
      EXPECT_EQ(compare_tensors(got[i], want[i], sums ? 1e-5 : 0, sums ? 1e-5 : 0), "")
          << "output " << i << ", seed " << seed;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CompiledRandom, ::testing::ValuesIn(all_mode_configs()),
                         mode_config_name);

}  // namespace
}  // namespace kiln::testing
