// Reference matrix products through OpenBLAS (f32, f64; f16/bf16 via f32), with a plain
// loop for integers. matmul follows torch.matmul's rank rules: 1-D operands gain and then
// lose a dim, batch dims broadcast.
#include <cblas.h>
#include <fmt/format.h>

#include "eager/dispatch.h"
#include "eager/strided_loop.h"
#include "kiln/error.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

// C[n, m] = A[n, k] @ op(B) for `batches` contiguous matrices of the compute dtype.
void gemm_batched(const Tensor& a, const Tensor& b, const Tensor& c, int64_t batches, int64_t n,
                  int64_t k, int64_t m, bool b_transposed) {
  DType dtype = c.dtype();
  const char* pa = a.impl()->data_ptr();
  const char* pb = b.impl()->data_ptr();
  char* pc = c.impl()->data_ptr();
  const int64_t es = dtype_size(dtype);
  if (n == 0 || m == 0) return;
  if (k == 0) {
    std::fill(pc, pc + batches * n * m * es, char(0));
    return;
  }
  CBLAS_TRANSPOSE tb = b_transposed ? CblasTrans : CblasNoTrans;
  const int ldb = static_cast<int>(b_transposed ? k : m);
  for (int64_t i = 0; i < batches; ++i) {
    const char* ai = pa + i * n * k * es;
    const char* bi = pb + i * k * m * es;
    char* ci = pc + i * n * m * es;
    if (dtype == DType::f32) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, int(n), int(m), int(k), 1.0f,
                  reinterpret_cast<const float*>(ai), int(k), reinterpret_cast<const float*>(bi),
                  ldb, 0.0f, reinterpret_cast<float*>(ci), int(m));
    } else if (dtype == DType::f64) {
      cblas_dgemm(CblasRowMajor, CblasNoTrans, tb, int(n), int(m), int(k), 1.0,
                  reinterpret_cast<const double*>(ai), int(k),
                  reinterpret_cast<const double*>(bi), ldb, 0.0, reinterpret_cast<double*>(ci),
                  int(m));
    } else {
      const auto* A = reinterpret_cast<const int64_t*>(ai);
      const auto* B = reinterpret_cast<const int64_t*>(bi);
      auto* C = reinterpret_cast<int64_t*>(ci);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t col = 0; col < m; ++col) {
          uint64_t acc = 0;
          for (int64_t j = 0; j < k; ++j) {
            int64_t bv = b_transposed ? B[col * k + j] : B[j * m + col];
            acc += static_cast<uint64_t>(A[r * k + j]) * static_cast<uint64_t>(bv);
          }
          C[r * m + col] = static_cast<int64_t>(acc);
        }
    }
  }
}

DType gemm_dtype(DType d) {
  if (d == DType::f64) return DType::f64;
  if (is_floating(d)) return DType::f32;
  return DType::i64;
}

Tensor batched_matmul(const Tensor& a_in, const Tensor& b_in, const TensorType& out_type) {
  DType compute = gemm_dtype(a_in.dtype());
  Tensor a = a_in.dim() == 1 ? a_in.unsqueeze(0) : a_in;
  Tensor b = b_in.dim() == 1 ? b_in.unsqueeze(-1) : b_in;
  int64_t n = a.sizes()[a.dim() - 2], k = a.sizes().back(), m = b.sizes().back();
  Shape a_batch(a.sizes().begin(), a.sizes().end() - 2);
  Shape b_batch(b.sizes().begin(), b.sizes().end() - 2);
  size_t rank = std::max(a_batch.size(), b_batch.size());
  Shape batch(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t x = i + a_batch.size() >= rank ? a_batch[i + a_batch.size() - rank] : 1;
    int64_t y = i + b_batch.size() >= rank ? b_batch[i + b_batch.size() - rank] : 1;
    batch[i] = x == 1 ? y : x;
  }
  Shape a_full = batch, b_full = batch, c_full = batch;
  a_full.insert(a_full.end(), {n, k});
  b_full.insert(b_full.end(), {k, m});
  c_full.insert(c_full.end(), {n, m});
  Tensor ac = contiguous_eager(cast(a.expand(a_full), compute));
  Tensor bc = contiguous_eager(cast(b.expand(b_full), compute));
  Tensor c = make_tensor(c_full, compute);
  gemm_batched(ac, bc, c, shape_numel(batch), n, k, m, false);
  Shape out_shape;
  try_const_shape(out_type.shape, &out_shape);
  return cast(c.reshape(out_shape), out_type.dtype);
}

}  // namespace

Tensor eager_matmul(Op op, const std::vector<Tensor>& in, const TensorType& out_type) {
  if (op != Op::linear) return batched_matmul(in[0], in[1], out_type);
  const Tensor& x = in[0];
  const Tensor& w = in[1];
  DType compute = gemm_dtype(x.dtype());
  int64_t k = x.sizes().back(), m = w.sizes()[0];
  Tensor x2 = contiguous_eager(cast(x, compute)).reshape({-1, k});
  Tensor wc = contiguous_eager(cast(w, compute));
  Tensor c = make_tensor({x2.sizes()[0], m}, compute);
  gemm_batched(x2, wc, c, 1, x2.sizes()[0], k, m, true);
  if (in.size() > 2) c = run_op(Op::add, {c, cast(in[2], compute)}, {});
  Shape out_shape;
  try_const_shape(out_type.shape, &out_shape);
  return cast(c.reshape(out_shape), out_type.dtype);
}

}  // namespace kiln
