// The modules of include/kiln/nn.h, with PyTorch's default initializations.
#include <fmt/format.h>

#include <cmath>

#include "kiln/autograd.h"
#include "kiln/error.h"
#include "kiln/nn.h"
#include "kiln/ops.h"

namespace kiln::nn {

namespace {

// U(-bound, bound) from kiln's generator, as PyTorch's kaiming_uniform_(a = sqrt(5)) gives
// for a Linear's weight and bias.
Tensor uniform(const Shape& shape, double bound) {
  Tensor t = kiln::empty(shape);
  t.uniform_(-bound, bound);
  return t;
}

}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool has_bias) {
  if (in_features <= 0 || out_features <= 0)
    throw Error(fmt::format("Linear({}, {}): sizes must be positive", in_features, out_features));
  double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  weight = register_parameter("weight", uniform({out_features, in_features}, bound));
  if (has_bias) bias = register_parameter("bias", uniform({out_features}, bound));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

LayerNorm::LayerNorm(Shape shape, double eps_, bool elementwise_affine)
    : normalized_shape(std::move(shape)), eps(eps_) {
  if (elementwise_affine) {
    weight = register_parameter("weight", ones(normalized_shape));
    bias = register_parameter("bias", zeros(normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, normalized_shape, weight, bias, eps);
}

RMSNorm::RMSNorm(Shape shape, std::optional<double> eps_, bool elementwise_affine)
    : normalized_shape(std::move(shape)), eps(eps_) {
  if (elementwise_affine) weight = register_parameter("weight", ones(normalized_shape));
}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, normalized_shape, weight, eps); }

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim) {
  if (num_embeddings <= 0 || embedding_dim <= 0)
    throw Error(
        fmt::format("Embedding({}, {}): sizes must be positive", num_embeddings, embedding_dim));
  weight = register_parameter("weight", randn({num_embeddings, embedding_dim}));
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(indices, weight); }

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training()); }

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate); }

Sequential::Sequential(std::vector<std::shared_ptr<UnaryModule>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<UnaryModule> module) {
  register_module(std::to_string(modules_.size()), module);
  modules_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = m->forward(y);
  return y;
}

}  // namespace kiln::nn
