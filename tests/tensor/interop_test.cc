// Zero-copy interop (from_blob, data_ptr, typed from_vector) and the intra-op thread count.
#include <gtest/gtest.h>

#include <vector>

#include "kiln/error.h"
#include "support/compare.h"

namespace kiln::testing {
namespace {

TEST(Interop, FromBlobViewsTheCallersMemory) {
  std::vector<float> buffer = {1, 2, 3, 4, 5, 6};
  int released = 0;
  {
    Tensor t = from_blob(buffer.data(), {2, 3}, DType::f32, [&](void* p) {
      EXPECT_EQ(p, buffer.data());
      ++released;
    });
    EXPECT_EQ(t.const_data_ptr(), buffer.data()) << "no copy";
    buffer[4] = 50;
    EXPECT_EQ(t.at({1, 1}), 50);
    t.mul_(2);  // writes land in the caller's buffer
    EXPECT_EQ(buffer[0], 2);
    EXPECT_EQ(buffer[4], 100);
    Tensor view = t.narrow(1, 1, 2);
    t = Tensor();
    EXPECT_EQ(released, 0) << "a view still holds the memory";
  }
  EXPECT_EQ(released, 1);
}

TEST(Interop, FromBlobTakesStrides) {
  // The second column of a row-major 3x4 matrix: 3 elements, stride 4.
  std::vector<double> m(12);
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<double>(i);
  Tensor col = from_blob(m.data() + 1, {3}, {4}, DType::f64);
  EXPECT_EQ(compare_tensors(col, from_vector({1, 5, 9}, {3}, DType::f64), 0, 0), "");
  EXPECT_FALSE(col.is_contiguous());
  EXPECT_THROW(from_blob(m.data(), {3}, {-1}, DType::f64), ShapeError);
  EXPECT_THROW(from_blob(m.data(), {3, 3}, {4}, DType::f64), ShapeError);
  EXPECT_THROW(from_blob(m.data(), {1 << 30, 4}, {int64_t{1} << 40, 1}, DType::f64), ShapeError);
  EXPECT_THROW(from_blob(nullptr, {3}, DType::f64), Error);
  EXPECT_NO_THROW(from_blob(nullptr, {0}, DType::f64));
}

TEST(Interop, CompiledFunctionsReadAndWriteForeignMemory) {
  std::vector<float> in = {1, -2, 3, -4}, state = {0, 0, 0, 0};
  Tensor x = from_blob(in.data(), {4}), s = from_blob(state.data(), {4});
  auto f = compile([&](const Tensor& v) {
    s.add_(v.relu());
    return s * 2;
  });
  Tensor out = f(x);
  EXPECT_EQ(state, (std::vector<float>{1, 0, 3, 0})) << "written back into the buffer";
  in[1] = 10;  // the next call reads the buffer as it is then
  f(x);
  EXPECT_EQ(state, (std::vector<float>{2, 10, 6, 0}));
  EXPECT_EQ(compare_tensors(out, from_vector({2, 0, 6, 0}, {4}), 0, 0), "");
}

TEST(Interop, TypedFromVector) {
  Tensor i = from_vector<int64_t>({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(i.dtype(), DType::i64);
  EXPECT_EQ(i.at({1, 0}), 3);
  Tensor d = from_vector<double>({0.5, 1.5}, {2});
  EXPECT_EQ(d.dtype(), DType::f64);
  EXPECT_EQ(from_vector<int32_t>({7}, {}).dtype(), DType::i32);
  EXPECT_THROW(from_vector<float>({1, 2, 3}, {2, 2}), ShapeError);
}

TEST(Interop, ThreadCount) {
  int before = get_num_threads();
  Tensor x = randn({1 << 16});
  Tensor sum_default = x.sum();
  set_num_threads(1);
  EXPECT_EQ(get_num_threads(), 1);
  EXPECT_EQ(compare_tensors(x.sum(), sum_default, 0, 0), "") << "reductions do not depend on it";
  auto f = compile([](const Tensor& v) { return (v * 2).sin().sum(); });
  Tensor one = f(x);
  set_num_threads(before);
  EXPECT_EQ(compare_tensors(f(x), one, 1e-5, 1e-5), "");
  EXPECT_THROW(set_num_threads(0), Error);
  EXPECT_THROW(set_num_threads(5000), Error);
}

}  // namespace
}  // namespace kiln::testing
