// The optimizers of include/kiln/optim.h. Each update is written once, over lists of
// tensors, and either runs eagerly or is compiled (`fused`): the compiled function takes the
// parameters, gradients and state tensors as inputs (updated in place, so compile() writes
// them back) and the step's numbers as SymFloats, graph scalars once they change.
#include <fmt/format.h>

#include <cmath>

#include "kiln/autograd.h"
#include "kiln/compile.h"
#include "kiln/error.h"
#include "kiln/ops.h"
#include "kiln/optim.h"

namespace kiln::optim {

namespace {

using Tensors = std::vector<Tensor>;

void check_lr(double lr, const char* name) {
  if (!(lr >= 0.0)) throw Error(fmt::format("{}: invalid learning rate {}", name, lr));
}

// Zero state tensors shaped like `params`.
Tensors zeros_like_all(const Tensors& params) {
  Tensors out;
  for (const Tensor& p : params) out.push_back(zeros_like(p));
  return out;
}

}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
  for (size_t i = 0; i < params_.size(); ++i)
    if (!params_[i].defined() || !params_[i].requires_grad())
      throw Error(fmt::format("optimizer: parameter {} is undefined or does not require grad", i));
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (const Tensor& p : params_) p.set_grad({});
}

// --- SGD ----------------------------------------------------------------------------------

namespace {

// PyTorch's SGD on lists: d = g + wd p; buf = first ? d : momentum buf + (1 - dampening) d;
// d = nesterov ? d + momentum buf : buf; p -= lr d.
struct SGDUpdate {
  SGDOptions o;
  Tensors operator()(const Tensors& params, const Tensors& grads, const Tensors& bufs, SymFloat lr,
                     bool first) const {
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor d = o.weight_decay != 0 ? grads[i] + params[i] * o.weight_decay : grads[i];
      if (o.momentum != 0) {
        if (first) {
          bufs[i].copy_(d);
        } else {
          bufs[i].mul_(o.momentum).add_(d, 1 - o.dampening);
        }
        d = o.nesterov ? d + bufs[i] * o.momentum : bufs[i];
      }
      params[i].sub_(d, lr);
    }
    return {};
  }
};

}  // namespace

struct SGD::State {
  std::vector<Tensor> momentum;  // per parameter, made at its first step
  std::vector<bool> started;
  SGDUpdate update;
  decltype(kiln::compile(SGDUpdate{})) compiled;
  explicit State(const SGDOptions& o) : update{o}, compiled(kiln::compile(SGDUpdate{o})) {}
};

SGD::SGD(std::vector<Tensor> params, SGDOptions o)
    : Optimizer(std::move(params)), options(o), state_(std::make_unique<State>(o)) {
  check_lr(o.lr, "SGD");
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
    throw Error("SGD: nesterov momentum requires a momentum and zero dampening");
  state_->momentum = zeros_like_all(params_);
  state_->started.assign(params_.size(), false);
}

SGD::~SGD() = default;

void SGD::step() {
  NoGradGuard no_grad;
  // The parameters that have gradients, split by whether their momentum has started (PyTorch
  // starts it at a parameter's first step).
  for (bool first : {true, false}) {
    Tensors params, grads, bufs;
    for (size_t i = 0; i < params_.size(); ++i) {
      Tensor g = params_[i].grad();
      if (!g.defined() || state_->started[i] != !first) continue;
      params.push_back(params_[i]);
      grads.push_back(g);
      bufs.push_back(state_->momentum[i]);
    }
    if (params.empty()) continue;
    SymFloat lr(options.lr);
    if (options.fused) {
      state_->compiled(params, grads, bufs, lr, first && options.momentum != 0);
    } else {
      state_->update(params, grads, bufs, lr, first && options.momentum != 0);
    }
  }
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].grad().defined()) state_->started[i] = true;
}

// --- Adam, AdamW --------------------------------------------------------------------------

