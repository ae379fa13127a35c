// matmul, bmm and linear on the GPU through cuBLASLt. Operands are read in place when their
// matrices are row- or column-major and their batch dims collapse to one stride (or
// broadcast with stride 0); anything else is copied contiguous first. A 2-D right operand
// folds the left operand's batch dims into its rows: one product instead of a batch.
#include <fmt/format.h>

#include <atomic>

#include "cuda/blas.h"
#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "kiln/error.h"
#include "kiln/kiln.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

std::atomic<bool> g_allow_tf32{false};

// A matrix operand as cuBLASLt reads it: its last two dims row-major (ld = row stride) or
// column-major (transposed, ld = column stride), its batch dims one stride (0: broadcast).
struct Operand {
  const void* data = nullptr;
  int64_t ld = 0;
  int64_t batch_stride = 0;
  bool transposed = false;
};

std::optional<Operand> as_operand(const Tensor& t) {
  const int64_t r = t.dim();
  const int64_t rows = t.sizes()[r - 2], cols = t.sizes()[r - 1];
  int64_t rs = t.strides()[r - 2], cs = t.strides()[r - 1];
  if (rows == 1) rs = std::max<int64_t>(cols, 1) * std::max<int64_t>(cs, 1);
  if (cols == 1) cs = 1;
  Operand o;
  o.data = t.impl()->data_ptr();
  if (cs == 1 && rs >= std::max<int64_t>(1, cols)) {
    o.ld = rs;
  } else if (rs == 1 && cs >= std::max<int64_t>(1, rows)) {
    o.ld = cs;
    o.transposed = true;
  } else {
    return std::nullopt;
  }
  // Batch dims: all broadcast, or one stride across them (each dim's stride the next's
  // times its size).
  bool broadcast = true;
  for (int64_t d = 0; d + 2 < r; ++d) broadcast &= t.strides()[d] == 0 || t.sizes()[d] == 1;
  if (broadcast) return o;
  for (int64_t d = 0; d + 3 < r; ++d)
    if (t.sizes()[d] != 1 && t.strides()[d] != t.strides()[d + 1] * t.sizes()[d + 1])
      return std::nullopt;
  o.batch_stride = r > 2 ? t.strides()[r - 3] : 0;
  return o;
}

Operand operand_of(Tensor& t) {
  if (auto o = as_operand(t)) return *o;
  t = contiguous_eager(t);
  return *as_operand(t);
}

// Bias and activation applied by kernels when cuBLASLt had no fused algorithm for them.
Tensor finish_unfused(Tensor c, const Tensor& bias, const std::string& epilogue) {
  if (bias.defined()) c = run_op(Op::add, {c, bias}, {});
  return apply_epilogue(c, epilogue);
}

cuda::Epilogue cublas_epilogue(const std::string& epilogue) {
  return epilogue == "relu"        ? cuda::Epilogue::relu
         : epilogue == "gelu_tanh" ? cuda::Epilogue::gelu
                                   : cuda::Epilogue::none;
}

// The product of [n, k] operand a and [k, m] operand b into c (row stride m), as cuBLASLt
// reads them; batches and strides are the caller's.
cuda::GemmRequest request_for(DType dtype, const Operand& a, const Operand& b, const Tensor& c,
                              int64_t n, int64_t k, int64_t m, const std::string& epilogue,
                              bool tune_algorithm) {
  cuda::GemmRequest r;
  r.dtype = dtype;
  r.n = n, r.k = k, r.m = m;
  r.a = a.data, r.lda = a.ld, r.a_transposed = a.transposed, r.stride_a = a.batch_stride;
  r.b = b.data, r.ldb = b.ld, r.b_transposed = b.transposed, r.stride_b = b.batch_stride;
  r.c = c.impl()->data_ptr(), r.ldc = m;
  r.epilogue = cublas_epilogue(epilogue);
  r.allow_tf32 = tf32_allowed();
  r.tune_algorithm = tune_algorithm;
  return r;
}

}  // namespace

bool tf32_allowed() { return g_allow_tf32.load(std::memory_order_relaxed); }

void set_float32_matmul_precision(std::string_view precision) {
  if (precision != "highest" && precision != "high")
    throw Error(
        fmt::format("set_float32_matmul_precision: '{}' (accepted: highest, high)", precision));
  g_allow_tf32 = precision == "high";
}

Tensor gpu_matmul(Op op, const std::vector<Tensor>& in, const std::string& epilogue,
                  bool tune_algorithm, const TensorType& out_type) {
  Shape out_shape;
  try_const_shape(out_type.shape, &out_shape);
  const DType dtype = in[0].dtype();
  Tensor a = in[0], b = op == Op::linear ? in[1].t() : in[1];
  const Tensor bias = op == Op::linear && in.size() > 2 ? in[2] : Tensor();
  if (a.dim() == 1) a = a.unsqueeze(0);
  if (b.dim() == 1) b = b.unsqueeze(-1);
  const int64_t k = a.sizes().back(), m = b.sizes().back();
  Tensor c;
  if (b.dim() == 2) {
    // Fold A's batch dims into its rows: one [N, k] @ [k, m] product.
    Tensor a2 = a.dim() == 2 ? a : a.reshape({-1, k});
    const int64_t n = a2.sizes()[0];
    c = make_tensor({n, m}, dtype, Device::cuda);
    if (n == 0 || m == 0) return c.reshape(out_shape);
    if (k == 0)
      return finish_unfused(zeros({n, m}, dtype).cuda(), bias, epilogue).reshape(out_shape);
    Operand oa = operand_of(a2), ob = operand_of(b);
    cuda::GemmRequest r = request_for(dtype, oa, ob, c, n, k, m, epilogue, tune_algorithm);
    Tensor bias_c = bias.defined() ? contiguous_eager(bias) : Tensor();
    r.bias = bias_c.defined() ? bias_c.impl()->data_ptr() : nullptr;
    if (!cuda::gemm(r)) c = finish_unfused(c, bias_c, epilogue);
    return c.reshape(out_shape);
  }
  // Batched: broadcast the batch dims, one strided-batched product.
  BatchedOperands o = broadcast_operands(a, b);
  const int64_t n = o.n;
  Tensor av = o.a, bv = o.b;
  const Shape& c_full = o.c_shape;
  c = make_tensor(c_full, dtype, Device::cuda);
  const int64_t batches = shape_numel(o.batch);
  if (batches == 0 || n == 0 || m == 0) return c.reshape(out_shape);
  if (k == 0)
    return finish_unfused(zeros(c_full, dtype).cuda(), Tensor(), epilogue).reshape(out_shape);
  cuda::GemmRequest r =
      request_for(dtype, operand_of(av), operand_of(bv), c, n, k, m, epilogue, tune_algorithm);
  r.batches = batches;
  r.stride_c = n * m;
  if (!cuda::gemm(r)) c = finish_unfused(c, Tensor(), epilogue);
  return c.reshape(out_shape);
}

}  // namespace kiln
