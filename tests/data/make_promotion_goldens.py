#!/usr/bin/env python3
"""Writes tests/data/golden_promotion.json: PyTorch's result dtype for binary ops and where()
over every pair of kiln's dtypes, with each operand a tensor with dims or a 0-d tensor
(tests/trace/scalar_args_test.cc checks kiln's eager and compiled results against it).

A 0-d tensor ranks below tensors with dims: f32[3] * f64[] is f32. Run with any PyTorch
(Debian's python3-torch 1.13 made the committed file):
    python3 tests/data/make_promotion_goldens.py
"""
import json
import os

import torch

DTYPES = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16,
          "bf16": torch.bfloat16, "i32": torch.int32, "i64": torch.int64, "bool": torch.bool}
OPS = {
    "add": lambda a, b: a + b,
    "div": lambda a, b: a / b,
    "lt": lambda a, b: a < b,
    "maximum": torch.maximum,
    "where": lambda a, b: torch.where(torch.tensor([True, False, True]), a, b),
}


def operand(dtype, rank):
    values = torch.tensor([1, 0, 1]) if dtype == torch.bool else torch.tensor([3, 2, 5])
    t = values.to(dtype)
    return t[0] if rank == 0 else t


def main():
    cases = []
    for op, fn in OPS.items():
        for an, ad in DTYPES.items():
            for bn, bd in DTYPES.items():
                for ar, br in [(1, 1), (1, 0), (0, 1), (0, 0)]:
                    try:
                        out = fn(operand(ad, ar), operand(bd, br))
                    except RuntimeError:
                        continue  # e.g. maximum of bool with a number: refused by both
                    name = [k for k, v in DTYPES.items() if v == out.dtype][0]
                    cases.append({"op": op, "a": an, "a_rank": ar, "b": bn, "b_rank": br,
                                  "out": name})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_promotion.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, indent=0)
        f.write("\n")
    print(f"{path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
