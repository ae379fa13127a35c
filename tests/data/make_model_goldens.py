#!/usr/bin/env python3
"""Writes tests/data/model_cnn.safetensors: a small CNN's weights ("w.<state_dict name>"), an
input and PyTorch's output, for tests/e2e/models_test.cc (which rebuilds the model with
kiln's ops, eagerly and compiled in every mode).

Run with any PyTorch (Debian's python3-torch 1.13 made the committed file):
    python3 tests/data/make_model_goldens.py
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_inplace_goldens import save_safetensors


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def main():
    torch.manual_seed(37)
    model = Cnn().eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        y = model(x)
    out = {f"w.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    out["input"] = x
    out["output"] = y
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_cnn.safetensors")
    save_safetensors(path, out)
    print(f"{path}: torch {torch.__version__}")


if __name__ == "__main__":
    main()
