// Attention, softmax(q @ k^T * scale, -1) @ v. On the GPU, shapes the fused kernel takes run
// as one launch (cuda/attention_kernel.cuh) reading q, k and v in place; f32 on the CPU runs
// in one pass over the keys (eager/cpu_attention.h); everything else runs the ops it stands
// for in turn, which is what the graph it was fused from computed.
#include <algorithm>
#include <limits>

#include "cuda/eager_cuda.h"
#include "eager/cpu_attention.h"
#include "eager/dispatch.h"
#include "eager/gpu_launch.h"
#include "kiln/ops.h"
#include "tensor/tensor_impl.h"

namespace kiln {

namespace {

Tensor unfused(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool divide) {
  Tensor scores = matmul(q, k.transpose(-2, -1));
  scores = divide ? scores / scale : scores * scale;
  return matmul(softmax(scores, -1), v);
}

bool fusable_dtype(DType d) { return d == DType::f32 || d == DType::f16 || d == DType::bf16; }

}  // namespace

Tensor eager_attention(const std::vector<Tensor>& in, const Attrs& attrs) {
  const double scale = attrs.get_double("scale");
  const bool divide = attrs.get_bool("divide", false);
  const Tensor &q = in[0], &k = in[1], &v = in[2];
  const int64_t rank = q.dim();
  const int64_t batch_dims = rank - 2;
  const int64_t int32_limit = std::numeric_limits<int32_t>::max();  // the kernel counts in int32
  if (!on_gpu(q)) {
    Tensor fused = cpu_attention(q, k, v, scale, divide);
    return fused.defined() ? fused : unfused(q, k, v, scale, divide);
  }
  if (!fusable_dtype(q.dtype()) || q.size(-2) > int32_limit || k.size(-2) > int32_limit)
    return unfused(q, k, v, scale, divide);
  cuda::AttentionArgs a{};
  a.dtype = static_cast<int32_t>(q.dtype());
  a.batch_dims = static_cast<int32_t>(batch_dims);
  a.batch = 1;
  for (int64_t d = 0; d < batch_dims; ++d) a.batch *= q.size(d);
  a.t = static_cast<int32_t>(q.size(-2));
  a.s = static_cast<int32_t>(k.size(-2));
  a.d = static_cast<int32_t>(std::min<int64_t>(q.size(-1), int32_limit));
  a.dv = static_cast<int32_t>(std::min<int64_t>(v.size(-1), int32_limit));
  a.scale = static_cast<float>(scale);
  a.divide = divide;
  if (!cuda::attention_supported(a)) return unfused(q, k, v, scale, divide);
  // Rows must be contiguous; an operand whose last dim is strided is copied first.
  std::vector<Tensor> operands;
  for (const Tensor& t : in)
    operands.push_back(t.strides().back() == 1 || t.size(-1) == 1 ? t : contiguous_eager(t));
  const Tensor &qc = operands[0], &kc = operands[1], &vc = operands[2];
  for (int64_t i = 0; i < batch_dims; ++i) {
    const size_t d = static_cast<size_t>(batch_dims - 1 - i);  // innermost first
    a.batch_sizes[i] = q.sizes()[d];
    a.q_batch_strides[i] = qc.strides()[d];
    a.k_batch_strides[i] = kc.strides()[d];
    a.v_batch_strides[i] = vc.strides()[d];
  }
  a.q_row_stride = qc.strides()[static_cast<size_t>(rank - 2)];
  a.k_row_stride = kc.strides()[static_cast<size_t>(rank - 2)];
  a.v_row_stride = vc.strides()[static_cast<size_t>(rank - 2)];
  Shape out_sizes = q.sizes();
  out_sizes.back() = v.size(-1);
  Tensor out = make_tensor(out_sizes, q.dtype(), q.device());
  a.q = static_cast<const char*>(qc.impl()->data_ptr());
  a.k = static_cast<const char*>(kc.impl()->data_ptr());
  a.v = static_cast<const char*>(vc.impl()->data_ptr());
  a.out = static_cast<char*>(out.impl()->data_ptr());
  cuda::launch_attention(a);
  return out;
}

}  // namespace kiln
