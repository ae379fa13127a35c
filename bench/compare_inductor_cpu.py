#!/usr/bin/env python3
"""kiln vs PyTorch eager vs torch.compile (Inductor's C++ backend) on the CPU, in one call.

Run on the GPU machine's CPU (scripts/device_run.sh sets up kiln's build there):
    python3 bench/compare_inductor_cpu.py --kiln build-ci/bench/compiled_bench --out DIR

1. kiln: bench/compiled_bench (its table: eager and compiled per workload, best of reps,
   the memory-copy ceiling it measured).
2. PyTorch: the same workloads, the same shapes and the same math, in one process with an
   empty Inductor cache (its vector-ISA probe is paid once, by the first workload's first
   call, reported apart); per workload the first compiled call and the best of reps of
   eager and compiled, timed as kiln's bench times (wall clock, best of reps).
Writes DIR/compare_inductor_cpu_<date>.json (rows: workload, system, run_s,
first_call_s) and prints a table with Inductor/kiln time ratios (kiln's best of untuned and
autotuned; above 1 means kiln is faster).
"""
import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_inductor import fmt_time  # noqa: E402  (one time format for both tables)


def workloads():
    import torch
    import torch.nn.functional as F
    torch.manual_seed(3)
    n = 1 << 24
    r = torch.randn
    w1, b1 = r(1024, 784) * 0.03, r(1024) * 0.1
    w2, b2 = r(1024, 1024) * 0.03, r(1024) * 0.1
    w3, b3 = r(10, 1024) * 0.03, r(10) * 0.1
    d, heads, ff = 512, 8, 2048
    in_w, in_b, out_w, out_b = r(3 * d, d) * 0.04, torch.zeros(3 * d), r(d, d) * 0.04, torch.zeros(d)
    l1, lb1, l2, lb2 = r(ff, d) * 0.04, torch.zeros(ff), r(d, ff) * 0.02, torch.zeros(d)
    n1w, n1b, n2w, n2b = torch.ones(d), torch.zeros(d), torch.ones(d), torch.zeros(d)

    def transformer(x):
        b, t, dh = x.shape[0], x.shape[1], d // heads
        qkv = F.linear(x, in_w, in_b)
        head = lambda i: qkv.narrow(-1, i * d, d).reshape(b, t, heads, dh).transpose(1, 2)
        att = torch.softmax(head(0) @ head(1).transpose(-2, -1) / math.sqrt(dh), -1) @ head(2)
        h = F.layer_norm(x + F.linear(att.transpose(1, 2).reshape(b, t, d), out_w, out_b), (d,), n1w, n1b, 1e-5)
        return F.layer_norm(h + F.linear(torch.relu(F.linear(h, l1, lb1)), l2, lb2), (d,), n2w, n2b, 1e-5)

    def chain(x, y):
        for _ in range(500):
            x = x + y
        return x

    mlp = lambda x: F.linear(torch.relu(F.linear(torch.relu(F.linear(x, w1, b1)), w2, b2)), w3, b3)
    ln_w, ln_b = r(4096), r(4096)
    # Named as bench/compiled_bench.cc names them, so that rows pair up.
    return [
        ("(x+y).sin().cos(), 2^24 f32", lambda x, y: (x + y).sin().cos(), (r(n), r(n))),
        ("(x+y).sin().cos(), 2^14 f32", lambda x, y: (x + y).sin().cos(), (r(n >> 10), r(n >> 10))),
        ("x * 0.5 + y (memory-bound), 2^24 f32", lambda x, y: x * 0.5 + y, (r(n), r(n))),
        ("softmax rows, 4096 x 4096 f32", lambda x: torch.softmax(x, -1), (r(4096, 4096),)),
        ("layer_norm, 4096 x 4096 f32", lambda x: F.layer_norm(x, (4096,), ln_w, ln_b), (r(4096, 4096),)),
        ("500 chained adds, 100x100", chain, (r(100, 100), r(100, 100))),
        ("(x@y).relu(), f32 1024^3", lambda x, y: (x @ y).relu(), (r(1024, 1024), r(1024, 1024))),
        ("MLP 784-1024-1024-10, batch 256", mlp, (r(256, 784),)),
        ("TransformerEncoderLayer d512 h8, 8x256", transformer, (r(8, 256, 512),)),
        ("x + 1, 4 elements (host overhead)", lambda x: x + 1, (r(4),)),
    ]


