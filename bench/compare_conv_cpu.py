#!/usr/bin/env python3
"""kiln's conv2d (bench/conv_bench) vs PyTorch's (oneDNN on the CPU) at ResNet-50's shapes,
in one call, on the same threads.

    python3 bench/compare_conv_cpu.py --kiln build/bench/conv_bench --out bench/results

Runs conv_bench, then PyTorch's F.relu(F.conv2d(...)) on the same shapes, timed the same way
(median of 7 calls after 2), and writes DIR/compare_conv_cpu_<date>.json and .txt with the
ratio torch/kiln (above 1: kiln is faster).
"""
import argparse
import datetime
import json
import os
import subprocess
import tempfile
import time

import torch
import torch.nn.functional as F


def median_ms(f):
    f()
    f()
    t = []
    for _ in range(7):
        start = time.perf_counter()
        f()
        t.append((time.perf_counter() - start) * 1e3)
    return sorted(t)[3]


def parse_shape(name):
    """'3x3/2 128-128 56' or 'stem 7x7/2 3-64 224' -> (c, h, oc, k, stride, pad)."""
    parts = name.split()
    kernel, channels, h = parts[-3], parts[-2], int(parts[-1])
    k = int(kernel.split("x")[0])
    stride = int(kernel.split("/")[1]) if "/" in kernel else 1
    c, oc = (int(v) for v in channels.split("-"))
    return c, h, oc, k, stride, k // 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kiln.json")
        subprocess.run([args.kiln, "--json", path], check=True)
        kiln = json.load(open(path))["rows"]
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.manual_seed(5)
    rows, lines = [], []
    lines.append(f"conv2d + relu at ResNet-50 shapes, f32, {threads} threads; torch {torch.__version__} "
                 f"(mkldnn {torch.backends.mkldnn.is_available()})")
    lines.append(f"{'shape':<22} {'kiln eager':>11} {'kiln comp.':>11} {'torch':>9} {'torch/kiln':>11}")
    for r in kiln:
        if "gflop" not in r:  # the ResNet basic block (eval), as conv_bench builds it
            c, h = 64, 56
            x = torch.randn(r["batch"], c, h, h)
            w1, w2 = torch.randn(c, c, 3, 3) * 0.05, torch.randn(c, c, 3, 3) * 0.05
            mean, var = torch.randn(c) * 0.1, torch.rand(c) + 0.5
            gamma, beta = torch.rand(c) + 0.5, torch.randn(c) * 0.1

            def block():
                y = F.relu(F.batch_norm(F.conv2d(x, w1, None, 1, 1), mean, var, gamma, beta))
                y = F.batch_norm(F.conv2d(y, w2, None, 1, 1), mean, var, gamma, beta)
                return F.relu(y + x)
            with torch.no_grad():
                t = median_ms(block)
            best = min(r["eager_ms"], r["compiled_ms"])
            rows.append(dict(r, torch_ms=t, torch_over_kiln=t / best))
            lines.append(f"{'basic block 64 56':<22} {r['eager_ms']:9.2f}ms {r['compiled_ms']:9.2f}ms "
                         f"{t:7.2f}ms {t / best:10.2f}x")
            continue
        c, h, oc, k, stride, pad = parse_shape(r["shape"])
        x = torch.randn(r["batch"], c, h, h)
        w = torch.randn(oc, c, k, k) * 0.05
        b = torch.randn(oc)
        with torch.no_grad():
            t = median_ms(lambda: F.relu(F.conv2d(x, w, b, stride, pad)))
        best = min(r["eager_ms"], r["compiled_ms"])
        rows.append(dict(r, torch_ms=t, torch_over_kiln=t / best))
        lines.append(f"{r['shape']:<22} {r['eager_ms']:9.2f}ms {r['compiled_ms']:9.2f}ms "
                     f"{t:7.2f}ms {t / best:10.2f}x")
    text = "\n".join(lines)
    print(text)
    day = datetime.date.today().isoformat()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"compare_conv_cpu_{day}.json"), "w") as f:
        json.dump({"benchmark": "compare_conv_cpu", "threads": threads, "rows": rows}, f, indent=2)
    with open(os.path.join(args.out, f"compare_conv_cpu_{day}.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
