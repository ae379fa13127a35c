// Modules and losses, named as libtorch's torch::nn. A Module owns named parameters (tensors
// that require grad), buffers and submodules; parameters() walks them in registration
// order, state_dict() names them as PyTorch does ("layers.0.weight"), so weights trained in
// PyTorch load with load_state_dict (and save_safetensors / load_safetensors move them).
// Modules are held by std::shared_ptr (libtorch's ModuleHolder is the same idea):
//
//   struct Net : nn::Module {
//     std::shared_ptr<nn::Linear> fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, 8));
//     Tensor forward(const Tensor& x) { return fc1->forward(x).relu(); }
//   };
//
// Parameters are initialized as PyTorch's defaults (Linear: U(-1/sqrt(in), 1/sqrt(in)),
// LayerNorm: ones and zeros, Embedding: N(0, 1)) from kiln's generator (manual_seed).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kiln/safetensors.h"
#include "kiln/tensor.h"

namespace kiln::nn {

class Module {
 public:
  virtual ~Module() = default;

  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  // Training mode (dropout active) for this module and its submodules.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Parameters and buffers by dotted name; load_state_dict copies values in place (shapes
  // and names must match; strict: every entry of both sides).
  TensorMap state_dict() const;
  void load_state_dict(const TensorMap& state, bool strict = true);
  // Parameters (and their gradients) and buffers moved to `device`, in place of the old.
  void to(Device device);
  // Floating-point parameters (and their gradients) and buffers cast to `dtype` in place;
  // integer and bool ones are left as they are (torch's Module.to(dtype)).
  void to(DType dtype);
  // Clears every parameter's .grad.
  void zero_grad();

 protected:
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  // Every parameter, then every buffer, of this module and its submodules.
  void for_each_tensor(const std::function<void(const Tensor&)>& f) const;
  void collect(const std::string& prefix, bool recurse, bool buffers,
               std::vector<std::pair<std::string, Tensor>>& out) const;
  Tensor& slot(const std::string& dotted, bool* is_parameter);

  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module of one tensor: what Sequential chains.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
};

class Linear : public UnaryModule {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;  // [out, in], [out] (undefined without bias)
};

class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  Shape normalized_shape;
  double eps;
  Tensor weight, bias;
};

// torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
// bias): weight [out, in / groups, kh, kw] and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in
// = in / groups * kh * kw, as PyTorch initializes them.
class Conv2d : public UnaryModule {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Shape kernel_size, Shape stride = {1},
         Shape padding = {0}, Shape dilation = {1}, int64_t groups = 1, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Shape stride, padding, dilation;
  int64_t groups;
  Tensor weight, bias;
};

// torch.nn.BatchNorm2d(num_features, eps, momentum, affine, track_running_stats): weight ones,
// bias zeros; buffers running_mean zeros, running_var ones, num_batches_tracked (i64). In
// training mode it normalizes by the batch's statistics and updates the running ones in place
// (also inside a compiled function: a mutation written back); in eval mode it uses them.
class BatchNorm2d : public UnaryModule {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1,
                       bool affine = true, bool track_running_stats = true);
  Tensor forward(const Tensor& x) override;
  double eps, momentum;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};

// torch.nn.GroupNorm(num_groups, num_channels, eps, affine).
class GroupNorm : public UnaryModule {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  int64_t num_groups;
  double eps;
  Tensor weight, bias;
};

// torch.nn.MaxPool2d and AvgPool2d: an empty stride is the kernel size.
class MaxPool2d : public UnaryModule {
 public:
  explicit MaxPool2d(Shape kernel_size, Shape stride = {}, Shape padding = {0},
                     Shape dilation = {1}, bool ceil_mode = false);
  Tensor forward(const Tensor& x) override;
  Shape kernel_size, stride, padding, dilation;
  bool ceil_mode;
};

class AvgPool2d : public UnaryModule {
 public:
  explicit AvgPool2d(Shape kernel_size, Shape stride = {}, Shape padding = {0},
                     bool ceil_mode = false, bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  Shape kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
};

// torch.nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True): weight ones.
class RMSNorm : public UnaryModule {
 public:
  explicit RMSNorm(Shape normalized_shape, std::optional<double> eps = std::nullopt,
                   bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  Shape normalized_shape;
  std::optional<double> eps;
  Tensor weight;
};

class Embedding : public UnaryModule {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Tensor forward(const Tensor& indices) override;
  Tensor weight;  // [num_embeddings, embedding_dim]
};

class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p = 0.5) : p(p) {}
  Tensor forward(const Tensor& x) override;
  double p;
};

class ReLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override;
};

class GELU : public UnaryModule {
 public:
  explicit GELU(std::string approximate = "none") : approximate(std::move(approximate)) {}
  Tensor forward(const Tensor& x) override;
  std::string approximate;
};

// torch.nn.MultiheadAttention without masks: forward(query, key, value) is the attention
// output (need_weights = false). Parameters as PyTorch names them: in_proj_weight [3E, E],
// in_proj_bias [3E], out_proj.weight, out_proj.bias. batch_first: [B, T, E], else [T, B, E].
// Dropout applies to the attention weights in training (the fused attention op otherwise).
class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true,
                     bool batch_first = false);
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value);
  int64_t embed_dim, num_heads;
  double dropout;
  bool batch_first;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;
};

// torch.nn.TransformerEncoderLayer (no masks): self-attention and a feed-forward block, each
// with dropout, a residual and LayerNorm (after, or before with norm_first).
// activation: "relu" or "gelu".
class TransformerEncoderLayer : public UnaryModule {
 public:
  TransformerEncoderLayer(int64_t d_model, int64_t nhead, int64_t dim_feedforward = 2048,
                          double dropout = 0.1, std::string activation = "relu",
                          double layer_norm_eps = 1e-5, bool batch_first = false,
                          bool norm_first = false);
  Tensor forward(const Tensor& src) override;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::string activation;
  bool norm_first;
};

// Its modules applied in order; named "0", "1", ... as in PyTorch.
class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<UnaryModule>> modules);
  void push_back(std::shared_ptr<UnaryModule> module);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return modules_.size(); }

 private:
  std::vector<std::shared_ptr<UnaryModule>> modules_;
};

}  // namespace kiln::nn

namespace kiln {

// Losses, as torch.nn.functional's. reduction: "mean", "sum" or "none".
Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction = "mean");
// logits [N, C] (or [C]), target class indices [N] (i32/i64, each in [0, C)); label_smoothing
// mixes the one-hot target with the uniform distribution, as PyTorch.
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     const std::string& reduction = "mean", double label_smoothing = 0.0);
// log_probs [N, C], target class indices [N].
Tensor nll_loss(const Tensor& log_probs, const Tensor& target,
                const std::string& reduction = "mean");

}  // namespace kiln
