// Reference matrix products through the BLAS libraries (support/blas.h: f32 through oneDNN or
// OpenBLAS, f64 through OpenBLAS; f16/bf16 via f32), with a plain
// loop for integers. matmul follows torch.matmul's rank rules: 1-D operands gain and then
// lose a dim, batch dims broadcast.
#include <fmt/format.h>

#include <omp.h>

#include <optional>

#include "cuda/blas.h"
#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "eager/strided_loop.h"
#include "kiln/error.h"
#include "support/blas.h"
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
      sgemm(false, b_transposed, n, m, k, reinterpret_cast<const float*>(ai), k,
            reinterpret_cast<const float*>(bi), ldb, reinterpret_cast<float*>(ci), m);
    } else if (dtype == DType::f64) {
      blas().dgemm(CblasRowMajor, CblasNoTrans, tb, int(n), int(m), int(k), 1.0,
                   reinterpret_cast<const double*>(ai), int(k), reinterpret_cast<const double*>(bi),
                   ldb, 0.0, reinterpret_cast<double*>(ci), int(m));
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

// A matrix operand as BLAS reads it in place: transposed or not, with its leading
// dimension; nullopt when its strides need a copy first.
struct BlasLayout {
  CBLAS_TRANSPOSE trans;
  int ld;
};

std::optional<BlasLayout> blas_layout(int64_t rows, int64_t cols, int64_t row_stride,
                                      int64_t col_stride) {
  if (rows == 1) row_stride = std::max<int64_t>(cols, 1) * std::max<int64_t>(col_stride, 1);
  if (cols == 1) col_stride = 1;
  if (col_stride == 1 && row_stride >= std::max<int64_t>(1, cols))
    return BlasLayout{CblasNoTrans, static_cast<int>(row_stride)};
  if (row_stride == 1 && col_stride >= std::max<int64_t>(1, rows))
    return BlasLayout{CblasTrans, static_cast<int>(col_stride)};
  return std::nullopt;
}

// Whether A's batch dims continue its rows (each batch n rows further on, row-major) and B
// is the same matrix for every batch (stride 0 over the batch dims): then the batched
// product is one product of batches * n rows.
bool fold_batches_into_rows(const Tensor& a, const Tensor& b, const Shape& batch, int64_t n,
                            const BlasLayout& la) {
  if (la.trans != CblasNoTrans || shape_numel(batch) * n > INT32_MAX) return false;
  int64_t expected = n * la.ld;
  for (int64_t dim = static_cast<int64_t>(batch.size()) - 1; dim >= 0; --dim) {
    if (batch[dim] == 1) continue;
    if (b.strides()[dim] != 0 || a.strides()[dim] != expected) return false;
    expected *= batch[dim];
  }
  return true;
}

// Batched f32/f64 products straight from strided views (transposes and broadcast batch
// dims included), no copies; false when a layout needs one.
bool gemm_strided(const Tensor& a, const Tensor& b, const Tensor& c, int64_t n, int64_t k,
                  int64_t m) {
  DType d = c.dtype();
  if ((d != DType::f32 && d != DType::f64) || a.dtype() != d || b.dtype() != d || n == 0 ||
      m == 0 || k == 0)
    return false;
  const int64_t r = a.dim();
  auto la = blas_layout(n, k, a.strides()[r - 2], a.strides()[r - 1]);
  auto lb = blas_layout(k, m, b.strides()[r - 2], b.strides()[r - 1]);
  if (!la || !lb) return false;
  const Shape batch(c.sizes().begin(), c.sizes().end() - 2);
  const int64_t batches = shape_numel(batch), es = dtype_size(d);
  auto product = [&](const char* pa, const char* pb, char* pc, int64_t rows) {
    if (d == DType::f32) {
      sgemm(la->trans == CblasTrans, lb->trans == CblasTrans, rows, m, k,
            reinterpret_cast<const float*>(pa), la->ld, reinterpret_cast<const float*>(pb), lb->ld,
            reinterpret_cast<float*>(pc), m);
    } else {
      blas().dgemm(CblasRowMajor, la->trans, lb->trans, int(rows), int(m), int(k), 1.0,
                   reinterpret_cast<const double*>(pa), la->ld, reinterpret_cast<const double*>(pb),
                   lb->ld, 0.0, reinterpret_cast<double*>(pc), int(m));
    }
  };
  // One B for every batch (a weight broadcast over a [B, T, K] activation) and A's batches
  // laid out as more rows: one product of batches * n rows, which the library spreads over
  // every thread, instead of one per batch.
  if (batches > 1 && fold_batches_into_rows(a, b, batch, n, *la)) {
    product(a.impl()->data_ptr(), b.impl()->data_ptr(), c.impl()->data_ptr(), batches * n);
    return true;
  }
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t rest = i, off_a = 0, off_b = 0;
      for (int64_t dim = static_cast<int64_t>(batch.size()) - 1; dim >= 0; --dim) {
        int64_t idx = rest % batch[dim];
        rest /= batch[dim];
        off_a += idx * a.strides()[dim];
        off_b += idx * b.strides()[dim];
      }
      product(a.impl()->data_ptr() + off_a * es, b.impl()->data_ptr() + off_b * es,
              c.impl()->data_ptr() + i * n * m * es, n);
    }
  };
  // Batches spread over threads (each product then on one) only when there are enough of
  // them to occupy every thread; fewer run in turn, each product on all threads.
  if (batches >= omp_get_max_threads())
    parallel_range(batches, n * m * k / 64 + 1, run);
  else
    run(0, batches);
  return true;
}

