// Optimizers, as libtorch's torch::optim, with PyTorch's update rules (torch.optim's docs):
//
//   optim::AdamW opt(model->parameters(), {.lr = 1e-3, .weight_decay = 0.01});
//   for (...) { opt.zero_grad(); loss(model, batch).backward(); opt.step(); }
//
// Options are aggregates whose members follow PyTorch's argument order, so designated
// initializers read like PyTorch's keyword arguments. With `fused` (the default), step()
// runs one compiled function over every parameter that has a gradient: kiln fuses each
// parameter's update (its moments and itself: a multi-output loop) into one loop and groups
// the loops into foreach kernels, one launch per 48 buffers; the learning rate
// and Adam's bias corrections are graph scalars (SymFloat), so a schedule does not recompile.
// Without it, step() runs the same update eagerly, op by op.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "kiln/tensor.h"

namespace kiln::optim {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params);
  virtual ~Optimizer();
  virtual void step() = 0;
  // Clears every parameter's .grad (PyTorch's set_to_none).
  void zero_grad();
  const std::vector<Tensor>& parameters() const { return params_; }

 protected:
  std::vector<Tensor> params_;
};

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
  double dampening = 0;
  bool fused = true;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options = {});
  ~SGD() override;
  void step() override;
  SGDOptions options;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct AdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0;
  bool fused = true;
};

struct AdamWOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool fused = true;
};

// Adam (weight decay added to the gradient) and AdamW (decoupled: the parameter decays).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {});
  ~Adam() override;
  void step() override;
  AdamOptions options;

 protected:
  Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options = {});
};

}  // namespace kiln::optim

namespace kiln::nn::utils {

// Scales the parameters' gradients in place so that their total `norm_type` norm is at
// most max_norm (torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm,
                       double norm_type = 2.0);

}  // namespace kiln::nn::utils
