// MultiheadAttention and TransformerEncoderLayer, as PyTorch's (masks aside), built from the
// attention op and the modules of layers.cc.
#include <fmt/format.h>

#include <cmath>

#include "kiln/autograd.h"
#include "kiln/error.h"
#include "kiln/nn.h"
#include "kiln/ops.h"

namespace kiln::nn {

MultiheadAttention::MultiheadAttention(int64_t embed_dim_, int64_t num_heads_, double dropout_,
                                       bool bias, bool batch_first_)
    : embed_dim(embed_dim_), num_heads(num_heads_), dropout(dropout_), batch_first(batch_first_) {
  if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads != 0)
    throw Error(fmt::format(
        "MultiheadAttention({}, {}): embed_dim must be a positive multiple of num_heads", embed_dim,
        num_heads));
  // PyTorch: xavier_uniform_ for the packed projection, zero biases.
  double bound = std::sqrt(6.0 / static_cast<double>(embed_dim + 3 * embed_dim));
  Tensor w = empty({3 * embed_dim, embed_dim});
  w.uniform_(-bound, bound);
  in_proj_weight = register_parameter("in_proj_weight", w);
  if (bias) in_proj_bias = register_parameter("in_proj_bias", zeros({3 * embed_dim}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(embed_dim, embed_dim, bias));
  if (bias) {
    NoGradGuard no_grad;
    out_proj->bias.zero_();
  }
}

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value) {
  if (query.dim() != 3 || key.dim() != 3 || value.dim() != 3)
    throw ShapeError(fmt::format("MultiheadAttention: expected 3-D inputs, got {}, {}, {}",
                                 query.dim(), key.dim(), value.dim()));
  auto batch_major = [&](const Tensor& t) { return batch_first ? t : t.transpose(0, 1); };
  Tensor q = batch_major(query), k = batch_major(key), v = batch_major(value);  // [B, T, E]
  int64_t e = embed_dim, h = num_heads, d = embed_dim / num_heads;
  auto project = [&](const Tensor& x, int64_t part) {
    Tensor w = in_proj_weight.narrow(0, part * e, e);
    Tensor b = in_proj_bias.defined() ? in_proj_bias.narrow(0, part * e, e) : Tensor();
    Tensor y = linear(x, w, b);                                      // [B, T, E]
    return y.reshape({y.size(0), y.size(1), h, d}).transpose(1, 2);  // [B, H, T, D]
  };
  Tensor qh = project(q, 0), kh = project(k, 1), vh = project(v, 2);
  Tensor attended;
  if (dropout > 0 && is_training()) {
    Tensor weights = (matmul(qh, kh.transpose(-1, -2)) * (1.0 / std::sqrt(double(d)))).softmax(-1);
    attended = matmul(kiln::dropout(weights, dropout, true), vh);
  } else {
    attended = scaled_dot_product_attention(qh, kh, vh);
  }
  Tensor merged = attended.transpose(1, 2).reshape({q.size(0), q.size(1), e});
  Tensor out = out_proj->forward(merged);
  return batch_first ? out : out.transpose(0, 1);
}

TransformerEncoderLayer::TransformerEncoderLayer(int64_t d_model, int64_t nhead,
                                                 int64_t dim_feedforward, double p,
                                                 std::string activation_, double layer_norm_eps,
                                                 bool batch_first, bool norm_first_)
    : activation(std::move(activation_)), norm_first(norm_first_) {
  if (activation != "relu" && activation != "gelu")
    throw Error(
        fmt::format("TransformerEncoderLayer: activation must be \"relu\" or \"gelu\", not \"{}\"",
                    activation));
  self_attn = register_module(
      "self_attn", std::make_shared<MultiheadAttention>(d_model, nhead, p, true, batch_first));
  linear1 = register_module("linear1", std::make_shared<Linear>(d_model, dim_feedforward));
  dropout = register_module("dropout", std::make_shared<Dropout>(p));
  linear2 = register_module("linear2", std::make_shared<Linear>(dim_feedforward, d_model));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(Shape{d_model}, layer_norm_eps));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(Shape{d_model}, layer_norm_eps));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(p));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(p));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src) {
  auto attention_block = [&](const Tensor& x) {
    return dropout1->forward(self_attn->forward(x, x, x));
  };
  auto feed_forward = [&](const Tensor& x) {
    Tensor hidden = linear1->forward(x);
    hidden = activation == "relu" ? relu(hidden) : gelu(hidden);
    return dropout2->forward(linear2->forward(dropout->forward(hidden)));
  };
  if (norm_first) {
    Tensor x = src + attention_block(norm1->forward(src));
    return x + feed_forward(norm2->forward(x));
  }
  Tensor x = norm1->forward(src + attention_block(src));
  return norm2->forward(x + feed_forward(x));
}

}  // namespace kiln::nn
