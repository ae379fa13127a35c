#!/usr/bin/env python3
"""Writes tests/data/golden_grads.safetensors: PyTorch's gradients for every derivative of
kiln's op set (tests/autograd/derivatives_test.cc runs the same cases with kiln).

Each case takes f64 inputs (floating ones require grad; integer and bool ones are indices and
masks), computes one output, and backpropagates a random gradient `gout`. The file holds,
per case C, "C.in<i>" for every input, "C.out" (the result), "C.gout", and "C.grad<i>" for
every floating input.

Run with any PyTorch (Debian's python3-torch 1.13 made the committed file):
    python3 tests/data/make_grad_goldens.py
"""
import math
import os

import torch
import torch.nn.functional as F

from make_inplace_goldens import save_safetensors

G = torch.Generator().manual_seed(23)


def randn(*shape):
    return torch.randn(*shape, generator=G, dtype=torch.float64)


def pos(*shape):  # away from 0: log, sqrt, division, pow
    return torch.rand(*shape, generator=G, dtype=torch.float64) * 1.5 + 0.5


def idx(high, *shape):
    return torch.randint(0, high, shape, generator=G)


def ties():  # rows with repeated maxima and minima
    return torch.tensor([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, -1.0, -1.0], [2.0, -3.0, 1.0, 0.0]],
                        dtype=torch.float64)


def zeros_inside():  # prod over rows with no, one and two zeros
    return torch.tensor([[1.5, -2.0, 0.5, 3.0], [2.0, 0.0, -1.5, 1.0], [0.0, 1.0, 0.0, 2.0]],
                        dtype=torch.float64)


def attention(q, k, v):
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v


