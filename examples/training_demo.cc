// kiln's training demo: an MLP classifier on synthetic data, trained with eager autograd
// (every op's derivative from kiln's derivative table) and AdamW whose step is one compiled
// function over all parameters (fused kernels; the learning rate, decayed every step, and
// Adam's bias corrections are graph scalars: no recompile). The same run with the eager
// optimizer shows what the fused step saves.
#include <fmt/format.h>

#include <chrono>

#include "kiln/kiln.h"

using namespace kiln;

namespace {

constexpr int kWarmup = 5;

struct Classifier : nn::Module {
  std::shared_ptr<nn::Linear> fc1 = register_module("fc1", std::make_shared<nn::Linear>(64, 256));
  std::shared_ptr<nn::Linear> fc2 = register_module("fc2", std::make_shared<nn::Linear>(256, 256));
  std::shared_ptr<nn::Linear> out = register_module("out", std::make_shared<nn::Linear>(256, 10));
  Tensor forward(const Tensor& x) {
    return out->forward(gelu(fc2->forward(relu(fc1->forward(x)))));
  }
};

// Trains a fresh classifier for `steps` steps; returns the final loss and the mean ms of an
// optimizer step after the warm-up.
std::pair<double, double> train(bool fused, int steps, bool verbose) {
  manual_seed(0);
  Classifier model;
  Tensor x = randn({512, 64});
  Tensor labels = (x.narrow(1, 0, 10).argmax(1));  // a learnable rule: the largest of 10 features
  optim::AdamW opt(model.parameters(), {.lr = 3e-3, .weight_decay = 0.01, .fused = fused});
  double step_ms = 0, loss_value = 0;
  for (int step = 0; step < steps; ++step) {
    opt.options.lr = 3e-3 * (1.0 - 0.5 * step / steps);  // a linear decay
    opt.zero_grad();
    Tensor loss = cross_entropy(model.forward(x), labels, "mean", 0.05);
    loss.backward();
    nn::utils::clip_grad_norm_(model.parameters(), 1.0);
    auto start = std::chrono::steady_clock::now();
    opt.step();
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    // The first fused steps trace and compile: the first with every number specialized,
    // then with the bias corrections, then with the learning rate as graph scalars.
    if (step >= kWarmup) step_ms += ms;
    loss_value = loss.item<float>();
    if (verbose && (step % 20 == 0 || step == steps - 1))
      fmt::print("  step {:3}: loss {:.4f}\n", step, loss_value);
  }
  return {loss_value, step_ms / (steps - kWarmup)};
}

}  // namespace

int main() {
  const int steps = 100;
  fmt::print("training an MLP 64-256-256-10 (batch 512) for {} steps with AdamW:\n", steps);
  auto [fused_loss, fused_ms] = train(true, steps, true);
  auto [eager_loss, eager_ms] = train(false, steps, false);
  fmt::print("optimizer step: fused (compiled) {:.2f} ms, eager {:.2f} ms ({:.1f}x)\n", fused_ms,
             eager_ms, eager_ms / fused_ms);
  fmt::print("final loss: fused {:.5f}, eager {:.5f}\n", fused_loss, eager_loss);
  return fused_loss < 1.0 ? 0 : 1;
}