Tensor batched_matmul(const Tensor& a_in, const Tensor& b_in, const TensorType& out_type) {
  DType compute = gemm_dtype(a_in.dtype());
  BatchedOperands o = broadcast_operands(a_in.dim() == 1 ? a_in.unsqueeze(0) : a_in,
                                         b_in.dim() == 1 ? b_in.unsqueeze(-1) : b_in);
  const Shape& batch = o.batch;
  const Tensor &av = o.a, &bv = o.b;
  const int64_t n = o.n, k = o.k, m = o.m;
  Tensor c = make_tensor(o.c_shape, compute);
  if (!gemm_strided(av, bv, c, n, k, m)) {
    Tensor ac = contiguous_eager(cast(av, compute));
    Tensor bc = contiguous_eager(cast(bv, compute));
    gemm_batched(ac, bc, c, shape_numel(batch), n, k, m, false);
  }
  Shape out_shape;
  try_const_shape(out_type.shape, &out_shape);
  return cast(c.reshape(out_shape), out_type.dtype);
}

}  // namespace

Tensor apply_epilogue(const Tensor& product, const std::string& epilogue) {
  if (epilogue == "relu") return run_op(Op::relu, {product}, {});
  if (epilogue == "gelu_tanh") {
    Attrs a;
    a.set("approximate", std::string("tanh"));
    return run_op(Op::gelu, {product}, a);
  }
  return product;
}

BatchedOperands broadcast_operands(const Tensor& a, const Tensor& b) {
  BatchedOperands o;
  o.n = a.sizes()[a.dim() - 2], o.k = a.sizes().back(), o.m = b.sizes().back();
  Shape a_batch(a.sizes().begin(), a.sizes().end() - 2);
  Shape b_batch(b.sizes().begin(), b.sizes().end() - 2);
  const size_t rank = std::max(a_batch.size(), b_batch.size());
  o.batch.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t x = i + a_batch.size() >= rank ? a_batch[i + a_batch.size() - rank] : 1;
    int64_t y = i + b_batch.size() >= rank ? b_batch[i + b_batch.size() - rank] : 1;
    o.batch[i] = x == 1 ? y : x;
  }
  Shape a_full = o.batch, b_full = o.batch;
  o.c_shape = o.batch;
  a_full.insert(a_full.end(), {o.n, o.k});
  b_full.insert(b_full.end(), {o.k, o.m});
  o.c_shape.insert(o.c_shape.end(), {o.n, o.m});
  o.a = a.expand(a_full);
  o.b = b.expand(b_full);
  return o;
}

namespace {

Tensor cpu_matmul(Op op, const std::vector<Tensor>& in, const TensorType& out_type) {
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

}  // namespace

Tensor eager_matmul(Op op, const std::vector<Tensor>& in, const Attrs& attrs,
                    const TensorType& out_type) {
  const std::string epilogue = attrs.has("epilogue") ? attrs.get_string("epilogue") : "";
  if (on_gpu(in[0])) {
    if (is_floating(in[0].dtype()))
      return gpu_matmul(op, in, epilogue, attrs.has("algorithm"), out_type);
    // Integer products have no GPU library: they run on host copies.
    std::vector<Tensor> host;
    for (const Tensor& t : in) host.push_back(t.cpu());
    return eager_matmul(op, host, attrs, out_type).cuda();
  }
  return apply_epilogue(cpu_matmul(op, in, out_type), epilogue);
}

}  // namespace kiln