CASES = {
    "neg": ([randn(3, 4)], lambda a: -a),
    "abs": ([randn(3, 4)], torch.abs),
    "relu": ([randn(3, 4)], torch.relu),
    "floor": ([randn(3, 4)], torch.floor),
    "exp": ([randn(3, 4)], torch.exp),
    "log": ([pos(3, 4)], torch.log),
    "log1p": ([pos(3, 4)], torch.log1p),
    "sqrt": ([pos(3, 4)], torch.sqrt),
    "rsqrt": ([pos(3, 4)], torch.rsqrt),
    "sin": ([randn(3, 4)], torch.sin),
    "cos": ([randn(3, 4)], torch.cos),
    "tan": ([randn(3, 4) * 0.5], torch.tan),
    "tanh": ([randn(3, 4)], torch.tanh),
    "sigmoid": ([randn(3, 4)], torch.sigmoid),
    "gelu": ([randn(3, 4)], F.gelu),
    "gelu_tanh": ([randn(3, 4)], lambda a: F.gelu(a, approximate="tanh")),
    "erf": ([randn(3, 4)], torch.erf),
    "reciprocal": ([pos(3, 4)], torch.reciprocal),
    "add_broadcast": ([randn(3, 4), randn(4)], lambda a, b: a + b),
    "sub_broadcast": ([randn(3, 1), randn(3, 4)], lambda a, b: a - b),
    "mul_broadcast": ([randn(3, 4), randn(3, 1)], lambda a, b: a * b),
    "div": ([randn(3, 4), pos(3, 4)], lambda a, b: a / b),
    "mul_scalar": ([randn(3, 4)], lambda a: a * 2.5),
    "rsub_scalar": ([randn(3, 4)], lambda a: 2.0 - a),
    "rdiv_scalar": ([pos(3, 4)], lambda a: 3.0 / a),
    "pow_scalar": ([pos(3, 4)], lambda a: a ** 2.5),
    "pow_tensor": ([pos(3, 4), randn(3, 4)], lambda a, b: a ** b),
    "rpow_scalar": ([randn(3, 4)], lambda a: 2.0 ** a),
    "maximum": ([randn(3, 4), randn(3, 4)], torch.maximum),
    "minimum": ([randn(3, 4), randn(3, 4)], torch.minimum),
    "maximum_ties": ([ties(), ties().flip(0)], torch.maximum),
    "fmod": ([randn(3, 4) * 3, pos(3, 4)], torch.fmod),
    "remainder": ([randn(3, 4) * 3, pos(3, 4)], torch.remainder),
    "atan2": ([randn(3, 4), randn(3, 4)], torch.atan2),
    "where": ([randn(3, 4), randn(3, 4)], lambda a, b: torch.where(a > 0, a, b)),
    "clamp": ([randn(3, 4)], lambda a: torch.clamp(a, -0.5, 0.5)),
    "to_f32": ([randn(3, 4)], lambda a: a.float().double() * 2),
    "sum_dim": ([randn(3, 4)], lambda a: a.sum(1)),
    "sum_all": ([randn(3, 4)], lambda a: a.sum()),
    "sum_keepdim": ([randn(2, 3, 4)], lambda a: a.sum((0, 2), keepdim=True)),
    "mean_dim": ([randn(3, 4)], lambda a: a.mean(0)),
    "prod_dim": ([zeros_inside()], lambda a: a.prod(1)),
    "amax_ties": ([ties()], lambda a: a.amax(1)),
    "amin_all": ([ties()], lambda a: a.amin()),
    "var_dim": ([randn(3, 5)], lambda a: a.var(1)),
    "std_dim": ([randn(4, 3)], lambda a: a.std(0)),
    "logsumexp": ([randn(3, 4)], lambda a: a.logsumexp(1)),
    "softmax": ([randn(3, 4)], lambda a: a.softmax(-1)),
    "log_softmax": ([randn(3, 4)], lambda a: a.log_softmax(0)),
    "layer_norm": ([randn(2, 3, 4), randn(4), randn(4)],
                   lambda x, w, b: F.layer_norm(x, [4], w, b, 1e-5)),
    "layer_norm_plain": ([randn(3, 2, 4)], lambda x: F.layer_norm(x, [2, 4], eps=1e-5)),
    "matmul": ([randn(3, 4), randn(4, 5)], torch.matmul),
    "matmul_batched": ([randn(2, 3, 4), randn(4, 5)], torch.matmul),
    "matmul_vector_matrix": ([randn(4), randn(2, 4, 5)], torch.matmul),
    "matmul_matrix_vector": ([randn(3, 4), randn(4)], torch.matmul),
    "matmul_dot": ([randn(4), randn(4)], torch.matmul),
    "bmm": ([randn(2, 3, 4), randn(2, 4, 5)], torch.bmm),
    "linear": ([randn(2, 3, 4), randn(5, 4), randn(5)], F.linear),
    "linear_no_bias": ([randn(3, 4), randn(5, 4)], F.linear),
    "attention": ([randn(2, 3, 4), randn(2, 5, 4), randn(2, 5, 3)], attention),
    "cat": ([randn(3, 2), randn(3, 4)], lambda a, b: torch.cat([a, b], 1)),
    "stack": ([randn(3, 4), randn(3, 4)], lambda a, b: torch.stack([a, b], 1)),
    "index_select": ([randn(4, 5), torch.tensor([3, 0, 3, 1])],
                     lambda a, i: torch.index_select(a, 1, i)),
    "gather": ([randn(3, 4), idx(4, 3, 5)], lambda a, i: torch.gather(a, 1, i)),
    "embedding": ([torch.tensor([[1, 4, 1], [0, 4, 4]]), randn(6, 3)], F.embedding),
    "index_put": ([randn(4, 3), torch.tensor([2, 0]), randn(2, 3)],
                  lambda a, i, v: a.index_put((i,), v)),
    "index_put_accumulate": ([randn(4, 3), torch.tensor([2, 0, 2]), randn(3, 3)],
                             lambda a, i, v: a.index_put((i,), v, accumulate=True)),
    "adaptive_avg_pool2d": ([randn(1, 2, 5, 7)], lambda a: F.adaptive_avg_pool2d(a, (3, 4))),
    "reshape": ([randn(3, 4)], lambda a: a.reshape(2, 6) * torch.arange(6.0, dtype=a.dtype)),
    "permute": ([randn(2, 3, 4)], lambda a: a.permute(2, 0, 1).contiguous()),
    "narrow": ([randn(5, 4)], lambda a: a.narrow(0, 1, 3)),
    "strided_slice": ([randn(3, 7)], lambda a: a[:, 1::2]),
    "expand": ([randn(3, 1)], lambda a: a.expand(3, 4) * torch.arange(4.0, dtype=a.dtype)),
    "transpose_clone": ([randn(3, 4)], lambda a: a.t().clone()),
    "mse": ([randn(3, 4), randn(3, 4)], lambda a, b: ((a - b) ** 2).mean()),
}

