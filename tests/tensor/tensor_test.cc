#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "kiln/kiln.h"
#include "support/compare.h"

namespace kiln {
namespace {

Tensor iota(const Shape& shape, DType dtype = DType::f32) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return arange(n, dtype).reshape(shape);
}

TEST(Tensor, ContiguousLayout) {
  Tensor t = zeros({2, 3, 4});
  EXPECT_EQ(t.sizes(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.dtype(), DType::f32);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = iota({3, 4});
  Tensor tr = t.transpose(0, 1);
  EXPECT_EQ(tr.sizes(), (Shape{4, 3}));
  EXPECT_EQ(tr.strides(), (Shape{1, 4}));
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_EQ(tr.at({3, 2}), 11);
  t.data<float>()[11] = 100;  // writes through the storage both share
  EXPECT_EQ(tr.at({3, 2}), 100);
  Tensor v = t.view({2, 6});
  EXPECT_EQ(v.at({1, 5}), 100);
  Tensor s = t.slice(1, 1, 4, 2);  // columns 1 and 3
  EXPECT_EQ(s.sizes(), (Shape{3, 2}));
  EXPECT_EQ(s.at({2, 1}), 100);
  EXPECT_EQ(s.offset(), 1);
}

TEST(Tensor, ReshapeOfNonContiguousCopiesOnlyWhenNeeded) {
  Tensor t = iota({4, 6});
  Tensor tr = t.t();
  EXPECT_THROW(tr.view({24}), ShapeError);
  Tensor flat = tr.reshape({24});
  EXPECT_EQ(flat.at({1}), 6);
  Tensor rows = t.slice(0, 0, 4, 2);  // every other row: still viewable as [2, 2, 3]
  Tensor r = rows.view({2, 2, 3});
  EXPECT_EQ(r.at({1, 1, 2}), 17);
}

TEST(Tensor, ExpandSqueezeUnsqueezeFlattenPermuteNarrow) {
  Tensor col = iota({3, 1});
  Tensor e = col.expand({3, 4});
  EXPECT_EQ(e.strides(), (Shape{1, 0}));
  EXPECT_EQ(e.at({2, 3}), 2);
  EXPECT_EQ(col.squeeze().sizes(), (Shape{3}));
  EXPECT_EQ(col.squeeze(1).sizes(), (Shape{3}));
  EXPECT_EQ(col.unsqueeze(0).sizes(), (Shape{1, 3, 1}));
  EXPECT_EQ(iota({2, 3, 4}).flatten(1).sizes(), (Shape{2, 12}));
  Tensor p = iota({2, 3, 4}).permute({2, 0, 1});
  EXPECT_EQ(p.sizes(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.at({3, 1, 2}), 23);
  Tensor n = iota({5, 2}).narrow(0, -2, 2);
  EXPECT_EQ(n.at({0, 0}), 6);
  EXPECT_EQ(iota({2, 3}).expand({4, 2, 3}).contiguous().at({3, 1, 2}), 5);
}

TEST(Tensor, ContiguousCloneAndCast) {
  Tensor t = iota({3, 4}).t();
  Tensor c = t.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.at({2, 1}), 6);
  Tensor cl = c.clone();
  cl.data<float>()[0] = 42;
  EXPECT_EQ(c.at({0, 0}), 0);
  Tensor h = from_vector({1.5, -2.25, 65504, 1e-8, 3.14159}, {5}).to(DType::f16);
  EXPECT_EQ(h.at({0}), 1.5);
  EXPECT_EQ(h.at({2}), 65504);
  EXPECT_NEAR(h.at({4}), 3.140625, 1e-9);
  Tensor b = from_vector({1.00390625, 1.01171875}, {2}).to(DType::bf16);  // ties to even
  EXPECT_EQ(b.at({0}), 1.0);
  EXPECT_EQ(b.at({1}), 1.015625);
  Tensor i = from_vector({2.9, -2.9, 1e30}, {3}).to(DType::i32);
  EXPECT_EQ(i.at({0}), 2);
  EXPECT_EQ(i.at({1}), -2);
  EXPECT_EQ(i.at({2}), -2147483648.0);  // out of range: defined, like x86
}

TEST(Tensor, FactoriesAndItem) {
  EXPECT_EQ(full({2, 2}, 7, DType::i64).at({1, 1}), 7);
  EXPECT_EQ(ones({3}).sum().item<float>(), 3.0f);
  Tensor a = arange(1, 2, 0.25, DType::f32);
  EXPECT_EQ(a.numel(), 4);
  EXPECT_EQ(a.at({3}), 1.75);
  EXPECT_THROW(zeros({2}).item<float>(), Error);
  EXPECT_THROW(zeros({2}).data<double>(), Error);
}

TEST(Tensor, MemoryStatsCountLiveStoragesAndTheirPeak) {
  const int64_t base = memory_allocated();
  reset_peak_memory_stats();
  EXPECT_EQ(max_memory_allocated(), base);
  {
    Tensor a = empty({1 << 20});  // 4 MiB
    Tensor view = a.slice(0, 0, 10);
    EXPECT_EQ(memory_allocated(), base + (int64_t{4} << 20)) << "a view holds no memory of its own";
    Tensor b = empty({1 << 19}, DType::f64);  // 4 MiB more
    EXPECT_EQ(memory_allocated(), base + (int64_t{8} << 20));
  }
  EXPECT_EQ(memory_allocated(), base) << "freed storages (cached for reuse or not) are not counted";
  EXPECT_EQ(max_memory_allocated(), base + (int64_t{8} << 20));
  std::vector<float> host(1 << 20, 1.0f);
  Tensor blob = from_blob(host.data(), {1 << 20}, DType::f32);
  EXPECT_EQ(memory_allocated(), base) << "memory kiln does not own is not counted";
  reset_peak_memory_stats();
  EXPECT_EQ(max_memory_allocated(), base);
  EXPECT_EQ(memory_allocated(Device::cuda), 0);
}

TEST(Tensor, RandomIsSeededAndIndependentOfThreadCount) {
  manual_seed(123);
  Tensor a = randn({1 << 17});
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  manual_seed(123);
  Tensor b = randn({1 << 17});
  omp_set_num_threads(threads);
  EXPECT_EQ(testing::compare_tensors(a, b, 0, 0), "");
  double m = a.mean().item<double>(), s = a.std().item<double>();
  EXPECT_NEAR(m, 0.0, 0.02);
  EXPECT_NEAR(s, 1.0, 0.02);
  Tensor u = rand({10000});
  EXPECT_GE(u.amin().item<double>(), 0.0);
  EXPECT_LT(u.amax().item<double>(), 1.0);
  manual_seed(124);
  EXPECT_NE(randn({4}).at({0}), a.at({0}));
}

TEST(Tensor, Printing) {
  std::ostringstream os;
  os << from_vector({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(os.str(),
            "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]], shape=[2, 2], dtype=f32)");
  EXPECT_NE(zeros({100, 100}).to_string().find("..."), std::string::npos);
  EXPECT_EQ((iota({3}) > 0.5).to_string(), "tensor([False, True, True], shape=[3], dtype=bool)");
}

TEST(Tensor, OperatorsAndScalarPromotion) {
  Tensor i = arange(4, DType::i32);
  EXPECT_EQ((i + 1).dtype(), DType::i32);
  EXPECT_EQ((i * 0.5f).dtype(), DType::f32);
  EXPECT_EQ((i / 2).dtype(), DType::f32);
  EXPECT_EQ((i / 2).at({3}), 1.5);
  EXPECT_EQ((1 - i).at({3}), -2);
  EXPECT_EQ((2.0 / (i + 1)).at({1}), 1.0);
  EXPECT_EQ((i == 2).dtype(), DType::bool_);
  EXPECT_EQ((-i).at({2}), -2);
  Tensor big = full({1}, std::numeric_limits<int32_t>::max(), DType::i32);
  EXPECT_EQ((big + 1).at({0}), std::numeric_limits<int32_t>::min());  // wraps, as PyTorch
}

TEST(Tensor, LargeEagerOpsMatchScalarLoop) {
  manual_seed(5);
  Tensor x = randn({300, 700});
  Tensor y = randn({700});
  Tensor z = (x * y + 1.0f).sin();
  for (int64_t r : {0, 123, 299})
    for (int64_t c : {0, 350, 699})
      EXPECT_NEAR(z.at({r, c}), std::sin(float(x.at({r, c}) * y.at({c}) + 1.0f)), 1e-6);
  Tensor s = x.t().sum({1});  // strided reduction
  double expected = 0;
  for (int64_t r = 0; r < 300; ++r) expected += x.at({r, 17});
  EXPECT_NEAR(s.at({17}), expected, 1e-4);
}

TEST(Tensor, ScaledDotProductAttentionIsSoftmaxOfScaledScoresTimesValues) {
  Tensor q = randn({2, 5, 8}), k = randn({2, 7, 8}), v = randn({2, 7, 3});
  Tensor want = matmul(softmax(matmul(q, k.transpose(1, 2)) * (1 / std::sqrt(8.0)), -1), v);
  EXPECT_EQ(testing::compare_tensors(scaled_dot_product_attention(q, k, v), want, 1e-6, 1e-6), "");
  EXPECT_EQ(scaled_dot_product_attention(q, k, v, 2.0).sizes(), (Shape{2, 5, 3}));
  try {
    scaled_dot_product_attention(q, randn({3, 7, 8}), v);
    FAIL() << "batch dims differ";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("attention"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("batch dims differ"), std::string::npos) << e.what();
  }
  EXPECT_THROW(scaled_dot_product_attention(q, k, randn({2, 6, 3})), ShapeError);
}

TEST(Tensor, MatmulReadsStridedOperandsInPlace) {
  // Transposed, column-sliced and batch-broadcast operands against an f64 loop.
  manual_seed(9);
  Tensor a = randn({3, 7, 5}).transpose(1, 2);       // [3, 5, 7], column-major matrices
  Tensor b = randn({7, 12}).narrow(1, 3, 6);         // [7, 6], row stride 12, offset 3
  Tensor c = randn({2, 1, 6, 4}).transpose(-1, -2);  // [2, 1, 4, 6], broadcast batch
  Tensor ab = matmul(a, b);
  Tensor cab = matmul(c, ab.transpose(-1, -2));  // [2, 3, 4, 5]
  ASSERT_EQ(cab.sizes(), (Shape{2, 3, 4, 5}));
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t q = 0; q < 3; ++q)
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 5; ++j) {
          double want = 0;
          for (int64_t t = 0; t < 6; ++t) {
            double abv = 0;
            for (int64_t u = 0; u < 7; ++u) abv += a.at({q, j, u}) * b.at({u, t});
            want += c.at({p, 0, i, t}) * abv;
          }
          EXPECT_NEAR(cab.at({p, q, i, j}), want, 1e-4);
        }
}

}  // namespace
}  // namespace kiln
