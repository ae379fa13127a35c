#!/usr/bin/env python3
"""Writes tests/data/golden_inplace.safetensors: PyTorch's answers for in-place ops and the
views they write through (tests/trace/mutation_test.cc runs the same programs with kiln).

Each program takes x, y: f32[4, 6], r: f32[6], m: bool[4, 6], i: i64[4, 6], mutates some of
them and returns a tensor. The file holds the inputs once ("in.x", ...) and, per program P,
"P.out" and every input's value afterwards ("P.x", ...).

Run with any PyTorch (Debian's python3-torch 1.13 made the committed file):
    python3 tests/data/make_inplace_goldens.py
"""
import json
import os
import struct

import torch


def arith(x, y, r, m, i):
    x.add_(y, alpha=2)
    x.sub_(0.5)
    x.mul_(r)
    x.div_(3.0)
    i.add_(3, alpha=2)
    i.mul_(-2)
    return x


def narrow_view(x, y, r, m, i):
    v = x.narrow(0, 1, 2)
    v.mul_(2)
    v.add_(1)
    return v * 1


def transpose_view(x, y, r, m, i):
    x.t().add_(y.t())
    x.t().narrow(0, 1, 2).mul_(10)
    return x.sum(0)


def flat_view_copy(x, y, r, m, i):
    x.view(-1).narrow(0, 3, 10).copy_(torch.arange(10))
    return x + 0


def fill_zero(x, y, r, m, i):
    x.narrow(1, 0, 2).fill_(7)
    x.narrow(0, 3, 1).zero_()
    i.narrow(1, 5, 1).fill_(-4)
    return x * y


def clamp_masked(x, y, r, m, i):
    x.clamp_(-0.5, 0.5)
    x.masked_fill_(m, -9)
    return y.masked_fill(m, 3)


def copy_broadcast_cast(x, y, r, m, i):
    i.copy_(x * 10)
    x.copy_(r)
    return i * 1


def operators(x, y, r, m, i):
    x += y
    x *= 2
    x -= 1
    x /= y.abs() + 1
    return x - y


def overlapping_views(x, y, r, m, i):
    a = x.narrow(0, 0, 2)
    b = x.narrow(0, 1, 2)
    a.add_(1)
    b.mul_(y.narrow(0, 0, 2))
    return a + b


def unsqueeze_view(x, y, r, m, i):
    x.unsqueeze(0).narrow(1, 2, 1).squeeze(0).mul_(-1)
    y.reshape(24).narrow(0, 20, 4).sub_(100)
    return x.reshape(24) * 1


def chained(x, y, r, m, i):
    out = x.add_(1).mul_(y).clamp_(-1, 1)
    return out * 2


def index_put(x, y, r, m, i):
    x.index_put_((torch.tensor([2, 0, -1]), torch.tensor([1, 5, 3])), torch.tensor(-7.0))
    x.t().index_put_((torch.tensor([4]),), torch.tensor(9.0))
    y.index_put_((torch.tensor([1, 1, 3]),), r * 2, accumulate=True)
    i.index_put_((torch.tensor([0, 3]), torch.tensor([[2], [4]])), torch.tensor([5, 6]),
                 accumulate=True)
    return torch.index_put(x, (torch.tensor([3]),), y.narrow(0, 0, 1))


def strided_slices(x, y, r, m, i):
    x[:, 1::2].mul_(-3)
    y[0:4:3].add_(r)
    x.t()[::2].sub_(1)
    i[1:3][:, ::4].fill_(11)
    y[:, 2:5:2][1:2].zero_()
    return x + y


PROGRAMS = [arith, narrow_view, transpose_view, flat_view_copy, fill_zero, clamp_masked,
            copy_broadcast_cast, operators, overlapping_views, unsqueeze_view, chained, index_put,
            strided_slices]


def save_safetensors(path, tensors):
    names = sorted(tensors)
    header, blobs, offset = {}, [], 0
    codes = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.bool: "BOOL"}
    for name in names:
        t = tensors[name].contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    g = torch.Generator().manual_seed(17)
    inputs = {
        "x": torch.randn(4, 6, generator=g),
        "y": torch.randn(4, 6, generator=g),
        "r": torch.randn(6, generator=g),
        "m": torch.rand(4, 6, generator=g) < 0.4,
        "i": torch.randint(-20, 20, (4, 6), generator=g),
    }
    out = {f"in.{k}": v for k, v in inputs.items()}
    for program in PROGRAMS:
        args = {k: v.clone() for k, v in inputs.items()}
        result = program(**args)
        out[f"{program.__name__}.out"] = result
        for k, v in args.items():
            out[f"{program.__name__}.{k}"] = v
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_inplace.safetensors")
    save_safetensors(path, out)
    print(f"{path}: {len(PROGRAMS)} programs, torch {torch.__version__}")


if __name__ == "__main__":
    main()