# Cases added later draw their inputs from a generator of their own, and come last, so that
# the values of the cases above stay as committed.
G_LATER = torch.Generator().manual_seed(29)
CASES["gather_one_pick"] = (
    [torch.randn(5, 4, generator=G_LATER, dtype=torch.float64),
     torch.randint(0, 4, (5, 1), generator=G_LATER)],
    lambda a, i: torch.gather(a, 1, i))


def rms_norm(x, dims, w=None, eps=None):  # ATen's composite (torch 1.13 has no F.rms_norm)
    eps = torch.finfo(x.dtype).eps if eps is None else eps
    y = x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + eps)
    return y if w is None else y * w


CASES["rms_norm"] = (
    [torch.randn(2, 3, 8, generator=G_LATER, dtype=torch.float64),
     torch.randn(8, generator=G_LATER, dtype=torch.float64)],
    lambda x, w: rms_norm(x, (-1,), w, 1e-6))
CASES["rms_norm_plain"] = (
    [torch.randn(3, 2, 4, generator=G_LATER, dtype=torch.float64)],
    lambda x: rms_norm(x, (-2, -1)))

# Convolution and pooling (src/eager/conv_ops.cc), from their own generator.
G_CONV = torch.Generator().manual_seed(31)


def crandn(*shape):
    return torch.randn(*shape, generator=G_CONV, dtype=torch.float64)


def pool_with_indices(a):
    v, i = F.max_pool2d(a, 3, 2, 1, return_indices=True)
    return v + i.to(torch.float64) * 1e-3  # exact enough, and small for finite differences


