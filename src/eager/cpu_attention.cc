#include "eager/cpu_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <vector>

#include "eager/dispatch.h"
#include "support/blas.h"
#include "support/row_math.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// Query rows per block (one thread's unit of work), fewer when that leaves threads without
// two blocks each, and keys per step: a block's scores (128 x 512 floats, 256 KiB) stay in
// the core's L2. Measured on 2 cores (T = S = 512, D = 64): 64 x 256 took 1.6x as long.
constexpr int64_t kMaxRowBlock = 128;
constexpr int64_t kMinRowBlock = 16;
constexpr int64_t kKeyBlock = 512;

struct Operand {
  const float* data = nullptr;
  std::vector<int64_t> batch_strides;  // elements, per batch dim
  int64_t row_stride = 0;
  const float* batch(const std::vector<int64_t>& sizes, int64_t index) const {
    const float* p = data;
    for (size_t d = sizes.size(); d-- > 0;) {
      p += (index % sizes[d]) * batch_strides[d];
      index /= sizes[d];
    }
    return p;
  }
};

Operand operand(const Tensor& t, int64_t batch_dims) {
  Operand o;
  o.data = reinterpret_cast<const float*>(t.impl()->data_ptr());
  for (int64_t d = 0; d < batch_dims; ++d)
    o.batch_strides.push_back(t.strides()[static_cast<size_t>(d)]);
  o.row_stride = t.strides()[static_cast<size_t>(batch_dims)];
  return o;
}

// One block of `rows` query rows against every key: out rows get softmax(scores) @ v.
void attend_block(const float* q, const float* k, const float* v, const Operand& qo,
                  const Operand& ko, const Operand& vo, int64_t rows, int64_t s_len, int64_t d,
                  int64_t dv, float scale, float* out, int64_t out_stride,
                  std::vector<float>& scores, std::vector<float>& acc) {
  std::vector<float> row_max(static_cast<size_t>(rows), -std::numeric_limits<float>::infinity());
  std::vector<float> row_sum(static_cast<size_t>(rows), 0.0f);
  std::fill(acc.begin(), acc.begin() + rows * dv, 0.0f);
  for (int64_t c0 = 0; c0 < s_len; c0 += kKeyBlock) {
    const int64_t cols = std::min(kKeyBlock, s_len - c0);
    sgemm(false, true, rows, cols, d, q, qo.row_stride, k + c0 * ko.row_stride, ko.row_stride,
          scores.data(), kKeyBlock);
    for (int64_t i = 0; i < rows; ++i) {
      float* s = scores.data() + i * kKeyBlock;
      const float block_max = scale_and_max(s, cols, scale);
      const float old_max = row_max[static_cast<size_t>(i)];
      const float new_max = std::max(old_max, block_max);
      // exp(-inf - -inf) is NaN, as in the unfused softmax of a row of -inf scores.
      const float rescale = c0 == 0 ? 0.0f : std::exp(old_max - new_max);
      row_max[static_cast<size_t>(i)] = new_max;
      row_sum[static_cast<size_t>(i)] =
          row_sum[static_cast<size_t>(i)] * rescale + exp_shifted_sum(s, cols, new_max);
      if (c0 > 0 && rescale != 1.0f) {
        float* a = acc.data() + i * dv;
        for (int64_t j = 0; j < dv; ++j) a[j] *= rescale;
      }
    }
    sgemm(false, false, rows, dv, cols, scores.data(), kKeyBlock, v + c0 * vo.row_stride,
          vo.row_stride, acc.data(), dv, /*beta=*/1.0f);
  }
  for (int64_t i = 0; i < rows; ++i) {
    const float inv = 1.0f / row_sum[static_cast<size_t>(i)];
    const float* a = acc.data() + i * dv;
    float* o = out + i * out_stride;
    for (int64_t j = 0; j < dv; ++j) o[j] = a[j] * inv;
  }
}

}  // namespace

Tensor cpu_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double scale,
                     bool divide) {
  if (q_in.dtype() != DType::f32 || k_in.dtype() != DType::f32 || v_in.dtype() != DType::f32)
    return Tensor();
  // The products read rows in place: unit stride along the last dim, rows at least a row
  // apart (sgemm's leading dimension; an expanded operand's rows repeat at stride 0).
  auto rows_contiguous = [](const Tensor& t) {
    const int64_t row_stride = t.strides()[static_cast<size_t>(t.dim() - 2)];
    const bool in_place = (t.strides().back() == 1 || t.size(-1) == 1) &&
                          row_stride >= std::max<int64_t>(t.size(-1), 1);
    return in_place ? t : contiguous_eager(t);
  };
  const Tensor q = rows_contiguous(q_in), k = rows_contiguous(k_in), v = rows_contiguous(v_in);
  const int64_t batch_dims = q.dim() - 2;
  const int64_t t_len = q.size(-2), s_len = k.size(-2), d = q.size(-1), dv = v.size(-1);
  std::vector<int64_t> batch_sizes;
  int64_t batches = 1;
  for (int64_t i = 0; i < batch_dims; ++i) {
    batch_sizes.push_back(q.size(i));
    batches *= q.size(i);
  }
  Shape out_sizes = q.sizes();
  out_sizes.back() = dv;
  Tensor out = make_tensor(out_sizes, DType::f32, Device::cpu);
  if (out.numel() == 0) return out;
  float* out_data = reinterpret_cast<float*>(out.impl()->data_ptr());
  if (s_len == 0) {  // softmax over no keys: 0/0, as the unfused ops give
    std::fill(out_data, out_data + out.numel(), std::numeric_limits<float>::quiet_NaN());
    return out;
  }
  const Operand qo = operand(q, batch_dims), ko = operand(k, batch_dims),
                vo = operand(v, batch_dims);
  const float factor = static_cast<float>(divide ? 1.0 / scale : scale);
  int64_t row_block = kMaxRowBlock;
  const int64_t threads = omp_get_max_threads();
  while (row_block > kMinRowBlock && batches * ((t_len + row_block - 1) / row_block) < 2 * threads)
    row_block /= 2;
  const int64_t row_blocks = (t_len + row_block - 1) / row_block;
  const int64_t items = batches * row_blocks;
  // A product per block is small: the blocks, not the products, take the threads.
  const double work = static_cast<double>(batches) * static_cast<double>(t_len) *
                      static_cast<double>(s_len) * static_cast<double>(d + dv);
  const bool parallel = items > 1 && !omp_in_parallel() && work >= double(int64_t{1} << 18);
  std::exception_ptr error;
#pragma omp parallel if (parallel)
  {
    std::vector<float> scores(static_cast<size_t>(row_block * kKeyBlock));
    std::vector<float> acc(static_cast<size_t>(row_block * dv));
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      try {
        const int64_t b = item / row_blocks, r0 = (item % row_blocks) * row_block;
        const int64_t rows = std::min(row_block, t_len - r0);
        attend_block(qo.batch(batch_sizes, b) + r0 * qo.row_stride, ko.batch(batch_sizes, b),
                     vo.batch(batch_sizes, b), qo, ko, vo, rows, s_len, d, dv, factor,
                     out_data + (b * t_len + r0) * dv, dv, scores, acc);
      } catch (...) {
#pragma omp critical(kiln_cpu_attention_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
  return out;
}

}  // namespace kiln
