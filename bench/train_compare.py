#!/usr/bin/env python3
"""A training step (forward, backward, AdamW) side by side on the GPU machine: kiln eager and
kiln compiled (bench/train_bench) against PyTorch eager and torch.compile, in one call, on
the workloads of train_bench.cc (MLP 784-1024-1024-10 batch 256 with cross_entropy; a
TransformerEncoderLayer d512 h8, batch first 8x128, no dropout, with mse_loss).

    python3 bench/train_compare.py --kiln build/bench/train_bench --out DIR

PyTorch steps are timed as kiln's: median of 10 after 3 warm-up steps, synchronized; the
first torch.compile step (Dynamo, AOTAutograd, Inductor for forward and backward) is its
cold compile. The peak memory of the last step (torch.cuda.max_memory_allocated after a
reset; kiln's memory.h counts the same way) is compared beside the times. Writes
DIR/train_compare_<date>.json and prints a table.
"""
import argparse
import datetime
import json
import os
import subprocess
import time


def torch_steps(name, compiled, steps=10):
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    dev = "cuda"
    if name.startswith("mlp"):
        model = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(),
                                    torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                                    torch.nn.Linear(1024, 10)).to(dev)
        x, y = torch.randn(256, 784, device=dev), torch.randint(0, 10, (256,), device=dev)
        loss_fn = lambda: F.cross_entropy(model(x), y)
    else:
        model = torch.nn.TransformerEncoderLayer(512, 8, 2048, 0.0, batch_first=True).to(dev)
        x, t = torch.randn(8, 128, 512, device=dev), torch.randn(8, 128, 512, device=dev)
        loss_fn = lambda: F.mse_loss(model(x), t)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    step_fn = loss_fn
    if compiled:
        step_fn = torch.compile(loss_fn)
    times, first, peak = [], 0.0, 0
    for i in range(steps + 3):
        torch.cuda.synchronize()
        if i == steps + 2:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = step_fn()
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1e3
        if i == steps + 2:
            peak = torch.cuda.max_memory_allocated() / 2**20
        if i == 0:
            first = ms
        if i >= 3:
            times.append(ms)
    times.sort()
    return times[len(times) // 2], first, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default="build/bench/train_bench")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    kiln_json = os.path.join(args.out, "kiln_train.json")
    subprocess.run([args.kiln, "--device", "cuda", "--json", kiln_json], check=True)
    with open(kiln_json) as f:
        kiln_rows = json.load(f)["rows"]
    rows = []
    print(f"{'workload':<36} {'kiln eager':>11} {'kiln comp.':>11} {'torch eager':>12} "
          f"{'torch.compile':>14} {'kiln 1st':>10} {'inductor 1st':>13} "
          f"{'peak kiln c.':>13} {'peak torch e.':>14} {'peak t.compile':>15}")
    for r in kiln_rows:
        te, _, te_peak = torch_steps(r["workload"], False)
        tc, tc_first, tc_peak = torch_steps(r["workload"], True)
        row = dict(r, torch_eager_ms=te, torch_compile_ms=tc, torch_compile_first_step_ms=tc_first,
                   torch_eager_peak_mib=te_peak, torch_compile_peak_mib=tc_peak)
        rows.append(row)
        print(f"{r['workload']:<36} {r['kiln_eager_ms']:>8.2f} ms {r['kiln_compiled_ms']:>8.2f} ms "
              f"{te:>9.2f} ms {tc:>11.2f} ms {r['kiln_first_compiled_step_ms']:>7.0f} ms "
              f"{tc_first:>10.0f} ms {r['kiln_compiled_peak_mib']:>9.1f} MiB "
              f"{te_peak:>10.1f} MiB {tc_peak:>11.1f} MiB")
    path = os.path.join(args.out, f"train_compare_{datetime.date.today()}.json")
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