namespace {

// PyTorch's Adam/AdamW on lists: (AdamW) p *= 1 - lr wd, or (Adam) g += wd p; m = b1 m +
// (1 - b1) g; v = b2 v + (1 - b2) g²; p -= lr / bc1 · m / (sqrt(v) / sqrt(bc2) + eps), with
// the bias corrections bc = 1 - b^step.
struct AdamUpdate {
  AdamOptions o;
  bool decoupled;
  Tensors operator()(const Tensors& params, const Tensors& grads, const Tensors& m,
                     const Tensors& v, SymFloat lr, SymFloat bc1, SymFloat bc2) const {
    auto [b1, b2] = o.betas;
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor g = grads[i];
      if (o.weight_decay != 0) {
        if (decoupled) {
          params[i].mul_(1.0 - lr * o.weight_decay);
        } else {
          g = g + params[i] * o.weight_decay;
        }
      }
      m[i].mul_(b1).add_(g, 1 - b1);
      v[i].mul_(b2).add_(g * g * (1 - b2));
      Tensor denom = v[i].sqrt() / sqrt(bc2) + o.eps;
      params[i].sub_(m[i] / denom, lr / bc1);
    }
    return {};
  }
};

}  // namespace

struct Adam::State {
  Tensors m, v;
  std::vector<int64_t> steps;  // per parameter
  AdamUpdate update;
  decltype(kiln::compile(AdamUpdate{})) compiled;
  State(const AdamOptions& o, bool decoupled)
      : update{o, decoupled}, compiled(kiln::compile(AdamUpdate{o, decoupled})) {}
};

Adam::Adam(std::vector<Tensor> params, AdamOptions o) : Adam(std::move(params), o, false) {}

Adam::Adam(std::vector<Tensor> params, AdamOptions o, bool decoupled)
    : Optimizer(std::move(params)), options(o), state_(std::make_unique<State>(o, decoupled)) {
  const char* name = decoupled ? "AdamW" : "Adam";
  check_lr(o.lr, name);
  auto [b1, b2] = o.betas;
  if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1))
    throw Error(fmt::format("{}: betas must be in [0, 1), got ({}, {})", name, b1, b2));
  if (!(o.eps >= 0)) throw Error(fmt::format("{}: invalid eps {}", name, o.eps));
  state_->m = zeros_like_all(params_);
  state_->v = zeros_like_all(params_);
  state_->steps.assign(params_.size(), 0);
}

Adam::~Adam() = default;

void Adam::step() {
  NoGradGuard no_grad;
  // Parameters grouped by their step count (all equal unless some had no gradient at times).
  std::vector<size_t> order;
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].grad().defined()) order.push_back(i);
  while (!order.empty()) {
    int64_t step = state_->steps[order.front()] + 1;
    Tensors params, grads, m, v;
    std::vector<size_t> rest;
    for (size_t i : order) {
      if (state_->steps[i] + 1 != step) {
        rest.push_back(i);
        continue;
      }
      params.push_back(params_[i]);
      grads.push_back(params_[i].grad());
      m.push_back(state_->m[i]);
      v.push_back(state_->v[i]);
      state_->steps[i] = step;
    }
    auto [b1, b2] = options.betas;
    SymFloat lr(options.lr);
    SymFloat bc1(1 - std::pow(b1, static_cast<double>(step)));
    SymFloat bc2(1 - std::pow(b2, static_cast<double>(step)));
    if (options.fused) {
      state_->compiled(params, grads, m, v, lr, bc1, bc2);
    } else {
      state_->update(params, grads, m, v, lr, bc1, bc2);
    }
    order = std::move(rest);
  }
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions o)
    : Adam(std::move(params), {o.lr, o.betas, o.eps, o.weight_decay, o.fused}, true) {}

}  // namespace kiln::optim

namespace kiln::nn::utils {

Tensor clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type) {
  NoGradGuard no_grad;
  if (norm_type != 2.0)
    throw Error(fmt::format("clip_grad_norm_: only the 2-norm is supported, not {}", norm_type));
  Tensor total;
  for (const Tensor& p : parameters) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor s = (g.to(DType::f32) * g.to(DType::f32)).sum();
    total = total.defined() ? total + s : s;
  }
  if (!total.defined()) return scalar_tensor(0.0);
  Tensor norm = total.sqrt();
  Tensor coef = (max_norm / (norm + 1e-6)).clamp(std::nullopt, 1.0);
  for (const Tensor& p : parameters)
    if (p.grad().defined()) p.grad().mul_(coef.to(p.grad().dtype()).to(p.grad().device()));
  return norm;
}

}  // namespace kiln::nn::utils