def best_seconds(fn, reps):
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def torch_rows():
    import torch
    import torch._dynamo
    torch._dynamo.config.cache_size_limit = 64
    rows = []
    with torch.no_grad():
        for name, fn, args in workloads():
            compiled = torch.compile(fn)
            t = time.perf_counter()
            compiled(*args)
            first = time.perf_counter() - t
            reps = 30 if args[0].numel() < (1 << 20) else 10
            eager = best_seconds(lambda: fn(*args), reps)
            comp = best_seconds(lambda: compiled(*args), reps)
            rows.append({"workload": name, "system": "torch_eager", "run_s": eager})
            rows.append({"workload": name, "system": "torch_compile", "run_s": comp, "first_call_s": first})
            print(f"torch {name}: eager {fmt_time(eager)}, compiled {fmt_time(comp)}, first call {fmt_time(first)}",
                  flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch-child", action="store_true")
    ap.add_argument("--kiln", default="build-ci/bench/compiled_bench")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    a = ap.parse_args()
    if a.torch_child:
        print("ROWS " + json.dumps(torch_rows()), flush=True)
        return
    kiln_json = os.path.join(a.out, "kiln_cpu_rows.json")
    k = subprocess.run([a.kiln, "--json", kiln_json], capture_output=True, text=True, timeout=500)
    print(k.stdout, flush=True)
    if k.returncode != 0:
        print(k.stderr[-3000:])
        sys.exit(1)
    kiln = json.load(open(kiln_json))
    cache = tempfile.mkdtemp(prefix="inductor_cpu_")
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)
    p = subprocess.run([sys.executable, __file__, "--torch-child"], env=env, capture_output=True, text=True,
                       timeout=900)
    print(p.stdout[-6000:], flush=True)
    rows = next((json.loads(l[5:]) for l in p.stdout.splitlines() if l.startswith("ROWS ")), None)
    if rows is None:
        print(p.stderr[-3000:])
        sys.exit(1)
    by = {(r["workload"], r["system"]): r for r in rows}
    kiln_rows = kiln["rows"]
    tuned = {r["workload"]: r["tuned_s"] for r in kiln.get("autotune", [])}
    out = []
    print(f"\n{'workload':<42} {'kiln eager':>10} {'kiln':>10} {'tuned':>10} {'torch':>10} {'inductor':>10} {'ind/kiln':>8} "
          f"{'kiln compile':>12} {'ind 1st call':>12}")
    for kr in kiln_rows:
        w = kr["workload"]
        te, tc = by.get((w, "torch_eager")), by.get((w, "torch_compile"))
        if not te:
            continue
        out.append({"workload": w, "system": "kiln", "run_s": kr["compiled_s"], "compile_s": kr.get("first_compile_s")})
        out.append({"workload": w, "system": "kiln_eager", "run_s": kr["eager_s"]})
        if w in tuned:
            out.append({"workload": w, "system": "kiln_autotuned", "run_s": tuned[w]})
        best = min(kr["compiled_s"], tuned.get(w, float("inf")))
        out += [te, tc]
        print(f"{w:<42} {fmt_time(kr['eager_s']):>10} {fmt_time(kr['compiled_s']):>10} {fmt_time(tuned.get(w)):>10} "
              f"{fmt_time(te['run_s']):>10} {fmt_time(tc['run_s']):>10} {tc['run_s'] / best:>7.2f}x "
              f"{fmt_time(kr.get('first_compile_s')):>12} {fmt_time(tc['first_call_s']):>12}")
    path = os.path.join(a.out, f"compare_inductor_cpu_{datetime.date.today().isoformat()}.json")
    with open(path, "w") as f:
        json.dump({"cpus": os.cpu_count(), "rows": out}, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