CASES.update({
    "conv2d": ([crandn(2, 4, 7, 6), crandn(6, 2, 3, 2), crandn(6)],
               lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 0), (1, 2), 2)),
    "conv2d_plain": ([crandn(1, 3, 5, 5), crandn(4, 3, 3, 3)], lambda x, w: F.conv2d(x, w)),
    "conv2d_pointwise": ([crandn(2, 3, 4, 4), crandn(5, 3, 1, 1), crandn(5)],
                         lambda x, w, b: F.conv2d(x, w, b)),
    "conv2d_unbatched": ([crandn(3, 6, 5), crandn(2, 3, 3, 3)],
                         lambda x, w: F.conv2d(x, w, None, 1, 1)),
    "conv1d": ([crandn(2, 3, 9), crandn(4, 3, 3), crandn(4)],
               lambda x, w, b: F.conv1d(x, w, b, 2, 1)),
    "conv3d": ([crandn(1, 2, 4, 5, 4), crandn(3, 2, 2, 3, 2)],
               lambda x, w: F.conv3d(x, w, None, 1, (1, 0, 1))),
    "conv_transpose2d": ([crandn(2, 4, 3, 4), crandn(4, 3, 3, 2), crandn(6)],
                         lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 2)),
    "conv_transpose2d_dilated": ([crandn(1, 2, 4, 4), crandn(2, 3, 3, 3)],
                                 lambda x, w: F.conv_transpose2d(x, w, None, 1, 0, 1, 1, 2)),
    "conv_transpose1d": ([crandn(2, 3, 5), crandn(3, 2, 4), crandn(2)],
                         lambda x, w, b: F.conv_transpose1d(x, w, b, 3, 2, 1)),
    "max_pool2d": ([crandn(2, 3, 7, 6)], lambda x: F.max_pool2d(x, 3, 2, 1)),
    "max_pool2d_ceil": ([crandn(1, 2, 6, 7)],
                        lambda x: F.max_pool2d(x, (2, 3), 2, 0, (1, 2), ceil_mode=True)),
    "max_pool2d_with_indices": ([crandn(2, 2, 7, 6)], pool_with_indices),
    "max_pool1d": ([crandn(2, 3, 8)], lambda x: F.max_pool1d(x, 3, 2)),
    "avg_pool2d": ([crandn(2, 3, 7, 6)], lambda x: F.avg_pool2d(x, 3, 2, 1)),
    "avg_pool2d_ceil_exclude": ([crandn(1, 2, 6, 7)],
                                lambda x: F.avg_pool2d(x, (3, 2), (2, 3), 1, ceil_mode=True,
                                                       count_include_pad=False)),
    "avg_pool2d_ceil_include": ([crandn(1, 2, 6, 7)],
                                lambda x: F.avg_pool2d(x, (3, 2), (2, 3), 1, ceil_mode=True)),
    "avg_pool2d_divisor": ([crandn(1, 2, 5, 5)],
                           lambda x: F.avg_pool2d(x, 2, 1, 0, divisor_override=5)),
    "avg_pool1d": ([crandn(2, 3, 9)], lambda x: F.avg_pool1d(x, 4, 3, 2, ceil_mode=True)),
    "unfold": ([crandn(2, 3, 5, 6)], lambda x: F.unfold(x, (2, 3), (2, 1), 1, (1, 2))),
    "fold": ([crandn(2, 12, 20)], lambda x: F.fold(x, (5, 6), 2)),
    "batch_norm_train": ([crandn(4, 3, 5, 2), crandn(3), crandn(3)],
                         lambda x, w, b: F.batch_norm(x, None, None, w, b, True)),
    "batch_norm_eval": ([crandn(2, 3, 4), crandn(3), crandn(3).abs() + 0.5, crandn(3), crandn(3)],
                        lambda x, m, v, w, b: F.batch_norm(x, m.detach(), v.detach(), w, b)),
    "instance_norm": ([crandn(2, 3, 5, 4), crandn(3), crandn(3)],
                      lambda x, w, b: F.instance_norm(x, weight=w, bias=b)),
    "group_norm": ([crandn(2, 6, 4, 3), crandn(6), crandn(6)],
                   lambda x, w, b: F.group_norm(x, 3, w, b)),
    "pad_constant": ([crandn(2, 3, 4)], lambda x: F.pad(x, (1, 2, 0, 1), value=0.5)),
    "pad_constant_negative": ([crandn(2, 3, 4)], lambda x: F.pad(x, (-1, 2, 1, -1))),
    "pad_reflect": ([crandn(1, 2, 5, 4)], lambda x: F.pad(x, (2, 1, 3, 1), mode="reflect")),
    "pad_replicate": ([crandn(1, 2, 3, 4)], lambda x: F.pad(x, (1, 2, 2, 0), mode="replicate")),
    "pad_circular": ([crandn(1, 2, 3, 4)], lambda x: F.pad(x, (2, 1, 3, 0), mode="circular")),
    "flip": ([crandn(3, 4, 5)], lambda x: torch.flip(x, (0, 2))),
    "roll": ([crandn(3, 4)], lambda x: torch.roll(x, (1, -2), (0, 1))),
    "roll_flat": ([crandn(2, 3)], lambda x: torch.roll(x, 4)),
    "tril": ([crandn(2, 4, 5)], lambda x: torch.tril(x, 1)),
    "triu": ([crandn(4, 3)], lambda x: torch.triu(x, -1)),
    "local_response_norm": ([crandn(2, 5, 4, 3)], lambda x: F.local_response_norm(x, 4, 0.1, 0.7, 1.5)),
})


def main():
    out = {}
    for name, (inputs, fn) in CASES.items():
        args = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
        result = fn(*args)
        gout = torch.randn(tuple(result.shape), generator=G, dtype=torch.float64)
        result.backward(gout)
        for i, t in enumerate(inputs):
            out[f"{name}.in{i}"] = t
            if args[i].requires_grad and args[i].grad is not None:  # detached inside: none
                out[f"{name}.grad{i}"] = args[i].grad
        out[f"{name}.gout"] = gout
        out[f"{name}.out"] = result.detach()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_grads.safetensors")
    save_safetensors(path, out)
    print(f"{path}: {len(CASES)} cases, torch {torch.__version__}")


if __name__ == "__main__":
    main()
