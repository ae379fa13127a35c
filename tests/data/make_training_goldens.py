#!/usr/bin/env python3
"""Writes tests/data/golden_training.safetensors: PyTorch training an MLP (Linear 8-16, ReLU,
Linear 16-4) for 20 steps under each optimizer configuration of tests/nn/training_test.cc,
from the same initial weights and data, and a TransformerEncoderLayer (d_model 16, 2 heads,
feed-forward 32, no dropout, batch first) regressing a target with mse_loss and AdamW. The
file holds the initial states ("init.<name>", "tinit.<name>"), the data ("X", "y", "tX",
"tY"), and per run R its loss at every step ("R.losses") and its final parameters
("R.final.<name>").

Run with any PyTorch (Debian's python3-torch 1.13 made the committed file):
    python3 tests/data/make_training_goldens.py
"""
import os

import torch
import torch.nn.functional as F

from make_inplace_goldens import save_safetensors

STEPS = 20
RUNS = {
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4,
                                              nesterov=True),
    "sgd_dampening": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.5, dampening=0.1),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    "adamw_clipped": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.01),
}


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


def main():
    torch.manual_seed(5)
    init = mlp().state_dict()
    X = torch.randn(32, 8)
    y = torch.randint(0, 4, (32,))
    out = {f"init.{k}": v.clone() for k, v in init.items()}
    out["X"], out["y"] = X, y
    for run, make in RUNS.items():
        model = mlp()
        model.load_state_dict(init)
        opt = make(model.parameters())
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            loss = F.cross_entropy(model(X), y, label_smoothing=0.1)
            loss.backward()
            if run.endswith("clipped"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            losses.append(loss.item())
        out[f"{run}.losses"] = torch.tensor(losses, dtype=torch.float64)
        for k, v in model.state_dict().items():
            out[f"{run}.final.{k}"] = v.clone()
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    out.update({f"tinit.{k}": v.clone() for k, v in layer.state_dict().items()})
    tX, tY = torch.randn(4, 6, 16), torch.randn(4, 6, 16)
    out["tX"], out["tY"] = tX, tY
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-2, weight_decay=0.01)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = F.mse_loss(layer(tX), tY)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out["transformer.losses"] = torch.tensor(losses, dtype=torch.float64)
    for k, v in layer.state_dict().items():
        out[f"transformer.final.{k}"] = v.clone()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_training.safetensors")
    save_safetensors(path, out)
    print(f"{path}: {len(RUNS)} runs of {STEPS} steps, torch {torch.__version__}")


if __name__ == "__main__":
    main()
